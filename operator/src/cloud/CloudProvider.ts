/**
 * The cloud behind the operator, one interface for every provider: `aws`, `gcp`,
 * `azure` on real clusters, and `simulated`, which replays real spot-market
 * data and is the default when no cluster is configured.
 */
import type { CapacityType } from '../api/v1alpha1';
import type { PoolKey, Resources } from '../core/model';

/** Clouds Ferry knows. */
export type CloudName = 'aws' | 'gcp' | 'azure';

/**
 * How long before a reclaim each cloud warns: AWS sends a two-minute spot
 * interruption notice, GCP and Azure 30 seconds.
 */
export const TERMINATION_NOTICE_MS: Record<CloudName, number> = {
  aws: 120_000,
  gcp: 30_000,
  azure: 30_000,
};

/** A spot pool as the cloud offers it now. */
export interface SpotPoolOffer extends PoolKey {
  region: string;
  spotPriceUsdPerHour: number;
  onDemandPriceUsdPerHour: number;
  /** Spot Instance Advisor band 0..4 of the (region, type), if the cloud has one. */
  advisorBand?: number;
  allocatable: Resources;
  /** False while the cloud has no spot capacity to launch in the pool. */
  launchable: boolean;
}

/** A node the cloud launched, with the labels its kubelet registers. */
export interface CloudNode extends PoolKey {
  name: string;
  capacityType: CapacityType;
  labels: Record<string, string>;
  allocatable: Resources;
  launchedAt: number;
  /** When the node is Ready for pods. */
  readyAt: number;
}

/** What the cloud tells the operator, strongest first. */
export type CloudSignal =
  | {
      kind: 'termination-notice';
      node: string;
      at: number;
      terminatesAt: number;
    }
  | { kind: 'rebalance-recommendation'; node: string; at: number }
  | { kind: 'terminated'; node: string; at: number }
  | { kind: 'capacity-lost'; pool: PoolKey; at: number }
  | { kind: 'capacity-restored'; pool: PoolKey; at: number };

/**
 * A cloud, as the operator uses it on every provider: what its spot pools cost
 * and how long its notices warn ahead. Launching nodes and polling signals are
 * not here: on a real cluster Karpenter or the node groups launch nodes and the
 * cloud pushes its signals (SQS, the metadata endpoints), so only a cloud that
 * does both for itself implements `NodeProvisioner` and `CloudSignalSource`.
 */
export interface CloudProvider {
  readonly cloud: CloudName | 'simulated';
  /** Lead time of this cloud's termination notices. */
  readonly terminationNoticeMs: number;
  /** The spot pools the operator may use, priced at `at`. */
  listSpotPools(at: number): Promise<SpotPoolOffer[]>;
}

/** A cloud that launches and gives back nodes when asked: the simulated one. */
export interface NodeProvisioner {
  /** Launches a node in a pool; fails when the pool has no capacity. */
  launchNode(
    pool: PoolKey,
    capacityType: CapacityType,
    at: number,
  ): Promise<CloudNode>;
  /** Gives a node back. */
  terminateNode(name: string, at: number): Promise<void>;
}

/** A cloud whose signals are read by asking for them: the simulated one (AWS pushes its own through SQS). */
export interface CloudSignalSource {
  /** Signals in [since, until), in time order. */
  pollSignals(since: number, until: number): Promise<CloudSignal[]>;
}
