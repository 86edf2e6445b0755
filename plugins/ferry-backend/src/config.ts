import {
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';

/** One Kubernetes cluster, as the Kubernetes plugin's `config` locator declares it. */
export interface KubernetesClusterConfig {
  name: string;
  url: string;
  serviceAccountToken?: string;
  skipTLSVerify: boolean;
  caData?: string;
  caFile?: string;
}

/** Ferry's settings, read once at startup from `ferry.*` and `kubernetes.*`. */
export interface FerryConfig {
  clusters: KubernetesClusterConfig[];
  catalogSyncSchedule: SchedulerServiceTaskScheduleDefinition;
  ingestionSchedule: SchedulerServiceTaskScheduleDefinition;
  retentionDays: number;
}

/** How often annotations are read from the catalog when `ferry.catalogSync.schedule` is absent. */
export const DEFAULT_CATALOG_SYNC_SCHEDULE: SchedulerServiceTaskScheduleDefinition =
  {
    frequency: { seconds: 30 },
    timeout: { minutes: 3 },
    initialDelay: { seconds: 0 },
  };
/** How often SpotPolicy status and Migrations are ingested when `ferry.ingestion.schedule` is absent. */
export const DEFAULT_INGESTION_SCHEDULE: SchedulerServiceTaskScheduleDefinition =
  {
    frequency: { seconds: 15 },
    timeout: { minutes: 2 },
    initialDelay: { seconds: 0 },
  };
/** In demo mode the simulated minute is a wall second, so the portal looks more often. */
export const DEFAULT_DEMO_INGESTION_SCHEDULE: SchedulerServiceTaskScheduleDefinition =
  {
    frequency: { seconds: 5 },
    timeout: { minutes: 1 },
    initialDelay: { seconds: 0 },
  };
/** Days of samples and migrations kept when `ferry.history.retentionDays` is absent: a year and a month. */
export const DEFAULT_RETENTION_DAYS = 400;

/**
 * Reads `ferry.*`, and the clusters of the Kubernetes plugin's `config` cluster
 * locator. `demo` says whether a module gave the plugin a demo cluster.
 */
export function readFerryConfig(
  config: Config,
  { demo }: { demo: boolean },
): FerryConfig {
  const clusters = readKubernetesClusters(config);
  if (config.getOptionalBoolean('ferry.demo.enabled') && !demo) {
    throw new Error(
      "ferry.demo.enabled is true, but demo mode is a module of its own: add @ferry/plugin-ferry-backend-module-demo to the backend (backend.add(import('@ferry/plugin-ferry-backend-module-demo'))) or set ferry.demo.enabled to false",
    );
  }
  const retentionDays =
    config.getOptionalNumber('ferry.history.retentionDays') ??
    DEFAULT_RETENTION_DAYS;
  if (!(retentionDays >= 1)) {
    throw new Error(
      `ferry.history.retentionDays must be at least 1, got ${retentionDays}`,
    );
  }
  return {
    clusters,
    catalogSyncSchedule: readSchedule(
      config,
      'ferry.catalogSync.schedule',
      DEFAULT_CATALOG_SYNC_SCHEDULE,
    ),
    ingestionSchedule: readSchedule(
      config,
      'ferry.ingestion.schedule',
      demo ? DEFAULT_DEMO_INGESTION_SCHEDULE : DEFAULT_INGESTION_SCHEDULE,
    ),
    retentionDays,
  };
}

function readSchedule(
  config: Config,
  key: string,
  fallback: SchedulerServiceTaskScheduleDefinition,
): SchedulerServiceTaskScheduleDefinition {
  const section = config.getOptionalConfig(key);
  return section
    ? readSchedulerServiceTaskScheduleDefinitionFromConfig(section)
    : fallback;
}

function readKubernetesClusters(config: Config): KubernetesClusterConfig[] {
  const methods =
    config.getOptionalConfigArray('kubernetes.clusterLocatorMethods') ?? [];
  return methods
    .filter(method => method.getString('type') === 'config')
    .flatMap(method => method.getOptionalConfigArray('clusters') ?? [])
    .map(cluster => {
      const authProvider =
        cluster.getOptionalString('authProvider') ?? 'serviceAccount';
      if (authProvider !== 'serviceAccount') {
        throw new Error(
          `Ferry reaches clusters with a service account token; cluster ${cluster.getString(
            'name',
          )} uses authProvider ${authProvider}`,
        );
      }
      return {
        name: cluster.getString('name'),
        url: cluster.getString('url'),
        serviceAccountToken: cluster.getOptionalString('serviceAccountToken'),
        skipTLSVerify: cluster.getOptionalBoolean('skipTLSVerify') ?? false,
        caData: cluster.getOptionalString('caData'),
        caFile: cluster.getOptionalString('caFile'),
      };
    });
}
