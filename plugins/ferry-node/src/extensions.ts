import { createExtensionPoint } from '@backstage/backend-plugin-api';
import type { FerryDemoCluster } from './demo';

/**
 * What a module of Ferry's backend plugin may add to the clusters it talks to.
 *
 * @public
 */
export interface FerryClustersExtensionPoint {
  /**
   * Makes the portal run in demo mode against this in-process cluster instead of
   * the clusters of the Kubernetes plugin's configuration. One module may set it.
   */
  setDemoCluster(cluster: FerryDemoCluster): void;
}

/**
 * The extension point through which modules such as
 * `@ferry/plugin-ferry-backend-module-demo` give Ferry's backend plugin a cluster.
 *
 * @public
 */
export const ferryClustersExtensionPoint =
  createExtensionPoint<FerryClustersExtensionPoint>({
    id: 'ferry.clusters',
  });
