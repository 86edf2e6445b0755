import { Config } from '@backstage/config';

/** Simulated time per wall-clock time in demo mode: a wall second is a simulated minute. */
export const DEFAULT_DEMO_SPEEDUP = 60;
/** Simulated minutes between random spot reclaims in demo mode. */
export const DEFAULT_DEMO_RECLAIM_EVERY_MINUTES = 30;
/**
 * Seed of the demo's market replay and random choices when `ferry.demo.seed` is
 * absent. With this seed the replayed month holds, beside the reclaims Ferry
 * moved ahead of, one it could not: a notice with too little time left, after
 * which two services held their quorum on two of three members for seconds.
 * That is the moment of risk a first look at the demo should show; the other
 * seeds we tried (1 to 20) had none.
 */
export const DEFAULT_DEMO_SEED = 14;
/** Days of the simulated market the demo replays before the portal serves: a month of history on the first look. */
export const DEFAULT_DEMO_HISTORY_DAYS = 30;

/** `ferry.demo.*`, or nothing when demo mode is off. */
export interface DemoConfig {
  speedup: number;
  reclaimEveryMinutes: number;
  seed: number;
  historyDays: number;
}

/**
 * Reads `ferry.demo.*`. Demo mode is on when `ferry.demo.enabled` says so, and
 * otherwise when the Kubernetes plugin has no clusters in its `config` locator.
 */
export function readDemoConfig(config: Config): DemoConfig | undefined {
  const enabled =
    config.getOptionalBoolean('ferry.demo.enabled') ??
    !hasConfiguredClusters(config);
  if (!enabled) return undefined;
  const demo = {
    speedup:
      config.getOptionalNumber('ferry.demo.speedup') ?? DEFAULT_DEMO_SPEEDUP,
    reclaimEveryMinutes:
      config.getOptionalNumber('ferry.demo.reclaimEveryMinutes') ??
      DEFAULT_DEMO_RECLAIM_EVERY_MINUTES,
    seed: config.getOptionalNumber('ferry.demo.seed') ?? DEFAULT_DEMO_SEED,
    historyDays:
      config.getOptionalNumber('ferry.demo.historyDays') ??
      DEFAULT_DEMO_HISTORY_DAYS,
  };
  if (!(demo.speedup > 0)) {
    throw new Error(
      `ferry.demo.speedup must be a positive number (60 makes a wall second a simulated minute), got ${demo.speedup}`,
    );
  }
  if (!(demo.reclaimEveryMinutes > 0)) {
    throw new Error(
      `ferry.demo.reclaimEveryMinutes must be a positive number of simulated minutes, got ${demo.reclaimEveryMinutes}`,
    );
  }
  if (!(demo.historyDays >= 0)) {
    throw new Error(
      `ferry.demo.historyDays must be 0 (no history) or a positive number of days, got ${demo.historyDays}`,
    );
  }
  return demo;
}

function hasConfiguredClusters(config: Config): boolean {
  const methods =
    config.getOptionalConfigArray('kubernetes.clusterLocatorMethods') ?? [];
  return methods.some(
    method =>
      method.getString('type') === 'config' &&
      (method.getOptionalConfigArray('clusters') ?? []).length > 0,
  );
}
