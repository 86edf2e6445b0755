import { SPOT_POLICY_DEFAULTS } from '../api/v1alpha1';
import { DEFAULT_PROACTIVE_POLICY } from '../core/proactive';
import { REBALANCE_DEFAULTS } from '../core/replacement';
import { parseOperatorConfig } from './operatorConfig';

describe('parseOperatorConfig', () => {
  it('fills every key it is not given', () => {
    expect(parseOperatorConfig('')).toEqual({
      leaderElection: {
        enabled: true,
        leaseName: 'ferry-leader',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      defaults: SPOT_POLICY_DEFAULTS,
      providers: {
        aws: { enabled: false, onDemandPricesUsdPerHour: {} },
        gcp: { enabled: false },
        azure: { enabled: false },
      },
      webhook: { enabled: true, port: 9443, certDir: '/etc/ferry/tls' },
      metrics: { port: 8080 },
      status: { refreshIntervalMs: 60_000 },
      pricing: { refreshIntervalMs: 300_000 },
      migrationHistory: { retentionMs: 7 * 86_400_000, maxPerWorkload: 100 },
      prediction: {
        proactiveMoves: true,
        policy: DEFAULT_PROACTIVE_POLICY,
        historyConfigMap: 'ferry-pool-risk',
      },
      checkpoint: {
        enabled: false,
        agentNamespace: undefined,
        agentLabelSelector: 'app.kubernetes.io/component=node-agent',
        agentPort: 7444,
        streamWhileDumping: true,
        route: 'stop-and-copy',
      },
      replacement: { enabled: true, ...REBALANCE_DEFAULTS },
    });
  });

  it('reads the re-placement hysteresis and budget, and refuses a budget that is not a count', () => {
    expect(
      parseOperatorConfig(
        'replacement:\n  enabled: false\n  rebalanceAfterSeconds: 30\n  rebalanceMovesPerHour: 4\n',
      ).replacement,
    ).toEqual({ enabled: false, settleMs: 30_000, maxMovesPerHour: 4 });
    expect(() =>
      parseOperatorConfig('replacement:\n  rebalanceMovesPerHour: 0.5\n'),
    ).toThrow(
      'replacement.rebalanceMovesPerHour must be a whole number of at least 1, not 0.5',
    );
  });

  it('reads the checkpoint route, and refuses one it does not know', () => {
    expect(
      parseOperatorConfig('checkpoint:\n  route: lazy\n').checkpoint.route,
    ).toBe('lazy');
    expect(() =>
      parseOperatorConfig('checkpoint:\n  route: pre-copy\n'),
    ).toThrow(
      'checkpoint.route must be one of stop-and-copy, lazy, not "pre-copy"',
    );
  });

  it('reads what the chart writes', () => {
    const config = parseOperatorConfig(`
leaderElection:
  enabled: true
  leaseName: shop-ferry-leader
  leaseDurationSeconds: 30
  renewDeadlineSeconds: 20
  retryPeriodSeconds: 4
defaults:
  permanentRatio: 0.5
providers:
  aws:
    enabled: true
    region: eu-west-1
    interruptionQueueUrl: queue
    onDemandPricesUsdPerHour:
      m5.large: 0.107
webhook:
  enabled: false
  port: 10443
  certDir: /tls
metrics:
  port: 9090
status:
  refreshIntervalSeconds: 30
pricing:
  refreshIntervalSeconds: 600
migrationHistory:
  retentionDays: 0.5
  maxPerWorkload: 20
prediction:
  proactiveMoves: false
  enterRisk: 0.4
  exitRisk: 0.2
  movesPerHour: 5
  historyConfigMap: shop-ferry-pool-risk
`);
    expect(config.leaderElection).toMatchObject({
      leaseName: 'shop-ferry-leader',
      leaseDurationMs: 30_000,
      retryPeriodMs: 4_000,
    });
    expect(config.defaults).toEqual({
      ...SPOT_POLICY_DEFAULTS,
      permanentRatio: 0.5,
    });
    expect(config.providers.aws).toEqual({
      enabled: true,
      region: 'eu-west-1',
      interruptionQueueUrl: 'queue',
      onDemandPricesUsdPerHour: { 'm5.large': 0.107 },
    });
    expect(config.webhook).toEqual({
      enabled: false,
      port: 10443,
      certDir: '/tls',
    });
    expect(config.metrics.port).toBe(9090);
    expect(config.status.refreshIntervalMs).toBe(30_000);
    expect(config.pricing.refreshIntervalMs).toBe(600_000);
    expect(config.migrationHistory).toEqual({
      retentionMs: 12 * 3_600_000,
      maxPerWorkload: 20,
    });
    expect(config.prediction).toEqual({
      proactiveMoves: false,
      policy: {
        enterRisk: 0.4,
        exitRisk: 0.2,
        movesPerWindow: 5,
        windowMs: 3_600_000,
      },
      historyConfigMap: 'shop-ferry-pool-risk',
    });
  });

  it.each([
    [
      'leaderElection:\n  leaseDurationSeconds: 5\n  renewDeadlineSeconds: 10',
      'retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds',
    ],
    [
      'leaderElection:\n  retryPeriodSeconds: -1',
      'leaderElection.retryPeriodSeconds must be a positive number',
    ],
    [
      'defaults:\n  permanentRatio: 1.5',
      'defaults.permanentRatio must be between 0 and 1',
    ],
    ['webhook:\n  port: 99999', 'webhook.port must be a port number'],
    [
      'providers:\n  aws:\n    enabled: true',
      'providers.aws.region is required',
    ],
    [
      'migrationHistory:\n  retentionDays: 0',
      'migrationHistory.retentionDays must be a positive number of days',
    ],
    [
      'migrationHistory:\n  maxPerWorkload: 2.5',
      'migrationHistory.maxPerWorkload must be a whole number',
    ],
    [
      'providers:\n  aws:\n    onDemandPricesUsdPerHour:\n      m5.large: free',
      'providers.aws.onDemandPricesUsdPerHour.m5.large must be a positive number',
    ],
    [
      'status:\n  refreshIntervalSeconds: 0',
      'status.refreshIntervalSeconds must be a positive number',
    ],
    [
      'prediction:\n  enterRisk: 25',
      'prediction.enterRisk must be a probability between 0 and 1',
    ],
    [
      'prediction:\n  enterRisk: 0.2\n  exitRisk: 0.3',
      'prediction.exitRisk (0.3) must be below prediction.enterRisk (0.2)',
    ],
    [
      'prediction:\n  movesPerHour: 0',
      'prediction.movesPerHour must be a whole number of at least 1',
    ],
    [
      'prediction:\n  proactiveMoves: "yes"',
      'prediction.proactiveMoves must be true or false',
    ],
  ])('refuses %j', (text, message) => {
    expect(() => parseOperatorConfig(text)).toThrow(message);
  });
});
