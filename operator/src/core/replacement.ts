/**
 * The re-placement planner: which running members move because their policy
 * changed (reason `policy`) or because moves and node losses broke the floor or
 * the spread (reason `rebalance`).
 *
 * Where members belong comes from the placement planner (`planPlacement`), the
 * library the admission webhook and the migration planner place with too; this
 * file only decides which of its moves are worth making now. A workload moves
 * only when it is settled (every desired member running, ready, on a node that
 * takes pods, no move of it under way), and then at most as many members as
 * its quorum, PodDisruptionBudget and `maxConcurrentMoves` let be down at
 * once: moves are
 * serial and quorum-safe. Members on nodes with a disruption signal are the
 * migration planner's, so a workload with one waits.
 *
 * Hysteresis: outside a policy change a rebalance restores the permanent floor
 * or the spread, only once they have stayed broken for `settleMs`, and only
 * within `maxMovesPerHour`. Members above the floor on permanent capacity (spot
 * fallbacks, left there when spot could not take them) return to spot, and
 * spot members leave a dear pool, only when `priceMoveSavings` is set and the
 * target costs that much less than where they run (within the same budget): a
 * fallback that never comes back costs the on-demand price for good, a member
 * moved on a notice stays in whatever pool had room, and a move for a few
 * percent costs a move for nothing.
 */
import type { CapacityType } from '../api/v1alpha1';
import { CapacityBook, PlacementTarget } from './capacity';
import { concurrentMovesAllowed } from './migrationPlanner';
import { CapacityPool, nodeShareOf, NodeView, poolIdOf, WorkloadView } from './model';
import { planPlacement } from './placement';
import { maxMembersPerFailureDomain } from './quorum';

/** Why a member is re-placed. */
export type ReplacementReason = 'policy' | 'rebalance';

/** How eagerly broken floors and spreads are restored; see the file's header. */
export interface RebalancePolicy {
  /** How long a floor or spread must stay broken before a rebalance moves a member. */
  settleMs: number;
  /** Rebalance moves of one workload in any hour, at most. */
  maxMovesPerHour: number;
  /**
   * Moves for price: a member above the floor on permanent capacity returns to
   * spot, and a spot member moves to another spot pool, when the target costs
   * at least this share less (0.1: 10 % cheaper); never when omitted.
   */
  priceMoveSavings?: number;
}

/**
 * Defaults: a broken floor or spread waits 2 minutes (a replacement member the
 * webhook places by the floor is usually Ready by then, and a node that blinked
 * is back), and a workload rebalances at most 2 members an hour, so that a
 * flapping market costs a few moves, not a stream of them.
 */
export const REBALANCE_DEFAULTS: RebalancePolicy = {
  settleMs: 120_000,
  maxMovesPerHour: 2,
};

/** The window `maxMovesPerHour` counts in. */
export const REBALANCE_WINDOW_MS = 3_600_000;

/**
 * The saving of a member's cost at which a move for price pays: 10 %. A move
 * costs a few minutes of double running; below 10 % a price that wavers would
 * move members back and forth.
 */
export const PRICE_MOVE_SAVINGS = 0.1;

/** One workload as the re-placement planner sees it. */
export interface ReplacementWorkload {
  view: WorkloadView;
  /** False once the owner opted out: every member belongs on permanent capacity. */
  enabled: boolean;
  /** Members the workload asks for (its `spec.replicas`). */
  replicas: number;
  /** The policy changed since its members last reached where it says. */
  policyChanged: boolean;
  /**
   * Migrations of this workload not finished yet. A member whose move
   * replaced it (a Deployment's) is no longer in `view` while its Migration
   * still verifies and cleans up: the next move waits for it.
   */
  movesUnderWay: number;
  /** Rebalance moves of this workload in the last REBALANCE_WINDOW_MS. */
  recentRebalanceMoves: number;
  /**
   * Its controller is replacing its pods (a rollout): the members are about to
   * be deleted and recreated, and a move of one would lose its source mid-way.
   */
  rollingOut?: boolean;
  /** When its floor or spread was first seen broken, if it is. */
  brokenSince?: number;
}

/** What the re-placement planner needs. */
export interface ReplacementInput {
  now: number;
  workloads: readonly ReplacementWorkload[];
  nodes: readonly NodeView[];
  pools: readonly CapacityPool[];
  rebalance?: RebalancePolicy;
}

/** One re-placement move. */
export interface ReplacementMove {
  workload: string;
  pod: string;
  sourceNode: string;
  target: PlacementTarget;
  reason: ReplacementReason;
}

/** Where a workload stands. */
export type ReplacementState =
  /** Its members are where its policy says. */
  | 'placed'
  /** Members move now (`moves`). */
  | 'moving'
  /** Not every member is running and ready, one is moving, or a node of one is leaving: wait. */
  | 'settling'
  /** Its floor or spread is broken, and the hysteresis or the budget holds the rebalance back. */
  | 'held'
  /** No capacity can take what the policy asks; `detail` says what. */
  | 'unplaceable';

/** The re-placement planner's answer for one workload. */
export interface ReplacementOutcome {
  workload: string;
  state: ReplacementState;
  /** True while the permanent floor or the spread is broken. */
  broken: boolean;
  moves: ReplacementMove[];
  detail?: string;
}

/**
 * Plans the re-placement moves of every workload. Each workload is planned on
 * its own copy of the free capacity: a pass makes a few moves, and the webhook
 * and the scheduler book the room when each replacement is created.
 */
export function planReplacement(input: ReplacementInput): ReplacementOutcome[] {
  const book = new CapacityBook(input.nodes);
  const rebalance = input.rebalance ?? REBALANCE_DEFAULTS;
  const fleetMembersPerPool = new Map<string, number>();
  for (const { view } of input.workloads) {
    for (const member of view.members) {
      const node = member.node ? book.node(member.node) : undefined;
      if (node?.capacityType === 'spot') {
        const id = poolIdOf(node);
        fleetMembersPerPool.set(id, (fleetMembersPerPool.get(id) ?? 0) + 1);
      }
    }
  }
  return [...input.workloads]
    .sort((a, b) => (a.view.id < b.view.id ? -1 : 1))
    .map(workload => planOne(workload, book.copy(), input, rebalance, fleetMembersPerPool));
}

function planOne(
  workload: ReplacementWorkload,
  book: CapacityBook,
  input: ReplacementInput,
  rebalance: RebalancePolicy,
  fleetMembersPerPool: ReadonlyMap<string, number>,
): ReplacementOutcome {
  const view: WorkloadView = workload.enabled ? workload.view : { ...workload.view, permanentRatio: 1 };
  const id = view.id;
  const outcome = (state: ReplacementState, broken: boolean, moves: ReplacementMove[] = [], detail?: string) => ({
    workload: id,
    state,
    broken,
    moves,
    ...(detail ? { detail } : {}),
  });
  const settled =
    !workload.rollingOut &&
    workload.movesUnderWay === 0 &&
    view.members.length === workload.replicas &&
    view.members.every(m => {
      const node = m.node ? book.node(m.node) : undefined;
      return m.ready && !m.moving && node !== undefined && book.usable(node);
    });
  if (!settled) return outcome('settling', workload.brokenSince !== undefined);

  let plan;
  try {
    plan = planPlacement({ workload: view, nodes: book, pools: input.pools, fleetMembersPerPool, cheaperSpotSavings: rebalance.priceMoveSavings });
  } catch (error) {
    return outcome('unplaceable', false, [], (error as Error).message);
  }

  const nodeOf = (pod: string) => book.node(view.members.find(m => m.pod === pod)!.node!)!;
  const onPermanent = view.members.filter(m => book.node(m.node!)!.capacityType === 'on-demand').length;
  const deficit = Math.max(0, plan.permanentFloor - onPermanent);
  const overSpread = spreadBreaches(view, book);
  const broken = deficit > 0 || overSpread.size > 0;

  // Toward permanent first (the floor is safety), then off crowded domains, then to spot.
  const candidates = plan.assignments
    .filter(a => a.moves && a.from)
    .map(a => {
      const from = nodeOf(a.pod);
      return { assignment: a, from, kind: kindOf(from.capacityType, a.target.capacityType) };
    })
    .sort((a, b) => rank(a.kind) - rank(b.kind) || (a.assignment.pod < b.assignment.pod ? -1 : 1));
  if (candidates.length === 0) return outcome('placed', broken);

  let allowed = concurrentMovesAllowed(view);
  let reason: ReplacementReason = 'policy';
  let chosen = candidates;
  if (!workload.policyChanged) {
    // A rebalance restores the floor and the spread, and returns fallbacks to spot when that pays.
    reason = 'rebalance';
    let floorMoves = deficit;
    const pays = (c: (typeof candidates)[number]) =>
      rebalance.priceMoveSavings !== undefined &&
      deficit === 0 &&
      overSpread.size === 0 &&
      (c.assignment.reason === 'cheaper-spot' ||
        (c.kind === 'to-spot' &&
          savingOf(c.from, c.assignment.target, view.members.find(m => m.pod === c.assignment.pod)!.requests, input.pools) >=
            rebalance.priceMoveSavings));
    chosen = candidates.filter(c => {
      if (c.kind === 'floor' && floorMoves > 0) {
        floorMoves -= 1;
        return true;
      }
      if (pays(c)) return true;
      return c.kind !== 'to-spot' && c.from.capacityType === 'spot' && overSpread.has(c.from.name);
    });
    if (chosen.length === 0) return outcome('placed', broken);
    const onlyForPrice = chosen.every(pays);
    if (!onlyForPrice && (workload.brokenSince === undefined || input.now - workload.brokenSince < rebalance.settleMs)) {
      return outcome('held', true, [], `waiting ${Math.ceil(rebalance.settleMs / 1000)} s for the floor or spread to heal by itself`);
    }
    const budgetLeft = rebalance.maxMovesPerHour - workload.recentRebalanceMoves;
    if (budgetLeft <= 0) {
      return outcome('held', true, [], `${workload.recentRebalanceMoves} rebalance moves in the last hour, the most it may make`);
    }
    allowed = Math.min(allowed, budgetLeft);
  }
  const moves: ReplacementMove[] = chosen.slice(0, Math.max(0, allowed)).map(c => ({
    workload: id,
    pod: c.assignment.pod,
    sourceNode: c.from.name,
    target: c.assignment.target,
    reason,
  }));
  return outcome(moves.length > 0 ? 'moving' : 'settling', broken, moves);
}

/** The share of a member's cost now that a move to the target saves (0 when a price is unknown). */
export function savingOf(from: NodeView, target: PlacementTarget, requests: WorkloadView['members'][number]['requests'], pools: readonly CapacityPool[]): number {
  const priceOf = (capacityType: CapacityType, key: { instanceType: string; zone: string }) =>
    pools.find(p => p.capacityType === capacityType && poolIdOf(p) === poolIdOf(key));
  const now = priceOf(from.capacityType, from);
  const then = priceOf(target.capacityType, target.pool);
  if (!now || !then) return 0;
  const costNow = now.priceUsdPerHour * nodeShareOf(requests, from.allocatable);
  const costThen = then.priceUsdPerHour * nodeShareOf(requests, then.allocatable);
  return costNow > 0 ? 1 - costThen / costNow : 0;
}

/** What a move does: restores the floor, leaves a crowded spot pool or zone, or goes to spot. */
type MoveKind = 'floor' | 'spread' | 'to-spot';

/** Order of the kinds in a pass: the floor is safety, the spread next, spot savings last. */
const MOVE_KIND_RANK: Record<MoveKind, number> = { floor: 0, spread: 1, 'to-spot': 2 };

function kindOf(from: CapacityType, to: CapacityType): MoveKind {
  if (from === 'on-demand') return 'to-spot';
  return to === 'on-demand' ? 'floor' : 'spread';
}

function rank(kind: MoveKind): number {
  return MOVE_KIND_RANK[kind];
}

/**
 * The nodes of spot members that sit in a pool or a zone holding more of the
 * workload's spot members than losing it would leave a quorum for.
 */
function spreadBreaches(view: WorkloadView, book: CapacityBook): Set<string> {
  const max = maxMembersPerFailureDomain(view.members.length);
  const perPool = new Map<string, string[]>();
  const perZone = new Map<string, string[]>();
  for (const member of view.members) {
    const node = member.node ? book.node(member.node) : undefined;
    if (node?.capacityType !== 'spot') continue;
    perPool.set(poolIdOf(node), [...(perPool.get(poolIdOf(node)) ?? []), node.name]);
    perZone.set(node.zone, [...(perZone.get(node.zone) ?? []), node.name]);
  }
  const breaches = new Set<string>();
  for (const nodes of [...perPool.values(), ...perZone.values()]) {
    if (nodes.length > max) nodes.forEach(n => breaches.add(n));
  }
  return breaches;
}
