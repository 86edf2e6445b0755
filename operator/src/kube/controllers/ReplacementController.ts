import type { Migration, MigrationSpec, SpotPolicy } from '../../api/v1alpha1';
import {
  Clock,
  systemClock,
  systemTimers,
  Timer,
  Timers,
} from '../../core/clock';
import type { CapacityPool } from '../../core/model';
import {
  planReplacement,
  RebalancePolicy,
  REBALANCE_DEFAULTS,
  REBALANCE_WINDOW_MS,
  ReplacementMove,
  ReplacementReason,
} from '../../core/replacement';
import { MigrationConflictError } from '../../migration/MigrationStore';
import {
  isFinalPhase,
  type MigrationStateMachine,
} from '../../migration/MigrationStateMachine';
import type { ClusterState } from '../state/ClusterState';
import {
  driverFor,
  MAX_MOVE_ATTEMPTS,
  migrationName,
} from './DisruptionController';
import type { ClusterWrites, EventSink } from '../../OperatorPorts';
import { WorkQueue } from './WorkQueue';

/** The one key of the controller's queue: a pass looks at every policy. */
const FLEET_KEY = 'fleet';
/** How soon a pass looks again when the status it would mark placed is not written yet. */
const PLACED_RETRY_MS = 1_000;
/**
 * The least time from the end of one pass to the start of the next. A pass
 * reads every workload and node; on a cluster of thousands of nodes a reclaim's
 * burst of node, pod and Migration events would otherwise run pass after pass
 * and keep the disruption controller's planning of the same burst waiting for
 * the event loop. Re-placement waits minutes for things to settle anyway.
 */
export const REPLACEMENT_PASS_INTERVAL_MS = 1_000;

/**
 * Moves running members to where their SpotPolicy says: when a policy is
 * enabled, disabled, or gets a new floor or method (Migrations with reason
 * `policy`), and when moves and node losses broke a floor or a spread
 * (`rebalance`). What moves is the decision core's (`planReplacement`, over the
 * placement library the webhook uses); this controller watches the cluster
 * state, records the moves as Migrations for the migration engine, and marks a
 * policy's generation placed (`status.placedGeneration`) once its members are
 * where it says, so that a new leader knows which moves are the policy's.
 */
export class ReplacementController {
  private readonly queue: WorkQueue;
  private readonly clock: Clock;
  private readonly rebalance: RebalancePolicy;
  /** When each workload's floor or spread was first seen broken. */
  private readonly brokenSince = new Map<string, number>();
  /** When the last pass ended (the operator's clock), and whether one runs now. */
  private lastPassEndedAt = -Infinity;
  private passing = false;
  /** Changes seen while a pass ran or too soon after one: one more pass is due. */
  private due = false;
  private dueTimer?: Timer;

  constructor(
    private readonly options: {
      writes: Pick<ClusterWrites, 'patchSpotPolicyStatus'>;
      state: ClusterState;
      machine: Pick<MigrationStateMachine, 'plan'>;
      /** The pools the cloud offers now, from the cloud provider. */
      pools: () => Promise<CapacityPool[]>;
      rebalance?: Partial<RebalancePolicy>;
      clock?: Clock;
      /** What its waits run on; the wall clock's timers when left out. */
      timers?: Timers;
      events?: EventSink;
      onError?: (error: unknown) => void;
    },
  ) {
    this.clock = options.clock ?? systemClock;
    this.rebalance = { ...REBALANCE_DEFAULTS, ...options.rebalance };
    this.queue = new WorkQueue({
      timers: options.timers,
      clock: options.clock,
      concurrency: 1,
      reconcile: async () => {
        this.passing = true;
        try {
          const { requeueAfterMs } = await this.pass();
          return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
        } finally {
          this.passing = false;
          this.lastPassEndedAt = this.clock.now();
          if (this.due) {
            this.due = false;
            this.changed();
          }
        }
      },
      onError: (_key, error) => options.onError?.(error),
    });
  }

  /**
   * A policy, member, node or Migration changed: look again, at most
   * REPLACEMENT_PASS_INTERVAL_MS after the last pass ended. Changes in the
   * meantime are one pass.
   */
  changed(): void {
    if (this.passing) {
      this.due = true;
      return;
    }
    const wait =
      this.lastPassEndedAt + REPLACEMENT_PASS_INTERVAL_MS - this.clock.now();
    if (wait <= 0) {
      // The operator's clock may run ahead of the timer's (demo mode's).
      this.dueTimer?.cancel();
      this.dueTimer = undefined;
      this.queue.add(FLEET_KEY);
      return;
    }
    this.dueTimer ??= (this.options.timers ?? systemTimers).after(wait, () => {
      this.dueTimer = undefined;
      this.queue.add(FLEET_KEY);
    });
  }

  async stop(): Promise<void> {
    this.dueTimer?.cancel();
    this.dueTimer = undefined;
    await this.queue.shutdown();
  }

  /** One pass; returns the Migrations it created. */
  async reconcile(): Promise<string[]> {
    return (await this.pass()).created;
  }

  private async pass(): Promise<{
    created: string[];
    requeueAfterMs?: number;
  }> {
    const { state } = this.options;
    if (!state.synced) return { created: [] };
    const now = this.clock.now();
    const entries = state.workloads(undefined, { optedOut: true });
    // Each workload reads only its own Migrations, not every one in the cluster.
    const migrationsOf = new Map<string, Migration[]>();
    for (const m of state.migrations.list()) {
      const key = workloadKeyOf(m.metadata.namespace, m.spec.workloadRef);
      let list = migrationsOf.get(key);
      if (!list) migrationsOf.set(key, (list = []));
      list.push(m);
    }
    const migrationsOfPolicy = (policy: SpotPolicy) =>
      migrationsOf.get(
        workloadKeyOf(policy.metadata.namespace, policy.spec.workloadRef),
      ) ?? [];
    const byId = new Map(entries.map(e => [e.view.id, e]));
    const outcomes = planReplacement({
      now,
      workloads: entries.map(({ policy, view, replicas, rollingOut }) => ({
        view,
        enabled: policy.spec.enabled,
        replicas,
        rollingOut,
        policyChanged:
          policy.status?.placedGeneration !== policy.metadata.generation,
        movesUnderWay: migrationsOfPolicy(policy).filter(
          m =>
            ofPolicy(m, policy) && !isFinalPhase(m.status?.phase ?? 'Planned'),
        ).length,
        recentRebalanceMoves: recentRebalanceMoves(
          migrationsOfPolicy(policy),
          policy,
          now - REBALANCE_WINDOW_MS,
        ),
        brokenSince: this.brokenSince.get(view.id),
      })),
      nodes: state.nodeViews(),
      pools: await this.options.pools(),
      rebalance: this.rebalance,
    });
    const created: string[] = [];
    let requeueAfterMs: number | undefined;
    const later = (ms: number) => {
      requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, ms);
    };
    for (const outcome of outcomes) {
      const { policy } = byId.get(outcome.workload)!;
      if (outcome.broken && !this.brokenSince.has(outcome.workload)) {
        this.brokenSince.set(outcome.workload, now);
      } else if (!outcome.broken) {
        this.brokenSince.delete(outcome.workload);
      }
      if (outcome.state === 'held') {
        const since = this.brokenSince.get(outcome.workload) ?? now;
        later(Math.max(PLACED_RETRY_MS, since + this.rebalance.settleMs - now));
      }
      if (outcome.state === 'placed' && !(await this.markPlaced(policy))) {
        later(PLACED_RETRY_MS);
      }
      for (const move of outcome.moves) {
        const name = await this.record(
          move,
          policy,
          migrationsOfPolicy(policy),
        );
        if (name) created.push(name);
      }
    }
    for (const id of this.brokenSince.keys()) {
      if (!byId.has(id)) this.brokenSince.delete(id);
    }
    return { created, requeueAfterMs };
  }

  /**
   * Records that the members reached the policy's current generation; false
   * when the status is not written yet (the status controller writes it first,
   * so that no reader sees a status with nothing but this field).
   */
  private async markPlaced(policy: SpotPolicy): Promise<boolean> {
    const generation = policy.metadata.generation;
    if (generation === undefined) return true;
    if (policy.status?.placedGeneration === generation) return true;
    if (!policy.status?.cost) return false;
    const status = { placedGeneration: generation };
    await this.options.writes.patchSpotPolicyStatus(
      policy.metadata.namespace,
      policy.metadata.name,
      status,
    );
    return true;
  }

  /** Records one move as a Migration; undefined when it exists already or the member was given up on. */
  private async record(
    move: ReplacementMove,
    policy: SpotPolicy,
    migrations: Migration[],
  ): Promise<string | undefined> {
    const namespace = policy.metadata.namespace;
    const earlier = migrations.filter(
      m =>
        m.metadata.namespace === namespace &&
        m.spec.pod === move.pod &&
        m.spec.sourceNode === move.sourceNode &&
        m.spec.reason === move.reason,
    );
    const failed = earlier.filter(m => {
      const phase = m.status?.phase ?? 'Planned';
      return isFinalPhase(phase) && phase !== 'Succeeded';
    }).length;
    if (failed >= MAX_MOVE_ATTEMPTS) return undefined;
    // A member that moved back and forth leaves the same node again under a new name.
    const name = migrationName(move, earlier.length);
    const spec: MigrationSpec = {
      workloadRef: policy.spec.workloadRef,
      pod: move.pod,
      sourceNode: move.sourceNode,
      targetNode: move.target.kind === 'node' ? move.target.node : undefined,
      reason: move.reason,
      driver: driverFor(policy.spec.migration),
    };
    try {
      await this.options.machine.plan(namespace, name, spec);
    } catch (error) {
      if (error instanceof MigrationConflictError) return undefined;
      throw error;
    }
    void this.options.events?.record(
      { apiVersion: 'v1', kind: 'Pod', namespace, name: move.pod },
      {
        type: 'Normal',
        reason: 'MigrationPlanned',
        action: 'Migrate',
        note: `${describe(move.reason, policy)}: moving off ${
          move.sourceNode
        } to ${
          spec.targetNode ?? `a new ${move.target.capacityType} node`
        } with the ${spec.driver} driver`,
      },
    );
    return `${namespace}/${name}`;
  }
}

function describe(reason: ReplacementReason, policy: SpotPolicy): string {
  if (reason === 'rebalance') {
    return 'rebalance: the permanent floor or the spread over spot pools was broken';
  }
  return policy.spec.enabled
    ? `policy: permanent ratio ${policy.spec.permanentRatio}, method ${policy.spec.migration}`
    : 'policy: opted out, every member back to permanent capacity';
}

/** Re-placement moves of the policy's workload created since `since` that count against its rebalance budget. */
function recentRebalanceMoves(
  migrations: Migration[],
  policy: SpotPolicy,
  since: number,
): number {
  return migrations.filter(
    m =>
      ofPolicy(m, policy) &&
      m.spec.reason === 'rebalance' &&
      Date.parse(m.metadata.creationTimestamp ?? '') >= since,
  ).length;
}

/** Whether the Migration moves a member of the policy's workload. */
function workloadKeyOf(
  namespace: string | undefined,
  ref: { kind: string; name: string },
): string {
  return `${namespace}/${ref.kind}/${ref.name}`;
}

function ofPolicy(migration: Migration, policy: SpotPolicy): boolean {
  return (
    migration.metadata.namespace === policy.metadata.namespace &&
    migration.spec.workloadRef.kind === policy.spec.workloadRef.kind &&
    migration.spec.workloadRef.name === policy.spec.workloadRef.name
  );
}
