import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  /** Ferry: stateful services on spot capacity. */
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
    };
    /** Reading ferry.dev/* annotations from the catalog. */
    catalogSync?: {
      /** How often; default every 30 seconds, first run at startup. */
      schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
    /** Copying SpotPolicy status and Migration objects from each cluster into the history store. */
    ingestion?: {
      /** How often; default every 15 seconds (5 in demo mode), first run at startup. */
      schedule?: SchedulerServiceTaskScheduleDefinitionConfig;
    };
    /** The history store (the plugin's database: backend.database, SQLite in memory by default). */
    history?: {
      /**
       * Days of cost and availability samples and of migrations kept; older rows
       * are deleted hourly. Policy changes are kept as the audit trail. Default 400.
       */
      retentionDays?: number;
    };
  };
}
