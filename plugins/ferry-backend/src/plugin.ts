import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { ferryPermissions } from '@ferry/plugin-ferry-common';
import {
  FerryDemoCluster,
  ferryClustersExtensionPoint,
} from '@ferry/plugin-ferry-node';
import { readFerryConfig } from './config';
import { DatabaseFerryStore } from './database/DatabaseFerryStore';
import {
  ferryEntityResourceRef,
  ferryPermissionRules,
} from './permissions/rules';
import { createRouter } from './router/createRouter';
import { CatalogSync } from './services/CatalogSync/CatalogSync';
import { ClusterRegistry } from './services/Clusters/ClusterRegistry';
import { DemoHistory } from './services/Clusters/DemoHistory';
import { DemoReclaim } from './services/Clusters/DemoReclaim';
import { EntityAccess } from './services/EntityReader/EntityAccess';
import { HistoryIngestion } from './services/HistoryIngestion/HistoryIngestion';
import { PolicyService } from './services/PolicyService/PolicyService';
import { SpotReports } from './services/SpotReports/SpotReports';
import { WorkloadLocator } from './services/WorkloadLocator/WorkloadLocator';

/**
 * Ferry's backend plugin: the REST API under /api/ferry, the history store,
 * the catalog sync, the ingestion of what the operator reports, and permissions.
 *
 * @public
 */
export const ferryPlugin = createBackendPlugin({
  pluginId: 'ferry',
  register(env) {
    let demoCluster: FerryDemoCluster | undefined;
    env.registerExtensionPoint(ferryClustersExtensionPoint, {
      setDemoCluster(cluster) {
        if (demoCluster) {
          throw new Error(
            'Two backend modules gave Ferry a demo cluster; install one of them',
          );
        }
        demoCluster = cluster;
      },
    });
    env.registerInit({
      deps: {
        logger: coreServices.logger,
        config: coreServices.rootConfig,
        database: coreServices.database,
        httpRouter: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        auth: coreServices.auth,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
        scheduler: coreServices.scheduler,
        catalog: catalogServiceRef,
      },
      async init(deps) {
        const { logger, httpRouter, scheduler } = deps;
        const config = readFerryConfig(deps.config, { demo: !!demoCluster });
        const store = await DatabaseFerryStore.create({
          database: deps.database,
        });
        const clusters = ClusterRegistry.fromConfig(
          config,
          logger,
          demoCluster,
        );
        const demo = clusters.demo;
        if (!demo && config.clusters.length === 0) {
          logger.warn(
            'Ferry has no cluster: add one to kubernetes.clusterLocatorMethods (type config), or add @ferry/plugin-ferry-backend-module-demo for demo mode',
          );
        }

        deps.permissionsRegistry.addResourceType({
          resourceRef: ferryEntityResourceRef,
          permissions: ferryPermissions,
          rules: Object.values(ferryPermissionRules),
          getResources: async entityRefs => {
            const { items } = await deps.catalog.getEntitiesByRefs(
              { entityRefs },
              { credentials: await deps.auth.getOwnServiceCredentials() },
            );
            return items;
          },
        });

        const access = new EntityAccess(
          deps.catalog,
          deps.auth,
          deps.permissions,
        );
        const locator = new WorkloadLocator(clusters);
        const ingestion = new HistoryIngestion(
          clusters,
          store,
          logger,
          config.retentionDays,
        );
        const policies = new PolicyService(
          clusters,
          locator,
          store,
          ingestion,
          logger,
        );
        const catalogSync = new CatalogSync(access, policies, logger);
        if (demo) {
          // Before serving: the first look at the demo shows its past month.
          await new DemoHistory(clusters, ingestion, store, logger).record();
        }

        // The demo operator lives in this process, so each instance syncs its own.
        const scope = demo ? 'local' : 'global';
        await scheduler.scheduleTask({
          id: 'ferry-catalog-sync',
          scope,
          ...config.catalogSyncSchedule,
          fn: async () => {
            await catalogSync.run();
          },
        });
        await scheduler.scheduleTask({
          id: 'ferry-ingestion',
          scope,
          ...config.ingestionSchedule,
          fn: () => ingestion.ingestAll(),
        });
        await scheduler.scheduleTask({
          id: 'ferry-retention',
          frequency: { hours: 1 },
          timeout: { minutes: 15 },
          initialDelay: { minutes: 1 },
          fn: async () => {
            const deleted = await ingestion.enforceRetention();
            if (deleted > 0)
              logger.info(`Ferry retention deleted ${deleted} old rows`);
          },
        });

        httpRouter.use(
          await createRouter({
            logger,
            httpAuth: deps.httpAuth,
            clusters,
            access,
            locator,
            policies,
            reports: new SpotReports(store, Date.now, access),
            demoReclaim: new DemoReclaim(clusters, ingestion, store),
          }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
