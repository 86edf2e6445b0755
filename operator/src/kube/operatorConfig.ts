import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SPOT_POLICY_DEFAULTS } from '../api/v1alpha1';
import { DEFAULT_PROACTIVE_POLICY, ProactivePolicy } from '../core/proactive';
import { LEADER_ELECTION_DEFAULTS } from './leadership/LeaderElector';
import { MIGRATION_RETENTION_DEFAULTS } from './controllers/MigrationCollector';
import { PRICE_REFRESH_INTERVAL_MS } from './pools/PoolPriceFeed';
import { STATUS_REFRESH_INTERVAL_MS } from './controllers/SpotPolicyStatusController';
import { RebalancePolicy, REBALANCE_DEFAULTS } from '../core/replacement';
import {
  CHECKPOINT_ROUTES,
  CheckpointRoute,
} from './runtimes/checkpoint/KubeCheckpointDriver';

/** The operator's configuration file, as the chart writes it (templates/configmap.yaml). */
export interface OperatorConfig {
  leaderElection: {
    enabled: boolean;
    leaseName: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  defaults: typeof SPOT_POLICY_DEFAULTS;
  providers: {
    aws: {
      enabled: boolean;
      region?: string;
      interruptionQueueUrl?: string;
      /** On-demand USD per hour by instance type in the region; EC2's API has none. */
      onDemandPricesUsdPerHour?: Record<string, number>;
    };
    gcp: { enabled: boolean };
    azure: { enabled: boolean };
  };
  webhook: { enabled: boolean; port: number; certDir: string };
  metrics: { port: number };
  /** How often spend and availability accrue into SpotPolicy status. */
  status: { refreshIntervalMs: number };
  /** How often pool prices are fetched again. */
  pricing: { refreshIntervalMs: number };
  /** Which finished Migrations are kept. */
  migrationHistory: { retentionMs: number; maxPerWorkload: number };
  /** Ferry's own interruption prediction: whether it moves members ahead of notices, and when. */
  prediction: {
    proactiveMoves: boolean;
    policy: ProactivePolicy;
    /** The ConfigMap (in the operator's namespace) that keeps what was observed of each pool. */
    historyConfigMap: string;
  };
  /**
   * The checkpoint method: where the node agents are (the agent DaemonSet's
   * pods), and whether memory pages stream to the target while the source dumps.
   * The agents' token and CA come from the environment (FERRY_AGENT_TOKEN,
   * FERRY_AGENT_TLS_CA), as the chart mounts them from a Secret.
   */
  checkpoint: {
    enabled: boolean;
    /** Defaults to the operator's own namespace. */
    agentNamespace?: string;
    agentLabelSelector: string;
    agentPort: number;
    streamWhileDumping: boolean;
    /** How memory moves against the freeze (KubeCheckpointDriver's route). */
    route: CheckpointRoute;
  };
  /**
   * Re-placement: running members follow their policy's changes, and broken
   * floors and spreads are restored after `settleMs`, at most `maxMovesPerHour`
   * rebalance moves per workload (core/replacement.ts).
   */
  replacement: { enabled: boolean } & RebalancePolicy;
}

const MS_PER_DAY = 24 * 3_600_000;

/** Ports and paths when the file says nothing; the chart's values say the same. */
const FALLBACK = {
  leaseName: 'ferry-leader',
  webhookPort: 9443,
  certDir: '/etc/ferry/tls',
  metricsPort: 8080,
  riskHistoryConfigMap: 'ferry-pool-risk',
  agentLabelSelector: 'app.kubernetes.io/component=node-agent',
  agentPort: 7444,
};

/** The move budget's window; the chart counts it per hour. */
const HOUR_MS = 3_600_000;

function seconds(value: unknown, fallbackMs: number, key: string): number {
  if (value === undefined) return fallbackMs;
  if (typeof value !== 'number' || !(value > 0)) {
    throw new Error(
      `${key} must be a positive number of seconds, not ${JSON.stringify(
        value,
      )}`,
    );
  }
  return value * 1000;
}

function days(value: unknown, fallbackMs: number, key: string): number {
  if (value === undefined) return fallbackMs;
  if (typeof value !== 'number' || !(value > 0)) {
    throw new Error(
      `${key} must be a positive number of days, not ${JSON.stringify(value)}`,
    );
  }
  return value * MS_PER_DAY;
}

function positiveInteger(
  value: unknown,
  fallback: number,
  key: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(
      `${key} must be a whole number of at least 1, not ${JSON.stringify(
        value,
      )}`,
    );
  }
  return value;
}

function prices(value: unknown, key: string): Record<string, number> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(
      `${key} must map instance types to USD per hour, e.g. { m5.large: 0.096 }, not ${JSON.stringify(
        value,
      )}`,
    );
  }
  for (const [type, price] of Object.entries(value)) {
    if (typeof price !== 'number' || !(price > 0)) {
      throw new Error(
        `${key}.${type} must be a positive number of USD per hour, not ${JSON.stringify(
          price,
        )}`,
      );
    }
  }
  return value as Record<string, number>;
}

function probability(value: unknown, fallback: number, key: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new Error(
      `${key} must be a probability between 0 and 1 (exclusive), e.g. 0.25, not ${JSON.stringify(
        value,
      )}`,
    );
  }
  return value;
}

function port(value: unknown, fallback: number, key: string): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > 65535
  ) {
    throw new Error(
      `${key} must be a port number, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Reads the configuration file's text. Every key is optional; a key that is
 * present with a value that cannot be right stops the operator with a message
 * naming it, rather than running with a surprise.
 */
export function parseOperatorConfig(text: string): OperatorConfig {
  const raw = (parse(text) ?? {}) as Record<string, any>;
  const le = raw.leaderElection ?? {};
  const config: OperatorConfig = {
    leaderElection: {
      enabled: le.enabled ?? true,
      leaseName: le.leaseName ?? FALLBACK.leaseName,
      leaseDurationMs: seconds(
        le.leaseDurationSeconds,
        LEADER_ELECTION_DEFAULTS.leaseDurationMs,
        'leaderElection.leaseDurationSeconds',
      ),
      renewDeadlineMs: seconds(
        le.renewDeadlineSeconds,
        LEADER_ELECTION_DEFAULTS.renewDeadlineMs,
        'leaderElection.renewDeadlineSeconds',
      ),
      retryPeriodMs: seconds(
        le.retryPeriodSeconds,
        LEADER_ELECTION_DEFAULTS.retryPeriodMs,
        'leaderElection.retryPeriodSeconds',
      ),
    },
    defaults: { ...SPOT_POLICY_DEFAULTS, ...(raw.defaults ?? {}) },
    providers: {
      aws: {
        enabled: false,
        ...(raw.providers?.aws ?? {}),
        onDemandPricesUsdPerHour: prices(
          raw.providers?.aws?.onDemandPricesUsdPerHour,
          'providers.aws.onDemandPricesUsdPerHour',
        ),
      },
      gcp: { enabled: false, ...(raw.providers?.gcp ?? {}) },
      azure: { enabled: false, ...(raw.providers?.azure ?? {}) },
    },
    webhook: {
      enabled: raw.webhook?.enabled ?? true,
      port: port(raw.webhook?.port, FALLBACK.webhookPort, 'webhook.port'),
      certDir: raw.webhook?.certDir ?? FALLBACK.certDir,
    },
    metrics: {
      port: port(raw.metrics?.port, FALLBACK.metricsPort, 'metrics.port'),
    },
    status: {
      refreshIntervalMs: seconds(
        raw.status?.refreshIntervalSeconds,
        STATUS_REFRESH_INTERVAL_MS,
        'status.refreshIntervalSeconds',
      ),
    },
    pricing: {
      refreshIntervalMs: seconds(
        raw.pricing?.refreshIntervalSeconds,
        PRICE_REFRESH_INTERVAL_MS,
        'pricing.refreshIntervalSeconds',
      ),
    },
    migrationHistory: {
      retentionMs: days(
        raw.migrationHistory?.retentionDays,
        MIGRATION_RETENTION_DEFAULTS.maxAgeMs,
        'migrationHistory.retentionDays',
      ),
      maxPerWorkload: positiveInteger(
        raw.migrationHistory?.maxPerWorkload,
        MIGRATION_RETENTION_DEFAULTS.maxPerWorkload,
        'migrationHistory.maxPerWorkload',
      ),
    },
    prediction: {
      proactiveMoves: raw.prediction?.proactiveMoves ?? true,
      policy: {
        enterRisk: probability(
          raw.prediction?.enterRisk,
          DEFAULT_PROACTIVE_POLICY.enterRisk,
          'prediction.enterRisk',
        ),
        exitRisk: probability(
          raw.prediction?.exitRisk,
          DEFAULT_PROACTIVE_POLICY.exitRisk,
          'prediction.exitRisk',
        ),
        movesPerWindow: positiveInteger(
          raw.prediction?.movesPerHour,
          (DEFAULT_PROACTIVE_POLICY.movesPerWindow * HOUR_MS) /
            DEFAULT_PROACTIVE_POLICY.windowMs,
          'prediction.movesPerHour',
        ),
        windowMs: HOUR_MS,
      },
      historyConfigMap:
        raw.prediction?.historyConfigMap ?? FALLBACK.riskHistoryConfigMap,
    },
    checkpoint: {
      enabled: raw.checkpoint?.enabled ?? false,
      agentNamespace: raw.checkpoint?.agentNamespace || undefined,
      agentLabelSelector:
        raw.checkpoint?.agentLabelSelector ?? FALLBACK.agentLabelSelector,
      agentPort: port(
        raw.checkpoint?.agentPort,
        FALLBACK.agentPort,
        'checkpoint.agentPort',
      ),
      streamWhileDumping: raw.checkpoint?.streamWhileDumping ?? true,
      route: raw.checkpoint?.route ?? 'stop-and-copy',
    },
    replacement: {
      enabled: raw.replacement?.enabled ?? true,
      settleMs: seconds(
        raw.replacement?.rebalanceAfterSeconds,
        REBALANCE_DEFAULTS.settleMs,
        'replacement.rebalanceAfterSeconds',
      ),
      maxMovesPerHour: positiveInteger(
        raw.replacement?.rebalanceMovesPerHour,
        REBALANCE_DEFAULTS.maxMovesPerHour,
        'replacement.rebalanceMovesPerHour',
      ),
    },
  };
  if (typeof config.replacement.enabled !== 'boolean') {
    throw new Error(
      `replacement.enabled must be true or false, not ${JSON.stringify(
        config.replacement.enabled,
      )}`,
    );
  }
  if (!CHECKPOINT_ROUTES.includes(config.checkpoint.route)) {
    throw new Error(
      `checkpoint.route must be one of ${CHECKPOINT_ROUTES.join(
        ', ',
      )}, not ${JSON.stringify(config.checkpoint.route)}`,
    );
  }
  const { enterRisk, exitRisk } = config.prediction.policy;
  if (!(exitRisk < enterRisk)) {
    throw new Error(
      `prediction.exitRisk (${exitRisk}) must be below prediction.enterRisk (${enterRisk}): a pool cools below exitRisk, or members would move back and forth on a risk that hovers at the threshold`,
    );
  }
  if (typeof config.prediction.proactiveMoves !== 'boolean') {
    throw new Error(
      `prediction.proactiveMoves must be true or false, not ${JSON.stringify(
        config.prediction.proactiveMoves,
      )}`,
    );
  }
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } =
    config.leaderElection;
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new Error(
      'leaderElection needs retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, or two replicas could lead at once',
    );
  }
  const ratio = config.defaults.permanentRatio;
  if (typeof ratio !== 'number' || ratio < 0 || ratio > 1) {
    throw new Error(
      `defaults.permanentRatio must be between 0 and 1, not ${JSON.stringify(
        ratio,
      )}`,
    );
  }
  if (config.providers.aws.enabled && !config.providers.aws.region) {
    throw new Error(
      'providers.aws.region is required when the AWS provider is enabled',
    );
  }
  return config;
}

/** Reads the configuration file, and the webhook's certificate from its directory. */
export function loadOperatorConfig(file: string): {
  config: OperatorConfig;
  webhookTls?: { cert: Buffer; key: Buffer };
} {
  const config = parseOperatorConfig(fs.readFileSync(file, 'utf8'));
  const webhookTls = config.webhook.enabled
    ? {
        cert: fs.readFileSync(path.join(config.webhook.certDir, 'tls.crt')),
        key: fs.readFileSync(path.join(config.webhook.certDir, 'tls.key')),
      }
    : undefined;
  return { config, webhookTls };
}
