/**
 * Headroom: spare room on spot nodes that are already Ready, so that members
 * moving on a notice land at once instead of waiting for a node launch (about
 * 90 s of a 120 s AWS notice, longer than a 30 s GCP/Azure one). A pool's
 * reclaim takes all its members at once, so the room kept matches the most
 * members any one spot pool holds.
 */
import { CapacityPool, fits, NodeView, PoolKey, poolIdOf, Resources } from './model';
import { RISK_PRICE_WEIGHT } from './placement';

/** Upper bound of spare member slots kept, whatever the fleet's largest pool holds. */
export const MAX_HEADROOM_SLOTS = 16;

/** What headroom planning needs. */
export interface HeadroomInput {
  nodes: Iterable<NodeView>;
  pools: readonly CapacityPool[];
  /** Requests of a typical member (the largest, to be safe). */
  requests: Resources;
  /** Spare member slots wanted. */
  slots: number;
  /** Members each spot pool holds: spare room goes where a reclaim would not take it along. */
  membersPerPool?: ReadonlyMap<string, number>;
}

/** Spare slots now, and nodes to launch for the rest. */
export interface HeadroomPlan {
  freeSlots: number;
  launch: PoolKey[];
}

/** What a spare slot of the pool costs per hour, weighed by risk: idle room is paid per node, not per member. */
function slotScore(pool: CapacityPool, requests: Resources): number {
  return (pool.priceUsdPerHour / freeSlotsOf(pool.allocatable, requests)) * (1 + RISK_PRICE_WEIGHT * pool.interruptionRisk);
}

/** Member slots a node has free. */
export function freeSlotsOf(free: Resources, requests: Resources): number {
  if (!fits(free, requests)) return 0;
  return Math.floor(Math.min(free.cpuMillis / requests.cpuMillis, free.memoryMiB / requests.memoryMiB));
}

/** Spare slots wanted for a fleet: the most members one spot pool holds, bounded. */
export function headroomSlotsFor(membersPerSpotPool: Iterable<number>): number {
  let most = 0;
  for (const n of membersPerSpotPool) most = Math.max(most, n);
  return Math.min(most, MAX_HEADROOM_SLOTS);
}

/**
 * Plans spare spot nodes: counts free slots on usable spot nodes and, if short,
 * adds nodes in launchable pools that hold the fewest members (a reclaim of a
 * busy pool must not take the spare room with it), cheapest per slot first, one zone
 * after another so that the room survives any one pool's or zone's loss.
 */
export function planHeadroom(input: HeadroomInput): HeadroomPlan {
  let freeSlots = 0;
  for (const node of input.nodes) {
    if (node.capacityType !== 'spot' || node.unschedulable || node.terminatesAt !== undefined) continue;
    freeSlots += freeSlotsOf(node.free, input.requests);
  }
  const launch: PoolKey[] = [];
  if (freeSlots >= input.slots) return { freeSlots, launch };
  const members = (p: PoolKey) => input.membersPerPool?.get(poolIdOf(p)) ?? 0;
  const ranked = input.pools
    .filter(p => p.capacityType === 'spot' && p.launchable && freeSlotsOf(p.allocatable, input.requests) > 0)
    .sort(
      (a, b) =>
        members(a) - members(b) ||
        slotScore(a, input.requests) - slotScore(b, input.requests) ||
        (poolIdOf(a) < poolIdOf(b) ? -1 : 1),
    );
  const zones = [...new Set(ranked.map(p => p.zone))];
  let planned = freeSlots;
  for (let round = 0; planned < input.slots && ranked.length > 0; round++) {
    const zone = zones[round % zones.length];
    const used = new Set(launch.map(poolIdOf));
    const pool = ranked.find(p => p.zone === zone && !used.has(poolIdOf(p))) ?? ranked.find(p => p.zone === zone)!;
    launch.push({ instanceType: pool.instanceType, zone: pool.zone });
    planned += freeSlotsOf(pool.allocatable, input.requests);
  }
  return { freeSlots, launch };
}
