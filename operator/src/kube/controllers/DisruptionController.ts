import { createHash } from 'node:crypto';
import type {
  MigrationMethod,
  MigrationReason,
  MigrationSpec,
  SpotPolicy,
} from '../../api/v1alpha1';
import { Clock, systemClock, Timers } from '../../core/clock';
import {
  DisruptionSignal,
  planMigrations,
  PlannedMove,
  SIGNAL_STRENGTH,
} from '../../core/migrationPlanner';
import type { CapacityPool, NodeView, WorkloadView } from '../../core/model';
import { MigrationConflictError } from '../../migration/MigrationStore';
import {
  isFinalPhase,
  type MigrationStateMachine,
} from '../../migration/MigrationStateMachine';
import type { ClusterState } from '../state/ClusterState';
import type { OperatorMetrics } from '../metrics/OperatorMetrics';
import { WorkQueue } from './WorkQueue';
import type { EventSink } from '../../OperatorPorts';

/** The one key of the controller's queue: a plan covers the whole fleet, one pass at a time. */
const FLEET_KEY = 'fleet';
/** Migrations written at once in a pass: a burst of reclaims is recorded in parallel. */
const CONCURRENT_WRITES = 100;
/** A planned move due within this long is started now rather than in another pass. */
const START_WINDOW_MS = 1_000;
/**
 * Moves of one member off one node that may fail (roll back) before Ferry stops
 * trying: each retry is a new Migration, and a member given up no longer holds
 * its workload's move slot, so the other members' moves go ahead.
 */
export const MAX_MOVE_ATTEMPTS = 3;

/**
 * Turns disruption signals into Migrations: whenever a node's signal, a member or
 * a policy changes, it plans the moves for the members at risk with the decision
 * core's migration planner and records each planned move as a Migration (phase
 * Planned), for the migration engine to run. Passes are serial; a burst of
 * signals coalesces into one pass. Migration names are derived from the move, so
 * a pass that repeats one (before the watch shows it) finds it exists and moves on.
 */
export class DisruptionController {
  private readonly queue: WorkQueue;
  private readonly clock: Clock;
  /**
   * Signals the cloud sent about nodes (AWS's EventBridge events through SQS),
   * which the Node objects do not carry: held here, by node, until the node goes.
   */
  /** Members given up on (`namespace/pod@node`), so their Warning Event is recorded once. */
  private readonly givenUp = new Set<string>();
  private readonly cloudSignals = new Map<
    string,
    { signal: DisruptionSignal; seenAt: number }
  >();
  /** Cloud signals waiting for a pass to have planned with them. */
  private readonly passWaiters: {
    resolve: () => void;
    reject: (error: Error) => void;
  }[] = [];

  constructor(
    private readonly options: {
      state: ClusterState;
      machine: Pick<MigrationStateMachine, 'plan'>;
      /** The pools the cloud offers now (prices and risk), from the cloud provider. */
      pools: () => Promise<CapacityPool[]>;
      clock?: Clock;
      /** What its waits run on; the wall clock's timers when left out. */
      timers?: Timers;
      events?: EventSink;
      metrics?: OperatorMetrics;
      /** Measures a member and picks its driver under `auto`; without it `auto` is the hand-off. */
      chooseMethod?: MoveMethodChooser;
      onError?: (error: unknown) => void;
    },
  ) {
    this.clock = options.clock ?? systemClock;
    this.queue = new WorkQueue({
      timers: options.timers,
      clock: options.clock,
      concurrency: 1,
      reconcile: async () => {
        // Signals recorded from here on wait for the next pass, not this one.
        const waiting = this.passWaiters.splice(0);
        let nextStartAt: number | undefined;
        try {
          ({ nextStartAt } = await this.pass());
        } catch (error) {
          this.passWaiters.push(...waiting);
          throw error;
        }
        waiting.forEach(waiter => waiter.resolve());
        return nextStartAt === undefined
          ? undefined
          : { requeueAfterMs: Math.max(0, nextStartAt - this.clock.now()) };
      },
      onError: (_key, error) => options.onError?.(error),
    });
  }

  /** Something changed that may put members at risk: plan again. */
  changed(): void {
    this.queue.add(FLEET_KEY);
  }

  /**
   * A node's signal from the cloud: planned as a taint's is, with the cloud's own
   * deadline (the event's time plus the notice). The strongest one per node counts.
   * Resolves once a pass has planned with it and recorded the moves due now, so
   * that its SQS message is deleted only when they are on the cluster, and a
   * leader that dies first leaves the message to the next one.
   */
  cloudSignal(signal: DisruptionSignal): Promise<void> {
    const known = this.cloudSignals.get(signal.node);
    const stronger =
      !known ||
      SIGNAL_STRENGTH[signal.reason] > SIGNAL_STRENGTH[known.signal.reason] ||
      (signal.reason === known.signal.reason &&
        (signal.deadline ?? Infinity) < (known.signal.deadline ?? Infinity));
    if (stronger) {
      this.cloudSignals.set(signal.node, {
        signal,
        seenAt:
          known?.signal.reason === signal.reason
            ? known.seenAt
            : this.clock.now(),
      });
    }
    const planned = new Promise<void>((resolve, reject) =>
      this.passWaiters.push({ resolve, reject }),
    );
    this.changed();
    return planned;
  }

  /** The cloud says a node's signal is over (its instance runs again). */
  cloudSignalCleared(node: string): void {
    if (this.cloudSignals.delete(node)) this.changed();
  }

  /** Ferry's own prediction for a node is withdrawn (its pool cooled); a cloud signal held for it stays. */
  predictionWithdrawn(node: string): void {
    if (this.cloudSignals.get(node)?.signal.reason === 'prediction') {
      this.cloudSignalCleared(node);
    }
  }

  async stop(): Promise<void> {
    await this.queue.shutdown();
    for (const waiter of this.passWaiters.splice(0)) {
      waiter.reject(
        new Error('the disruption controller stopped before planning'),
      );
    }
  }

  /** One planning pass; returns the Migrations it created. */
  async reconcile(): Promise<string[]> {
    return (await this.pass()).created;
  }

  /**
   * Plans, and records the moves due now; a move the plan starts later (after
   * the one before it in its workload) waits for the pass at its start.
   */
  private async pass(): Promise<{ created: string[]; nextStartAt?: number }> {
    const { state } = this.options;
    const signals = this.signals();
    if (signals.length === 0) return { created: [] };
    const workloads = state.workloads();
    const policies = new Map(workloads.map(w => [w.view.id, w.policy]));
    const failed = this.failedMoves();
    const now = this.clock.now();
    const reasonOf = strongestReasonByNode(signals);
    const plan = planMigrations({
      now,
      signals,
      workloads: workloads.map(w => this.withoutGivenUp(w, failed, reasonOf)),
      nodes: this.nodeViews(),
      pools: await this.options.pools(),
    });
    const created: string[] = [];
    let nextStartAt: number | undefined;
    const due: { move: PlannedMove; policy: SpotPolicy }[] = [];
    for (const move of plan.moves) {
      const policy = policies.get(move.workload);
      if (!policy) continue;
      if (move.startAt > now + START_WINDOW_MS) {
        nextStartAt = Math.min(nextStartAt ?? Infinity, move.startAt);
        continue;
      }
      due.push({ move, policy });
    }
    // Each move is its own object: record them side by side, a few at a time.
    let next = 0;
    const record = async () => {
      while (next < due.length) {
        const { move, policy } = due[next++];
        const name = await this.record(move, policy, failed);
        if (name) created.push(name);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENT_WRITES }, record));
    return { created, nextStartAt };
  }

  /** The nodes' own signals and the cloud's, for nodes that still exist. */
  private signals(): DisruptionSignal[] {
    const { state } = this.options;
    for (const node of this.cloudSignals.keys()) {
      if (!state.nodes.get(node)) this.cloudSignals.delete(node);
    }
    return [
      ...state.signals(),
      ...[...this.cloudSignals.values()].map(c => c.signal),
    ];
  }

  /** The nodes as the planner sees them, a node the cloud signalled taking no new pods. */
  private nodeViews(): NodeView[] {
    const views = this.options.state.nodeViews();
    if (this.cloudSignals.size === 0) return views;
    return views.map(view => {
      const cloud = this.cloudSignals.get(view.name)?.signal;
      if (!cloud) return view;
      const deadline = cloud.reason === 'notice' ? cloud.deadline : undefined;
      return {
        ...view,
        unschedulable: true,
        terminatesAt:
          deadline === undefined
            ? view.terminatesAt
            : Math.min(deadline, view.terminatesAt ?? deadline),
      };
    });
  }

  /**
   * Moves that ended without moving their member (rolled back or failed), by
   * member and the node it leaves: `namespace/pod` → node → reasons tried.
   */
  private failedMoves(): Map<string, Map<string, MigrationReason[]>> {
    const failed = new Map<string, Map<string, MigrationReason[]>>();
    for (const m of this.options.state.migrations.list()) {
      const phase = m.status?.phase ?? 'Planned';
      if (!isFinalPhase(phase) || phase === 'Succeeded') continue;
      const member = `${m.metadata.namespace}/${m.spec.pod}`;
      const byNode = failed.get(member) ?? new Map<string, MigrationReason[]>();
      failed.set(member, byNode);
      byNode.set(m.spec.sourceNode, [
        ...(byNode.get(m.spec.sourceNode) ?? []),
        m.spec.reason,
      ]);
    }
    return failed;
  }

  /**
   * The workload as the planner should see it: a member whose moves off its
   * node for the node's signal failed MAX_MOVE_ATTEMPTS times is not planned
   * again (a Warning Event says so once), so that its workload's other members
   * still move. Only moves for that signal count: a drain or a notice gets its
   * own attempts however many re-placement moves (`policy`, `rebalance`) or
   * moves for a weaker signal failed before it.
   */
  private withoutGivenUp(
    workload: { policy: SpotPolicy; view: WorkloadView },
    failed: Map<string, Map<string, MigrationReason[]>>,
    reasonOf: ReadonlyMap<string, MigrationReason>,
  ): WorkloadView {
    const namespace = workload.policy.metadata.namespace;
    return {
      ...workload.view,
      members: workload.view.members.map(member => {
        const reason = member.node ? reasonOf.get(member.node) : undefined;
        const tries =
          (member.node &&
            failed
              .get(`${namespace}/${member.pod}`)
              ?.get(member.node)
              ?.filter(r => r === reason).length) ||
          0;
        if (tries < MAX_MOVE_ATTEMPTS) return member;
        const key = `${namespace}/${member.pod}@${member.node}#${reason}`;
        if (!this.givenUp.has(key)) {
          this.givenUp.add(key);
          void this.options.events?.record(
            { apiVersion: 'v1', kind: 'Pod', namespace, name: member.pod },
            {
              type: 'Warning',
              reason: 'MigrationGivenUp',
              action: 'Migrate',
              note: `${tries} ${reason} moves off ${member.node} rolled back or failed; Ferry stops moving this member (see its Migrations for why) and moves the workload's other members`,
            },
          );
        }
        return { ...member, givenUp: true };
      }),
    };
  }

  /** The driver of a move and why: the policy's method, or what `auto` measured. */
  private async methodFor(
    move: PlannedMove,
    policy: SpotPolicy,
  ): Promise<{ driver: MigrationSpec['driver']; reason: string }> {
    const method = policy.spec.migration;
    if (method !== 'auto') {
      return { driver: method, reason: `${method}: the policy names it` };
    }
    if (!this.options.chooseMethod) {
      return {
        driver: driverFor(method),
        reason:
          'valkey: auto measures nothing on this operator; the live hand-off is the default',
      };
    }
    try {
      return await this.options.chooseMethod(move, policy);
    } catch (error) {
      return {
        driver: driverFor(method),
        reason: `valkey: auto could not measure ${move.pod} (${
          error instanceof Error ? error.message : String(error)
        }); the live hand-off is the default`,
      };
    }
  }

  /** Records one move as a Migration; undefined when it exists already. */
  private async record(
    move: PlannedMove,
    policy: SpotPolicy,
    failed: Map<string, Map<string, MigrationReason[]>>,
  ): Promise<string | undefined> {
    const { state } = this.options;
    // A move that rolled back is tried again under a new name.
    const attempt =
      failed
        .get(`${policy.metadata.namespace}/${move.pod}`)
        ?.get(move.sourceNode)
        ?.filter(reason => reason === move.reason).length ?? 0;
    const name = migrationName(move, attempt);
    // Recorded in an earlier pass and already seen by the watch: nothing to write.
    if (state.migrations.get(`${policy.metadata.namespace}/${name}`))
      return undefined;
    const spec: MigrationSpec = {
      workloadRef: policy.spec.workloadRef,
      pod: move.pod,
      sourceNode: move.sourceNode,
      targetNode: move.target.kind === 'node' ? move.target.node : undefined,
      reason: move.reason,
      driver: 'valkey',
      deadline:
        move.deadline === undefined
          ? undefined
          : new Date(move.deadline).toISOString(),
    };
    const method = await this.methodFor(move, policy);
    spec.driver = method.driver;
    try {
      await this.options.machine.plan(
        policy.metadata.namespace,
        name,
        spec,
        method.reason,
      );
    } catch (error) {
      if (error instanceof MigrationConflictError) return undefined;
      throw error;
    }
    const cloud = this.cloudSignals.get(move.sourceNode);
    const seenAt =
      cloud?.signal.reason === move.reason
        ? cloud.seenAt
        : state.signalSeenAt(move.sourceNode);
    if (seenAt !== undefined) {
      this.options.metrics?.migrationCreated(
        move.reason,
        this.clock.now() - seenAt,
      );
    }
    // The Event is for people; the next Migration should not wait for it.
    void this.options.events?.record(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: policy.metadata.namespace,
        name: move.pod,
      },
      {
        type: move.meetsDeadline ? 'Normal' : 'Warning',
        reason: 'MigrationPlanned',
        action: 'Migrate',
        note: `${move.reason} on ${move.sourceNode}: moving to ${
          spec.targetNode ?? `a new ${move.target.capacityType} node`
        } with the ${spec.driver} driver${
          move.meetsDeadline
            ? ''
            : ', which may not finish before the node goes'
        }`,
      },
    );
    return `${policy.metadata.namespace}/${name}`;
  }
}

/** The reason the planner moves members off each node for: its strongest signal's. */
function strongestReasonByNode(
  signals: readonly DisruptionSignal[],
): Map<string, MigrationReason> {
  const byNode = new Map<string, MigrationReason>();
  for (const { node, reason } of signals) {
    const known = byNode.get(node);
    if (!known || SIGNAL_STRENGTH[reason] > SIGNAL_STRENGTH[known]) {
      byNode.set(node, reason);
    }
  }
  return byNode;
}

/** Picks the driver of one move under `auto` from what it measures, and says why. */
export type MoveMethodChooser = (
  move: PlannedMove,
  policy: SpotPolicy,
) => Promise<{ driver: MigrationSpec['driver']; reason: string }>;

/**
 * The driver for a policy's method when nothing is measured. `auto` is the live
 * hand-off: the operator is for Valkey/Redis members first.
 */
export function driverFor(method: MigrationMethod): MigrationSpec['driver'] {
  return method === 'auto' ? 'valkey' : method;
}

/**
 * A name that is the same for the same move: the member, the signal, the node it
 * leaves, and which attempt this is (the first keeps the name it always had).
 */
export function migrationName(
  move: Pick<PlannedMove, 'workload' | 'pod' | 'sourceNode' | 'reason'>,
  attempt = 0,
): string {
  const digest = createHash('sha256')
    .update(
      `${move.workload}\u0000${move.pod}\u0000${move.sourceNode}\u0000${
        move.reason
      }${attempt > 0 ? `\u0000${attempt}` : ''}`,
    )
    .digest('hex')
    .slice(0, 8);
  return `${move.pod.slice(0, 253 - 2 - move.reason.length - 8)}-${
    move.reason
  }-${digest}`;
}
