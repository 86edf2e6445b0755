import type { CapacityType } from '../api/v1alpha1';
import { CapacityPool, fits, NodeView, PoolKey, poolIdOf, Resources } from './model';

/** Where a member should run: an existing node, or a node still to launch in a pool. */
export type PlacementTarget =
  | { kind: 'node'; node: string; capacityType: CapacityType; pool: PoolKey }
  | { kind: 'new-node'; capacityType: CapacityType; pool: PoolKey };

/**
 * A working copy of the cluster's free capacity, indexed by pool, that a planner
 * books into as it decides, so that two decisions never take the same room.
 * Planners own one per planning pass; the cluster itself is never mutated.
 */
export class CapacityBook {
  /** Free room of the nodes this book has booked into or released from; the others have their view's. */
  private readonly changed = new Map<string, Resources>();
  private readonly byPool: Map<string, NodeView[]>;
  private readonly nodes: Map<string, NodeView>;

  constructor(nodes: Iterable<NodeView>) {
    this.nodes = new Map();
    this.byPool = new Map();
    for (const node of nodes) {
      this.nodes.set(node.name, node);
      const id = bucketOf(node.capacityType, node);
      let list = this.byPool.get(id);
      if (!list) this.byPool.set(id, (list = []));
      list.push(node);
    }
    for (const list of this.byPool.values()) list.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * A working copy of this book: its bookings are its own. The nodes and their
   * index are shared (neither changes), so a planner that plans each workload on
   * a fresh copy does not index thousands of nodes once per workload.
   */
  copy(): CapacityBook {
    const copy: CapacityBook = Object.create(CapacityBook.prototype);
    Object.assign(copy, {
      nodes: this.nodes,
      byPool: this.byPool,
      changed: new Map([...this.changed].map(([name, free]) => [name, { ...free }])),
    });
    return copy;
  }

  /** The node by name, if the cluster has it. */
  node(name: string): NodeView | undefined {
    return this.nodes.get(name);
  }

  /** Whether the node may take new pods: no termination notice, not cordoned or draining. */
  usable(node: NodeView): boolean {
    return !node.unschedulable && node.terminatesAt === undefined;
  }

  /**
   * The usable node of the pool with the most room left for the requests,
   * avoiding the given nodes. Least-allocated first (as kube-scheduler scores
   * by default): members spread over nodes, so one reclaimed node holds few of
   * them and its network link is not a queue of state transfers.
   */
  findRoom(
    capacityType: CapacityType,
    pool: PoolKey,
    requests: Resources,
    avoid: ReadonlySet<string>,
  ): NodeView | undefined {
    let best: NodeView | undefined;
    let bestRoom = -1;
    for (const node of this.byPool.get(bucketOf(capacityType, pool)) ?? []) {
      if (avoid.has(node.name) || !this.usable(node)) continue;
      const free = this.changed.get(node.name) ?? node.free;
      if (!fits(free, requests)) continue;
      const room = Math.min(free.cpuMillis / node.allocatable.cpuMillis, free.memoryMiB / node.allocatable.memoryMiB);
      if (room > bestRoom) {
        best = node;
        bestRoom = room;
      }
    }
    return best;
  }

  /** Takes room on a node for a decision just made. */
  book(nodeName: string, requests: Resources): void {
    const free = this.freeToChange(nodeName);
    if (!free) return;
    free.cpuMillis -= requests.cpuMillis;
    free.memoryMiB -= requests.memoryMiB;
  }

  /** Gives back room on a node that a member leaves. */
  release(nodeName: string, requests: Resources): void {
    const free = this.freeToChange(nodeName);
    if (!free) return;
    free.cpuMillis += requests.cpuMillis;
    free.memoryMiB += requests.memoryMiB;
  }

  /** The node's free room as this book's own, to change; undefined for a node it does not know. */
  private freeToChange(nodeName: string): Resources | undefined {
    let free = this.changed.get(nodeName);
    if (!free) {
      const node = this.nodes.get(nodeName);
      if (!node) return undefined;
      this.changed.set(nodeName, (free = { ...node.free }));
    }
    return free;
  }

  /** Pools (by capacity type) that have at least one node. */
  poolsWithNodes(capacityType: CapacityType): PoolKey[] {
    const out: PoolKey[] = [];
    for (const list of this.byPool.values()) {
      if (list[0].capacityType === capacityType) out.push(list[0]);
    }
    return out;
  }
}

function bucketOf(capacityType: CapacityType, pool: PoolKey): string {
  return `${capacityType}:${poolIdOf(pool)}`;
}

/** The pool of a target, as a spot-or-permanent capacity pool, for pricing. */
export function findPool(
  pools: readonly CapacityPool[],
  capacityType: CapacityType,
  pool: PoolKey,
): CapacityPool | undefined {
  return pools.find(
    p =>
      p.capacityType === capacityType &&
      p.instanceType === pool.instanceType &&
      p.zone === pool.zone,
  );
}
