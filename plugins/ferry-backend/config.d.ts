import { SchedulerServiceTaskScheduleDefinitionConfig } from '@backstage/backend-plugin-api';

export interface Config {
  /** Ferry: stateful services on spot capacity. */
  ferry?: {
    /**
     * Demo mode, which @ferry/plugin-ferry-backend-module-demo provides (its
     * other keys are documented there).
     */
    demo?: {
      /**
       * Run in demo mode. Defaults to true when the demo module is installed and
       * the Kubernetes plugin has no clusters configured; true without the module
       * is an error at startup.
       */
      enabled?: boolean;
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
