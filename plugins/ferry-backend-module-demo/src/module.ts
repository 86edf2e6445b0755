import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { createPortalDemo } from '@ferry/operator';
import { ferryClustersExtensionPoint } from '@ferry/plugin-ferry-node';
import { readDemoConfig } from './config';

/**
 * Ferry's demo mode: the operator in-process on a simulated cloud that replays
 * real spot-market data, with the example services, in place of a cluster.
 *
 * @public
 */
export const ferryModuleDemo = createBackendModule({
  pluginId: 'ferry',
  moduleId: 'demo',
  register(reg) {
    reg.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        lifecycle: coreServices.lifecycle,
        clusters: ferryClustersExtensionPoint,
      },
      async init({ config, logger, lifecycle, clusters }) {
        const demoConfig = readDemoConfig(config);
        if (!demoConfig) {
          logger.info(
            'Ferry demo mode is off (ferry.demo.enabled is false, or the Kubernetes plugin has clusters)',
          );
          return;
        }
        const demo = createPortalDemo(demoConfig);
        clusters.setDemoCluster(demo);
        // Ticks start once every plugin is up: before that, Ferry's backend plugin
        // records the history the demo replays (a tick would run it unobserved).
        lifecycle.addStartupHook(() => demo.start());
        lifecycle.addShutdownHook(() => demo.stop());
        logger.info(
          'Ferry runs in demo mode: the operator runs in-process against a simulated cluster',
        );
      },
    });
  },
});
