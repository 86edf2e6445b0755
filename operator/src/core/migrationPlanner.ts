/**
 * The migration planner: from termination notices, drains, rebalance
 * recommendations and predictions, an ordered plan of moves.
 *
 * Most urgent first; serial per workload by default (its `maxConcurrentMoves`),
 * never more members in motion than the quorum and the PodDisruptionBudget
 * allow; each move's time estimated from its state size and the measured
 * bandwidth and checked against the notice time left; targets chosen for low risk
 * within the spread, falling back to permanent nodes when spot cannot take the
 * member or cannot take it in time. Every at-risk member ends up either in a move
 * that finishes before its deadline or in `unplanned` with the reason.
 */
import type { MigrationReason } from '../api/v1alpha1';
import { CapacityBook, PlacementTarget } from './capacity';
import { CapacityPool, MemberView, NodeView, poolIdOf, WorkloadView } from './model';
import { chooseSpotTarget, choosePermanentTarget, SpreadLedger } from './placement';
import { isLoneMember, maxMembersPerFailureDomain, quorumOf } from './quorum';

/** Something that puts a node's members at risk. */
export interface DisruptionSignal {
  node: string;
  reason: MigrationReason;
  /** When the node goes away (ms since epoch), if the signal says. */
  deadline?: number;
}

/** How long the parts of a move take; measured on the cluster, these are the defaults. */
export interface MoveTiming {
  /** Launching a new node until it is Ready. */
  nodeLaunchMs: number;
  /** Starting the target pod on a Ready node until it can receive state. */
  podStartMs: number;
  /** Final switch-over, while writes are paused. */
  switchoverMs: number;
  /** State transfer rate of one move. */
  bytesPerSecond: number;
  /** Transfers one source node sends at once; more wait for a free one. */
  transfersPerSourceNode: number;
}

/**
 * Defaults for move timing: a node launch of 90 s (EC2 launch plus kubelet
 * registration, typical for Karpenter), 10 s for a pod with a cached image, 1 s of
 * switch-over, 1 Gbit/s of effective transfer per move (replication, not the
 * link, is the bottleneck), and four transfers at once from one node (the
 * "up to 10 Gbit/s" of mid-size instances, with room to spare).
 */
export const DEFAULT_MOVE_TIMING: MoveTiming = {
  nodeLaunchMs: 90_000,
  podStartMs: 10_000,
  switchoverMs: 1_000,
  bytesPerSecond: 125_000_000,
  transfersPerSourceNode: 4,
};

/** Strength of each signal: a stronger one wins when a node has several. */
export const SIGNAL_STRENGTH: Record<MigrationReason, number> = {
  notice: 4,
  drain: 3,
  recommendation: 2,
  prediction: 1,
  // Not a node's signal: re-placement moves members without putting them at risk.
  policy: 0,
  rebalance: 0,
};

/** One planned move. */
export interface PlannedMove {
  workload: string;
  pod: string;
  sourceNode: string;
  target: PlacementTarget;
  reason: MigrationReason;
  deadline?: number;
  startAt: number;
  finishAt: number;
  /** True when the member goes to permanent capacity although it was on spot. */
  permanentFallback: boolean;
  /** False when the move is best effort: it cannot finish before the deadline. */
  meetsDeadline: boolean;
  /** Why it cannot finish before the deadline, when it cannot. */
  lateReason?: LateMoveReason;
}

/**
 * Why a move misses its deadline: even on a Ready node it takes longer than the
 * time left (only acting before the notice saves it); it waits for the
 * workload's move slot or the source's transfer lanes; or no Ready node within
 * the spread has room, and a launch takes too long.
 */
export type LateMoveReason = 'transfer-exceeds-time-left' | 'queued-behind-moves' | 'no-ready-room';

/** Why a member at risk could not be moved in time. */
export type UnplannedCause = 'deadline' | 'quorum' | 'no-capacity';

/** An at-risk member the plan cannot save, with the reason. */
export interface UnplannedMove {
  workload: string;
  pod: string;
  sourceNode: string;
  reason: MigrationReason;
  deadline?: number;
  cause: UnplannedCause;
  detail: string;
}

/** The ordered plan. */
export interface MigrationPlan {
  moves: PlannedMove[];
  unplanned: UnplannedMove[];
}

/** What the migration planner needs. */
export interface MigrationPlanInput {
  now: number;
  signals: readonly DisruptionSignal[];
  workloads: readonly WorkloadView[];
  nodes: Iterable<NodeView> | CapacityBook;
  pools: readonly CapacityPool[];
  timing?: MoveTiming;
}

interface AtRisk {
  workload: WorkloadView;
  member: MemberView;
  source: NodeView;
  signal: DisruptionSignal;
}

/** Plans the moves for the members on signalled nodes. */
export function planMigrations(input: MigrationPlanInput): MigrationPlan {
  const { now, pools } = input;
  const timing = input.timing ?? DEFAULT_MOVE_TIMING;
  const book = input.nodes instanceof CapacityBook ? input.nodes : new CapacityBook(input.nodes);

  const signalByNode = new Map<string, DisruptionSignal>();
  for (const signal of input.signals) {
    const existing = signalByNode.get(signal.node);
    if (!existing || SIGNAL_STRENGTH[signal.reason] > SIGNAL_STRENGTH[existing.reason]) {
      signalByNode.set(signal.node, { ...signal, deadline: signal.deadline ?? existing?.deadline });
    } else if (existing.deadline === undefined && signal.deadline !== undefined) {
      existing.deadline = signal.deadline;
    }
  }
  // Co-interruptions cluster within minutes: a pool with a notice is no target.
  const poolsAtRisk = new Set<string>();
  for (const signal of signalByNode.values()) {
    const node = book.node(signal.node);
    if (node && node.capacityType === 'spot' && signal.reason !== 'prediction') poolsAtRisk.add(poolIdOf(node));
  }

  const atRisk: AtRisk[] = [];
  for (const workload of input.workloads) {
    for (const member of workload.members) {
      if (member.moving || member.givenUp) continue;
      const signal = member.node ? signalByNode.get(member.node) : undefined;
      const source = member.node ? book.node(member.node) : undefined;
      if (signal && source) atRisk.push({ workload, member, source, signal });
    }
  }
  atRisk.sort(
    (a, b) =>
      (a.signal.deadline ?? Infinity) - (b.signal.deadline ?? Infinity) ||
      SIGNAL_STRENGTH[b.signal.reason] - SIGNAL_STRENGTH[a.signal.reason] ||
      compareStrings(a.workload.id, b.workload.id) ||
      (a.member.pod < b.member.pod ? -1 : 1),
  );

  const fleetMembersPerPool = new Map<string, number>();
  for (const workload of input.workloads) {
    for (const member of workload.members) {
      const node = member.node ? book.node(member.node) : undefined;
      if (node?.capacityType === 'spot') fleetMembersPerPool.set(poolIdOf(node), (fleetMembersPerPool.get(poolIdOf(node)) ?? 0) + 1);
    }
  }
  const slotsByWorkload = new Map<string, number[]>();
  const spreadByWorkload = new Map<string, SpreadLedger>();
  /** Per source node, when each of its transfer lanes is free. */
  const sourceLanes = new Map<string, number[]>();
  const moves: PlannedMove[] = [];
  const unplanned: UnplannedMove[] = [];

  for (const item of atRisk) {
    const { workload, member, source, signal } = item;
    const slots = slotsOf(workload);
    const report = (cause: UnplannedCause, detail: string) =>
      unplanned.push({
        workload: workload.id,
        pod: member.pod,
        sourceNode: source.name,
        reason: signal.reason,
        deadline: signal.deadline,
        cause,
        detail,
      });
    if (slots.length === 0) {
      report('quorum', `moving ${member.pod} would leave ${workload.id} below its quorum or PodDisruptionBudget`);
      continue;
    }
    const slotIndex = indexOfMin(slots);
    let lanes = sourceLanes.get(source.name);
    if (!lanes) sourceLanes.set(source.name, (lanes = new Array(Math.max(1, timing.transfersPerSourceNode)).fill(now)));
    const laneIndex = indexOfMin(lanes);
    const startAt = Math.max(now, slots[slotIndex], lanes[laneIndex]);
    const spread = spreadOf(workload);
    spread.remove(source.capacityType, source, source.name);
    const transferMs = (member.stateBytes / timing.bytesPerSecond) * 1000;
    const durationOf = (target: PlacementTarget) =>
      (target.kind === 'new-node'
        ? timing.nodeLaunchMs
        : Math.max(0, (book.node(target.node)?.readyAt ?? startAt) - startAt)) +
      timing.podStartMs +
      transferMs +
      timing.switchoverMs;
    const avoidPools = new Set(poolsAtRisk);
    avoidPools.add(poolIdOf(source));
    const wasSpot = source.capacityType === 'spot';
    // Fastest-enough first: spot where the spread allows, then permanent; each
    // on a new node only when an existing node cannot take it in time.
    const options: (() => PlacementTarget | undefined)[] = [
      () => (wasSpot ? chooseSpotTarget(book, pools, member.requests, spread, { avoidPools, fleetMembersPerPool }) : undefined),
      () =>
        wasSpot
          ? chooseSpotTarget(book, pools, member.requests, spread, { avoidPools, allowNewNodes: false, fleetMembersPerPool })
          : undefined,
      () => choosePermanentTarget(book, pools, member.requests, spread, { allowNewNodes: false }),
      () => choosePermanentTarget(book, pools, member.requests, spread),
    ];
    let chosen: PlacementTarget | undefined;
    let fastest: PlacementTarget | undefined;
    for (const option of options) {
      const target = option();
      if (!target) continue;
      if (!fastest || durationOf(target) < durationOf(fastest)) fastest = target;
      if (signal.deadline === undefined || startAt + durationOf(target) <= signal.deadline) {
        chosen = target;
        break;
      }
    }
    const target = chosen ?? fastest;
    if (!target) {
      spread.add(source.capacityType, source, source.name);
      report('no-capacity', `no spot or permanent node can take ${member.pod} (${member.requests.cpuMillis}m CPU, ${member.requests.memoryMiB} MiB)`);
      continue;
    }
    const finishAt = startAt + durationOf(target);
    const meetsDeadline = signal.deadline === undefined || finishAt <= signal.deadline;
    let lateReason: LateMoveReason | undefined;
    if (!meetsDeadline) {
      const quickest = timing.podStartMs + transferMs + timing.switchoverMs;
      if (now + quickest > signal.deadline!) lateReason = 'transfer-exceeds-time-left';
      else if (startAt + quickest > signal.deadline!) lateReason = 'queued-behind-moves';
      else lateReason = 'no-ready-room';
      report(
        'deadline',
        `the fastest move of ${member.pod} ends ${Math.ceil((finishAt - signal.deadline!) / 1000)} s after ${source.name} goes away`,
      );
    }
    if (target.kind === 'node') book.book(target.node, member.requests);
    if (target.capacityType === 'spot') {
      const id = poolIdOf(target.pool);
      fleetMembersPerPool.set(id, (fleetMembersPerPool.get(id) ?? 0) + 1);
    }
    spread.add(target.capacityType, target.pool, target.kind === 'node' ? target.node : undefined);
    slots[slotIndex] = finishAt;
    lanes[laneIndex] = finishAt - timing.switchoverMs;
    moves.push({
      workload: workload.id,
      pod: member.pod,
      sourceNode: source.name,
      target,
      reason: signal.reason,
      deadline: signal.deadline,
      startAt,
      finishAt,
      permanentFallback: wasSpot && target.capacityType === 'on-demand',
      meetsDeadline,
      lateReason,
    });
  }
  moves.sort((a, b) => a.startAt - b.startAt || (a.deadline ?? Infinity) - (b.deadline ?? Infinity));
  return { moves, unplanned };

  function slotsOf(workload: WorkloadView): number[] {
    let slots = slotsByWorkload.get(workload.id);
    if (!slots) {
      slots = new Array(concurrentMovesAllowed(workload)).fill(now);
      slotsByWorkload.set(workload.id, slots);
    }
    return slots;
  }

  function spreadOf(workload: WorkloadView): SpreadLedger {
    let spread = spreadByWorkload.get(workload.id);
    if (!spread) {
      spread = new SpreadLedger(maxMembersPerFailureDomain(workload.members.length));
      for (const m of workload.members) {
        const node = m.node ? book.node(m.node) : undefined;
        if (node) spread.add(node.capacityType, node, node.name);
      }
      spreadByWorkload.set(workload.id, spread);
    }
    return spread;
  }
}

/**
 * Members of the workload that may be in motion at once: its configured maximum,
 * bounded by what the quorum and the PodDisruptionBudget leave after the members
 * already down.
 */
export function concurrentMovesAllowed(workload: WorkloadView): number {
  const n = workload.members.length;
  const down = workload.members.filter(m => !m.ready || !m.node || m.moving).length;
  // A lone member is never outvoted: its move is what keeps it (isLoneMember).
  const byQuorum = isLoneMember(n) ? 1 - down : n - quorumOf(n) - down;
  const byPdb = workload.pdbMaxUnavailable === undefined ? Infinity : workload.pdbMaxUnavailable - down;
  return Math.max(0, Math.min(workload.maxConcurrentMoves, byQuorum, byPdb));
}

function indexOfMin(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] < values[best]) best = i;
  return best;
}

function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
