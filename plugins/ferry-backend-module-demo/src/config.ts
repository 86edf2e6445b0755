import { Config } from '@backstage/config';

/** Simulated time per wall-clock time in demo mode: a wall second is a simulated minute. */
export const DEFAULT_DEMO_SPEEDUP = 60;
/** Simulated minutes between random spot reclaims in demo mode. */
export const DEFAULT_DEMO_RECLAIM_EVERY_MINUTES = 30;
/** Seed of the demo's random choices when `ferry.demo.seed` is absent. */
export const DEFAULT_DEMO_SEED = 1;

/** `ferry.demo.*`, or nothing when demo mode is off. */
export interface DemoConfig {
  speedup: number;
  reclaimEveryMinutes: number;
  seed: number;
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
