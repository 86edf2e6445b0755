import type { FerryClusterClient } from './FerryClusterClient';
import type { SpotPolicy } from './v1alpha1';

/**
 * The SpotPolicies of a demo cluster as they stood at one moment of the history
 * it replays before it starts.
 *
 * @public
 */
export interface DemoClusterReport {
  /** Epoch milliseconds on the demo's clock. */
  at: number;
  /** Every SpotPolicy of the cluster, with its status at that moment. */
  policies: SpotPolicy[];
}

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
  /**
   * Makes the simulated cloud take a spot node back, as it would on its own;
   * resolves once the operator has planned the moves of its replicas.
   */
  reclaimNode(nodeName: string): void | Promise<void>;
  /**
   * Runs the past the demo cluster replays before it starts (the last weeks of
   * the simulated market) and yields its reports, oldest first, so the portal
   * records them as if it had watched the cluster all along. Its Migrations of
   * that past are listed as any others. Yields nothing when the demo has no such
   * past or has already run it.
   */
  replayHistory?():
    | Iterable<DemoClusterReport>
    | AsyncIterable<DemoClusterReport>;
}
