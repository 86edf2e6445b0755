/**
 * The `simulated` cloud: nodes launched into the replayed market, labelled as
 * the real provisioners label them, warned before a reclaim with the cloud's
 * notice (2 min AWS, 30 s GCP/Azure) and taken back when their pool is
 * interrupted. Every spot node of an interrupted pool goes at once: capacity
 * is reclaimed per pool, and co-interruptions cluster within minutes.
 */
import type { CapacityType } from '../api/v1alpha1';
import { PoolKey, poolIdOf, Resources } from '../core/model';
import {
  CloudName,
  CloudNode,
  CloudProvider,
  CloudSignal,
  CloudSignalSource,
  NodeProvisioner,
  SpotPoolOffer,
  TERMINATION_NOTICE_MS,
} from './CloudProvider';
import { nodeLabelsFor } from './nodeLabels';
import { SimulatedSpotMarket } from './SimulatedSpotMarket';

/**
 * Share of an instance's CPU and memory that pods can request: the rest goes to
 * the kubelet, system daemons and eviction headroom (about what EKS reserves on
 * small instances).
 */
export const ALLOCATABLE_SHARE = 0.9;

/** Time from a launch request until a node is Ready, as on EKS with Karpenter. */
export const SIMULATED_NODE_LAUNCH_MS = 90_000;

/** A node of the simulated cloud. */
export interface SimulatedNode extends CloudNode {
  terminatesAt?: number;
}

/** The simulated cloud over a replayed market. */
export class SimulatedCloudProvider implements CloudProvider, NodeProvisioner, CloudSignalSource {
  readonly cloud = 'simulated' as const;
  readonly terminationNoticeMs: number;
  private readonly nodes = new Map<string, SimulatedNode>();
  /** Nodes with a termination notice, so a step need not look at every node. */
  private readonly leaving = new Set<string>();
  private serial = 0;

  constructor(
    readonly market: SimulatedSpotMarket,
    readonly flavour: CloudName = 'aws',
    readonly launchMs: number = SIMULATED_NODE_LAUNCH_MS,
  ) {
    this.terminationNoticeMs = TERMINATION_NOTICE_MS[flavour];
    if (market.options.noticeMs !== this.terminationNoticeMs) {
      throw new Error(
        `the market was built with ${market.options.noticeMs} ms notices but ${flavour} warns ${this.terminationNoticeMs} ms ahead; build it with noticeMs: TERMINATION_NOTICE_MS.${flavour}`,
      );
    }
  }

  /** What a node of the pool offers to pods. */
  allocatableOf(pool: PoolKey): Resources {
    const p = this.market.pool(poolIdOf(pool));
    return {
      cpuMillis: Math.floor(p.vcpus * 1000 * ALLOCATABLE_SHARE),
      memoryMiB: Math.floor(p.memoryGiB * 1024 * ALLOCATABLE_SHARE),
    };
  }

  /** The pools and their prices at `at`. */
  spotPoolsAt(at: number): SpotPoolOffer[] {
    return this.market.pools.map(p => ({
      instanceType: p.instanceType,
      zone: p.zone,
      region: p.region,
      spotPriceUsdPerHour: this.market.spotPrice(p.id, at),
      onDemandPriceUsdPerHour: p.onDemandUsdPerHour,
      advisorBand: p.advisorBand,
      allocatable: this.allocatableOf(p),
      launchable: this.market.launchable(p.id, at),
    }));
  }

  /** Launches a node now; undefined when a spot pool has no capacity. `readyAt` overrides the launch time (for a cluster that already exists). */
  launch(pool: PoolKey, capacityType: CapacityType, at: number, readyAt = at + this.launchMs): SimulatedNode | undefined {
    if (capacityType === 'spot' && !this.market.launchable(poolIdOf(pool), at)) return undefined;
    return this.adopt(pool, capacityType, at, readyAt);
  }

  /** A node that was already running when the simulation starts, whatever the pool's capacity now. */
  adopt(pool: PoolKey, capacityType: CapacityType, at: number, readyAt = at): SimulatedNode {
    const market = this.market.pool(poolIdOf(pool));
    this.serial += 1;
    const name =
      this.flavour === 'aws'
        ? `ip-10-${(this.serial >> 16) & 255}-${(this.serial >> 8) & 255}-${this.serial & 255}.${market.region}.compute.internal`
        : `ferry-${capacityType === 'spot' ? 'spot' : 'std'}-${market.zone}-${this.serial.toString(36)}`;
    const node: SimulatedNode = {
      name,
      instanceType: market.instanceType,
      zone: market.zone,
      capacityType,
      labels: nodeLabelsFor(this.flavour, capacityType, market.instanceType, market.zone, market.region),
      allocatable: this.allocatableOf(market),
      launchedAt: at,
      readyAt,
    };
    this.nodes.set(name, node);
    return node;
  }

  /** Gives a node back now. */
  release(name: string): void {
    this.nodes.delete(name);
  }

  /** Sends a termination notice to one spot node, as the cloud does before a reclaim. */
  noticeNode(name: string, at: number): number {
    const node = this.nodes.get(name);
    if (!node || node.capacityType !== 'spot') throw new Error(`No spot node named ${name}`);
    node.terminatesAt ??= at + this.terminationNoticeMs;
    this.leaving.add(name);
    return node.terminatesAt;
  }

  /** Every node now. */
  listNodes(): SimulatedNode[] {
    return [...this.nodes.values()];
  }

  /** Notices and reclaims in [from, to), in time order; reclaimed nodes are gone afterwards. */
  signalsBetween(from: number, to: number): CloudSignal[] {
    const signals: CloudSignal[] = [];
    for (const interruption of this.market.interruptionsNoticedBetween(from, to)) {
      const pool = this.market.pool(interruption.pool);
      signals.push({ kind: 'capacity-lost', pool: { instanceType: pool.instanceType, zone: pool.zone }, at: interruption.noticeAt });
      for (const node of this.nodes.values()) {
        if (node.capacityType !== 'spot' || poolIdOf(node) !== interruption.pool || node.terminatesAt !== undefined) continue;
        node.terminatesAt = interruption.reclaimAt;
        this.leaving.add(node.name);
        signals.push({ kind: 'termination-notice', node: node.name, at: interruption.noticeAt, terminatesAt: interruption.reclaimAt });
      }
    }
    for (const restored of this.market.restorationsBetween(from, to)) {
      const pool = this.market.pool(restored.pool);
      signals.push({ kind: 'capacity-restored', pool: { instanceType: pool.instanceType, zone: pool.zone }, at: restored.restoredAt });
    }
    for (const name of [...this.leaving]) {
      const node = this.nodes.get(name);
      if (!node) {
        this.leaving.delete(name);
      } else if (node.terminatesAt !== undefined && node.terminatesAt < to) {
        signals.push({ kind: 'terminated', node: node.name, at: node.terminatesAt });
        this.nodes.delete(node.name);
        this.leaving.delete(name);
      }
    }
    return signals.sort((a, b) => a.at - b.at);
  }

  /** The node by name, while it exists. */
  node(name: string): SimulatedNode | undefined {
    return this.nodes.get(name);
  }

  async listSpotPools(at: number): Promise<SpotPoolOffer[]> {
    return this.spotPoolsAt(at);
  }

  async launchNode(pool: PoolKey, capacityType: CapacityType, at: number): Promise<CloudNode> {
    const node = this.launch(pool, capacityType, at);
    if (!node) throw new Error(`no spot capacity in ${poolIdOf(pool)} at ${new Date(at).toISOString()}; try another pool`);
    return node;
  }

  async terminateNode(name: string): Promise<void> {
    this.release(name);
  }

  async pollSignals(since: number, until: number): Promise<CloudSignal[]> {
    return this.signalsBetween(since, until);
  }
}
