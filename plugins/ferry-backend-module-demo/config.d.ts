export interface Config {
  ferry?: {
    /**
     * Demo mode: the operator runs in-process against a simulated cluster that
     * replays real spot-market data, with the example workloads.
     */
    demo?: {
      /**
       * Run in demo mode. Defaults to true when the Kubernetes plugin has no
       * clusters configured (kubernetes.clusterLocatorMethods of type config),
       * false otherwise.
       */
      enabled?: boolean;
      /** Simulated time per wall-clock time; 60 (the default) makes a wall second a simulated minute. */
      speedup?: number;
      /** Simulated minutes between random spot reclaims; default 30. */
      reclaimEveryMinutes?: number;
      /** Seed of the simulation's random choices, for a repeatable demo; default 1. */
      seed?: number;
      /**
       * Days of the simulated market replayed before the portal serves, so its
       * charts, migrations and error budget start with that much history;
       * default 30, 0 for none. The month takes a few seconds of start-up.
       */
      historyDays?: number;
    };
  };
}
