/**
 * The placement planner: where each member of an opted-in workload should run.
 *
 * Rules, in order: at least the permanent floor on permanent nodes; the rest on
 * spot, one member per (instance type × zone) pool and at most `replicas -
 * quorum` per zone, so that losing the spot capacity of any one zone, or any
 * minority of the workload's pools in one burst, leaves the quorum standing; pools ranked by
 * price and interruption risk together; node capacity respected; and members
 * already placed validly stay where they are (minimal churn). Spot members that
 * the spread or the market cannot take fall back to permanent nodes.
 */
import type { CapacityType } from '../api/v1alpha1';
import { CapacityBook, PlacementTarget } from './capacity';
import {
  CapacityPool,
  MemberView,
  NodeView,
  PoolKey,
  poolIdOf,
  Resources,
  WorkloadView,
  nodeShareOf,
} from './model';
import { maxMembersPerFailureDomain, permanentFloor, quorumOf } from './quorum';

/**
 * How much interruption risk weighs against price when ranking spot pools: a
 * pool's score is its per-member cost times (1 + weight × risk within the
 * horizon). A 20-minute risk r is about 3r reclaims an hour, and a reclaim costs
 * Ferry about an hour of the pool's price (the live move's double running, a
 * launched target, the headroom it uses): weight 3. At 20 the model's risk
 * outweighed price (with the shipped coefficients Ferry paid a third more for
 * spot than the cheapest spread, on the placement bench with no reclaim at all).
 */
export const RISK_PRICE_WEIGHT = 3;

/**
 * How much each fleet member already in a spot pool adds to the pool's score
 * (3 % per member). A pool's reclaim takes all its members at once, and each of
 * them needs a target within the notice: spreading the fleet, not only each
 * workload, keeps those bursts small, and the headroom kept for the largest of
 * them with it (at 1 % the fleet piled into a few pools and the headroom cost 7 %
 * of the policy's bound on the placement bench; at 3 %, under 2 % with
 * generated reclaims).
 */
export const POOL_CONCENTRATION_WEIGHT = 0.03;

/** Why a member is planned where it is. */
export type PlacementReason =
  | 'kept'
  | 'unscheduled'
  | 'node-leaving'
  | 'permanent-floor'
  | 'to-spot'
  | 'spread'
  | 'spot-exhausted'
  | 'cheaper-spot';

/** The decision for one member. */
export interface MemberAssignment {
  pod: string;
  /** The node it runs on now, if any. */
  from?: string;
  target: PlacementTarget;
  /** True when the member must move (or be scheduled) to reach the target. */
  moves: boolean;
  reason: PlacementReason;
}

/** Where every member of one workload should run. */
export interface PlacementPlan {
  workload: string;
  quorum: number;
  permanentFloor: number;
  /** Most members one zone's spot capacity may hold. */
  maxPerFailureDomain: number;
  /** Most members one spot pool may hold. */
  maxPerSpotPool: number;
  assignments: MemberAssignment[];
  /** Spot members put on permanent capacity because no spot pool could take them. */
  spotFallbacks: number;
}

/** What the placement planner needs to decide for one workload. */
export interface PlacementInput {
  workload: WorkloadView;
  /** The cluster's nodes, or a book shared across several workloads' plans. */
  nodes: Iterable<NodeView> | CapacityBook;
  /** Spot and permanent pools with their current prices and risks. */
  pools: readonly CapacityPool[];
  /** Members of all opted-in workloads in each spot pool now, to spread the fleet. */
  fleetMembersPerPool?: ReadonlyMap<string, number>;
  /**
   * A spot member moves to another spot pool when that pool's score is at
   * least this share lower (0.1: 10 %); never when omitted (minimal churn). A
   * member moved on a notice lands where there is room, and without this stays
   * in a dearer pool after the cheap one is back.
   */
  cheaperSpotSavings?: number;
}

/** Occupancy of failure domains by one workload's spot members, and the nodes it uses. */
export class SpreadLedger {
  readonly spotPerPool = new Map<string, number>();
  readonly spotPerZone = new Map<string, number>();
  readonly membersPerZone = new Map<string, number>();
  readonly nodesUsed = new Set<string>();

  constructor(
    readonly maxPerDomain: number,
    readonly maxPerPool: number = Math.min(1, maxPerDomain),
  ) {}

  admitsSpot(pool: PoolKey): boolean {
    return (
      (this.spotPerPool.get(poolIdOf(pool)) ?? 0) < this.maxPerPool &&
      (this.spotPerZone.get(pool.zone) ?? 0) < this.maxPerDomain
    );
  }

  add(capacityType: CapacityType, pool: PoolKey, node?: string): void {
    if (capacityType === 'spot') {
      increment(this.spotPerPool, poolIdOf(pool), 1);
      increment(this.spotPerZone, pool.zone, 1);
    }
    increment(this.membersPerZone, pool.zone, 1);
    if (node) this.nodesUsed.add(node);
  }

  remove(capacityType: CapacityType, pool: PoolKey, node?: string): void {
    if (capacityType === 'spot') {
      increment(this.spotPerPool, poolIdOf(pool), -1);
      increment(this.spotPerZone, pool.zone, -1);
    }
    increment(this.membersPerZone, pool.zone, -1);
    if (node) this.nodesUsed.delete(node);
  }
}

/** A spot pool's score: lower is better. */
export function spotPoolScore(pool: CapacityPool, requests: Resources): number {
  return (
    pool.priceUsdPerHour *
    nodeShareOf(requests, pool.allocatable) *
    (1 + RISK_PRICE_WEIGHT * pool.interruptionRisk)
  );
}

/** Options for choosing a target. */
export interface TargetChoice {
  /** Pools the member must not go to (its own pool when it is being reclaimed). */
  avoidPools?: ReadonlySet<string>;
  /** When false, only nodes that exist already are considered (no launch wait). */
  allowNewNodes?: boolean;
  /** Fleet members per spot pool; see `POOL_CONCENTRATION_WEIGHT`. */
  fleetMembersPerPool?: ReadonlyMap<string, number>;
}

/** The best spot target within the spread, or undefined when no spot pool can take the member. */
export function chooseSpotTarget(
  book: CapacityBook,
  pools: readonly CapacityPool[],
  requests: Resources,
  spread: SpreadLedger,
  choice: TargetChoice = {},
): PlacementTarget | undefined {
  const ranked = pools
    .filter(p => p.capacityType === 'spot' && spread.admitsSpot(p))
    .filter(p => !choice.avoidPools?.has(poolIdOf(p)))
    .map(p => ({
      pool: p,
      score:
        spotPoolScore(p, requests) *
        (1 + POOL_CONCENTRATION_WEIGHT * (choice.fleetMembersPerPool?.get(poolIdOf(p)) ?? 0)),
    }))
    .sort((a, b) => a.score - b.score || compareKeys(a.pool, b.pool));
  for (const { pool } of ranked) {
    const node = book.findRoom('spot', pool, requests, spread.nodesUsed);
    if (node) return { kind: 'node', node: node.name, capacityType: 'spot', pool: keyOf(pool) };
    if (pool.launchable && choice.allowNewNodes !== false && fitsPool(pool, requests)) {
      return { kind: 'new-node', capacityType: 'spot', pool: keyOf(pool) };
    }
  }
  return undefined;
}

/** No node avoided: the last resort of `choosePermanentTarget` may share a node with the workload. */
const NO_NODES: ReadonlySet<string> = new Set();

/**
 * The best permanent target: an existing permanent node with room in the zone
 * where the workload has fewest members, else a new node of the cheapest
 * launchable permanent pool there. Where no pool can launch (a cluster, whose
 * node groups or Karpenter launch nodes, not Ferry), a permanent node that
 * already runs a member of the workload comes next: two members on one
 * permanent node beat a move with nowhere to go (a hand-off needs a node).
 * Only when no permanent node has room at all is the target a new node of a
 * pool that cannot launch: a pod placed there waits for its provisioner.
 */
export function choosePermanentTarget(
  book: CapacityBook,
  pools: readonly CapacityPool[],
  requests: Resources,
  spread: SpreadLedger,
  choice: TargetChoice = {},
): PlacementTarget | undefined {
  const permanent = pools.filter(p => p.capacityType === 'on-demand' && fitsPool(p, requests));
  const zones = [...new Set(permanent.map(p => p.zone))].sort(
    (a, b) =>
      (spread.membersPerZone.get(a) ?? 0) - (spread.membersPerZone.get(b) ?? 0) ||
      (a < b ? -1 : 1),
  );
  const poolsIn = (zone: string) =>
    permanent
      .filter(p => p.zone === zone)
      .sort(
        (a, b) =>
          a.priceUsdPerHour * nodeShareOf(requests, a.allocatable) -
            b.priceUsdPerHour * nodeShareOf(requests, b.allocatable) || compareKeys(a, b),
      );
  const nodeIn = (zone: string, avoid: ReadonlySet<string>): PlacementTarget | undefined => {
    for (const pool of poolsIn(zone)) {
      const node = book.findRoom('on-demand', pool, requests, avoid);
      if (node) return { kind: 'node', node: node.name, capacityType: 'on-demand', pool: keyOf(pool) };
    }
    return undefined;
  };
  for (const zone of zones) {
    const node = nodeIn(zone, spread.nodesUsed);
    if (node) return node;
    const launchable = poolsIn(zone).find(p => p.launchable);
    if (choice.allowNewNodes !== false && launchable) {
      return { kind: 'new-node', capacityType: 'on-demand', pool: keyOf(launchable) };
    }
  }
  for (const zone of zones) {
    const shared = nodeIn(zone, NO_NODES);
    if (shared) return shared;
  }
  if (choice.allowNewNodes !== false && zones.length > 0) {
    return { kind: 'new-node', capacityType: 'on-demand', pool: keyOf(poolsIn(zones[0])[0]) };
  }
  return undefined;
}

/** Plans where every member of the workload should run. */
export function planPlacement(input: PlacementInput): PlacementPlan {
  const { workload, pools } = input;
  const book = input.nodes instanceof CapacityBook ? input.nodes : new CapacityBook(input.nodes);
  const n = workload.members.length;
  const quorum = quorumOf(n);
  const floor = permanentFloor(n, workload.permanentRatio);
  const spotTarget = n - floor;
  const spread = new SpreadLedger(maxMembersPerFailureDomain(n, quorum));
  const poolById = new Map(pools.filter(p => p.capacityType === 'spot').map(p => [poolIdOf(p), p]));

  const assignments = new Map<string, MemberAssignment>();
  const current = (m: MemberView) => (m.node ? book.node(m.node) : undefined);

  // Keep permanent members up to the floor, zone-diverse first.
  const onPermanent = workload.members
    .filter(m => {
      const node = current(m);
      return node && node.capacityType === 'on-demand' && book.usable(node);
    })
    .sort((a, b) => comparePods(a, b));
  let keptPermanent = 0;
  const keptZones = new Set<string>();
  const permanentOrder = [
    ...onPermanent.filter(m => {
      const zone = current(m)!.zone;
      if (keptZones.has(zone)) return false;
      keptZones.add(zone);
      return true;
    }),
  ];
  permanentOrder.push(...onPermanent.filter(m => !permanentOrder.includes(m)));
  for (const member of permanentOrder) {
    if (keptPermanent >= floor) break;
    keep(member, current(member)!);
    keptPermanent += 1;
  }

  // Keep spot members whose pool is still within the spread, cheapest pools first.
  const onSpot = workload.members
    .filter(m => {
      const node = current(m);
      return node && node.capacityType === 'spot' && book.usable(node);
    })
    .map(m => {
      const node = current(m)!;
      const pool = poolById.get(poolIdOf(node));
      return { member: m, node, score: pool ? spotPoolScore(pool, m.requests) : Infinity };
    })
    .sort((a, b) => a.score - b.score || comparePods(a.member, b.member));
  let keptSpot = 0;
  for (const { member, node } of onSpot) {
    if (keptSpot >= spotTarget || !spread.admitsSpot(node)) continue;
    keep(member, node);
    keptSpot += 1;
  }

  // Move kept spot members to a pool that costs enough less, dearest first.
  if (input.cheaperSpotSavings !== undefined) {
    const kept = onSpot.filter(({ member }) => assignments.get(member.pod)?.reason === 'kept').reverse();
    for (const { member, node, score } of kept) {
      if (!Number.isFinite(score)) continue;
      spread.remove(node.capacityType, node, node.name);
      const other = chooseSpotTarget(book, pools, member.requests, spread, {
        avoidPools: new Set([poolIdOf(node)]),
        fleetMembersPerPool: input.fleetMembersPerPool,
      });
      const otherPool = other && poolById.get(poolIdOf(other.pool));
      if (other && otherPool && spotPoolScore(otherPool, member.requests) <= (1 - input.cheaperSpotSavings) * score) {
        assignments.delete(member.pod);
        place(member, other, 'cheaper-spot');
      } else {
        spread.add(node.capacityType, node, node.name);
      }
    }
  }

  // Place everything else: permanent slots first, then spot, falling back to permanent.
  const toPlace = workload.members.filter(m => !assignments.has(m.pod)).sort(comparePods);
  let spotFallbacks = 0;
  for (const member of toPlace) {
    const node = current(member);
    const reason = placementReasonOf(member, node && book.usable(node) ? node : undefined);
    if (keptPermanent < floor) {
      place(member, choosePermanentTarget(book, pools, member.requests, spread), reason === 'to-spot' ? 'permanent-floor' : reason);
      keptPermanent += 1;
      continue;
    }
    const spot = chooseSpotTarget(book, pools, member.requests, spread, { fleetMembersPerPool: input.fleetMembersPerPool });
    if (spot) {
      place(member, spot, reason);
      continue;
    }
    spotFallbacks += 1;
    if (node && node.capacityType === 'on-demand' && book.usable(node)) {
      keep(member, node, 'spot-exhausted');
    } else {
      place(member, choosePermanentTarget(book, pools, member.requests, spread), 'spot-exhausted');
    }
  }

  return {
    workload: workload.id,
    quorum,
    permanentFloor: floor,
    maxPerFailureDomain: spread.maxPerDomain,
    maxPerSpotPool: spread.maxPerPool,
    assignments: workload.members.map(m => assignments.get(m.pod)!),
    spotFallbacks,
  };

  function keep(member: MemberView, node: NodeView, reason: PlacementReason = 'kept'): void {
    spread.add(node.capacityType, node, node.name);
    assignments.set(member.pod, {
      pod: member.pod,
      from: member.node,
      target: { kind: 'node', node: node.name, capacityType: node.capacityType, pool: keyOf(node) },
      moves: false,
      reason,
    });
  }

  function place(member: MemberView, target: PlacementTarget | undefined, reason: PlacementReason): void {
    if (!target) {
      throw new Error(
        `No capacity for ${workload.id}/${member.pod}: no permanent pool offers ` +
          `${member.requests.cpuMillis}m CPU and ${member.requests.memoryMiB} MiB; add an on-demand instance type large enough`,
      );
    }
    if (target.kind === 'node') book.book(target.node, member.requests);
    const from = member.node ? book.node(member.node) : undefined;
    if (from) book.release(from.name, member.requests);
    spread.add(target.capacityType, target.pool, target.kind === 'node' ? target.node : undefined);
    assignments.set(member.pod, { pod: member.pod, from: member.node, target, moves: true, reason });
  }
}

function fitsPool(pool: CapacityPool, requests: Resources): boolean {
  return (
    pool.allocatable.cpuMillis >= requests.cpuMillis && pool.allocatable.memoryMiB >= requests.memoryMiB
  );
}

function keyOf(pool: PoolKey): PoolKey {
  return { instanceType: pool.instanceType, zone: pool.zone };
}

function compareKeys(a: PoolKey, b: PoolKey): number {
  const x = poolIdOf(a);
  const y = poolIdOf(b);
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

function comparePods(a: MemberView, b: MemberView): number {
  if (a.pod === b.pod) return 0;
  return a.pod < b.pod ? -1 : 1;
}

/** Why a member that keeps no valid slot is placed again; `usableNode` is its node if that still takes pods. */
function placementReasonOf(member: MemberView, usableNode: NodeView | undefined): PlacementReason {
  if (!member.node) return 'unscheduled';
  if (!usableNode) return 'node-leaving';
  return usableNode.capacityType === 'on-demand' ? 'to-spot' : 'spread';
}

function increment(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
