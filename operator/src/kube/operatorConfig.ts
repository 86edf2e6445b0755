import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SPOT_POLICY_DEFAULTS } from '../api/v1alpha1';
import { LEADER_ELECTION_DEFAULTS } from './LeaderElector';

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
    aws: { enabled: boolean; region?: string; interruptionQueueUrl?: string };
    gcp: { enabled: boolean };
    azure: { enabled: boolean };
  };
  webhook: { enabled: boolean; port: number; certDir: string };
  metrics: { port: number };
}

/** Ports and paths when the file says nothing; the chart's values say the same. */
const FALLBACK = {
  leaseName: 'ferry-leader',
  webhookPort: 9443,
  certDir: '/etc/ferry/tls',
  metricsPort: 8080,
};

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
      aws: { enabled: false, ...(raw.providers?.aws ?? {}) },
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
  };
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
