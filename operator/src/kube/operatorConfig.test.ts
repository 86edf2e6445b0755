import { SPOT_POLICY_DEFAULTS } from '../api/v1alpha1';
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
        aws: { enabled: false },
        gcp: { enabled: false },
        azure: { enabled: false },
      },
      webhook: { enabled: true, port: 9443, certDir: '/etc/ferry/tls' },
      metrics: { port: 8080 },
    });
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
webhook:
  enabled: false
  port: 10443
  certDir: /tls
metrics:
  port: 9090
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
    });
    expect(config.webhook).toEqual({
      enabled: false,
      port: 10443,
      certDir: '/tls',
    });
    expect(config.metrics.port).toBe(9090);
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
  ])('refuses %j', (text, message) => {
    expect(() => parseOperatorConfig(text)).toThrow(message);
  });
});
