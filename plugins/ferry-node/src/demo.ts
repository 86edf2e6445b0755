import type { FerryClusterClient } from './FerryClusterClient';

/**
 * The in-process cluster of demo mode: the operator on a simulated cloud, which
 * the portal reads like any cluster and whose spot nodes it may reclaim on request.
 *
 * @public
 */
export interface FerryDemoCluster extends FerryClusterClient {
  /** Spot nodes that run Ferry-managed replicas now. */
  listSpotNodesInUse(): string[];
  /** Spot nodes in use that have no termination notice yet: the ones a reclaim would still move replicas off. */
  listReclaimableSpotNodes(): string[];
  /** Makes the simulated cloud take a spot node back, as it would on its own. */
  reclaimNode(nodeName: string): void;
}
