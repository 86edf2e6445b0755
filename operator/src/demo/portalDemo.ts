import type { FerryDemoCluster } from '@ferry/plugin-ferry-node';
import { DemoOperator } from './DemoOperator';
import { EXAMPLE_WORKLOADS } from './exampleWorkloads';

/** How the portal's demo runs: `ferry.demo.*` of its configuration. */
export interface PortalDemoOptions {
  /** Simulated time per wall-clock time. */
  speedup: number;
  /** Simulated minutes between extra reclaims of a random spot node in use. */
  reclaimEveryMinutes: number;
  /** Seed of the market replay and the random choices. */
  seed: number;
  /**
   * Days of the market replayed before the portal serves, so that its charts,
   * migrations and error budget start with that much history; 0 for none.
   */
  historyDays: number;
}

/** The demo as the portal runs it: a cluster to read, started and stopped with the backend. */
export interface PortalDemo extends FerryDemoCluster {
  start(): void;
  stop(): void;
}

/**
 * The operator's entry point for the portal's demo module: the operator
 * in-process on the simulated cloud, with the example services.
 */
export function createPortalDemo(options: PortalDemoOptions): PortalDemo {
  return new DemoOperator({ workloads: EXAMPLE_WORKLOADS, ...options });
}
