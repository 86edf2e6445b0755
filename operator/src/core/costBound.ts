/**
 * The policy's cost bound: the least a workload can cost at one moment under its
 * SpotPolicy, with nothing ever interrupted. Its permanent floor runs on the
 * cheapest permanent capacity; the rest on the cheapest spot pools that keep the
 * spread (the planner's: one member per spot pool, at most `replicas - quorum`
 * per zone), and on permanent capacity when the spread runs out of pools. Members
 * pay their share of a node, perfectly packed. Ferry's spend over this bound is
 * what interruptions, moves, headroom and placement choices cost.
 */
import { CapacityPool, nodeShareOf, Resources } from './model';
import { maxMembersPerFailureDomain, maxMembersPerSpotPool, permanentFloor } from './quorum';

/** A workload as the bound sees it. */
export interface BoundWorkload {
  replicas: number;
  permanentRatio: number;
  requests: Resources;
}

/** The bound's cost per hour, and how many members it puts on spot. */
export interface CostBound {
  usdPerHour: number;
  /** The part of it spent on spot. */
  spotUsdPerHour: number;
  spotMembers: number;
  permanentMembers: number;
}

/** The least the workload costs per hour with these pools and prices. */
export function policyCostBound(workload: BoundWorkload, pools: readonly CapacityPool[]): CostBound {
  const { replicas, requests } = workload;
  const floor = permanentFloor(replicas, workload.permanentRatio);
  const perDomain = maxMembersPerFailureDomain(replicas);
  const memberCost = (p: CapacityPool) => p.priceUsdPerHour * nodeShareOf(requests, p.allocatable);
  const fits = (p: CapacityPool) => p.allocatable.cpuMillis >= requests.cpuMillis && p.allocatable.memoryMiB >= requests.memoryMiB;
  let permanent = Infinity;
  for (const p of pools) if (p.capacityType === 'on-demand' && fits(p)) permanent = Math.min(permanent, memberCost(p));
  if (!Number.isFinite(permanent)) {
    throw new Error(`no permanent pool fits a member of ${requests.cpuMillis}m CPU and ${requests.memoryMiB} MiB; the bound needs one`);
  }
  // Pools within zones, each with its cap: taking the cheapest admitted pool
  // first is optimal (a laminar matroid).
  const spot = pools
    .filter(p => p.capacityType === 'spot' && fits(p))
    .map(p => ({ zone: p.zone, cost: memberCost(p) }))
    .sort((a, b) => a.cost - b.cost);
  const perPool = maxMembersPerSpotPool(replicas);
  const perZone = new Map<string, number>();
  let spotLeft = replicas - floor;
  let usd = floor * permanent;
  let spotMembers = 0;
  let spotUsd = 0;
  for (const p of spot) {
    if (spotLeft <= 0 || p.cost >= permanent) break;
    const take = Math.min(perPool, perDomain - (perZone.get(p.zone) ?? 0), spotLeft);
    if (take <= 0) continue;
    perZone.set(p.zone, (perZone.get(p.zone) ?? 0) + take);
    usd += take * p.cost;
    spotUsd += take * p.cost;
    spotMembers += take;
    spotLeft -= take;
  }
  usd += spotLeft * permanent;
  return { usdPerHour: usd, spotUsdPerHour: spotUsd, spotMembers, permanentMembers: replicas - spotMembers };
}
