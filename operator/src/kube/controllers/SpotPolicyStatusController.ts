import {
  FERRY_API_VERSION,
  type Condition,
  type SpotPolicy,
} from '../../api/v1alpha1';
import {
  Clock,
  systemClock,
  systemTimers,
  Timer,
  Timers,
} from '../../core/clock';
import type { NodeView } from '../../core/model';
import type { ClusterChange, ClusterState } from '../state/ClusterState';
import { findCondition } from '../client/conditions';
import type { EventNote } from '../client/EventRecorder';
import type { ClusterWrites, EventSink } from '../../OperatorPorts';
import type { OperatorMetrics } from '../metrics/OperatorMetrics';
import type { PriceBook } from '../pools/PoolPriceFeed';
import {
  AccountedSpotPolicyStatus,
  memberHibernationOf,
  SPOT_POLICY_CONDITIONS,
  spotPolicyStatusOf,
  statusNeedsWrite,
} from './spotPolicyStatus';
import { WorkQueue } from './WorkQueue';

/**
 * How often spend and availability accrue into a status when nothing else
 * changes: the resolution of the portal's cost and availability history.
 */
export const STATUS_REFRESH_INTERVAL_MS = 60_000;
/**
 * How long changes gather before the policies they concern are looked at again.
 * A status is for people and the portal, and a burst (100 nodes reclaimed at
 * once, each changing its node, pods and Migrations) would otherwise recompute
 * every policy per event while planning waits for the same event loop.
 */
export const STATUS_SETTLE_MS = 1_000;

type Policy = SpotPolicy & { status?: AccountedSpotPolicyStatus };

function keyOf(policy: SpotPolicy): string {
  return `${policy.metadata.namespace}/${policy.metadata.name}`;
}

function accruedAt(status: AccountedSpotPolicyStatus | undefined): number {
  const at = status?.accounting ? Date.parse(status.accounting.accruedAt) : NaN;
  return Number.isFinite(at) ? at : -Infinity;
}

/**
 * Writes each SpotPolicy's status (`spotPolicyStatusOf`) through the status
 * subresource, on the leader: when the policy, its members, their nodes or its
 * Migrations change, and every `refreshMs` so spend and availability accrue.
 * Records an Event when the workload falls below its quorum or misses its
 * availability target, the transitions a person acts on.
 */
export class SpotPolicyStatusController {
  private readonly queue: WorkQueue;
  private readonly clock: Clock;
  private readonly refreshMs: number;
  /**
   * The last status written per policy: the watch may not show it yet, and the
   * next interval accrues from it rather than from an older one.
   */
  private readonly written = new Map<string, AccountedSpotPolicyStatus>();
  /** Policies changes concerned since the settle timer started. */
  private readonly settling = new Set<string>();
  private settleTimer?: Timer;

  constructor(
    private readonly options: {
      writes: Pick<ClusterWrites, 'patchSpotPolicyStatus'>;
      state: ClusterState;
      /** The prices now; refreshed elsewhere, on their own interval. */
      prices: () => PriceBook;
      /** A spot pool's predicted interruption risk, shown per replica; 0 without it. */
      riskOf?: (pool: NodeView) => number;
      refreshMs?: number;
      clock?: Clock;
      /** What its waits run on; the wall clock's timers when left out. */
      timers?: Timers;
      events?: EventSink;
      metrics?: OperatorMetrics;
      onError?: (error: unknown) => void;
    },
  ) {
    this.clock = options.clock ?? systemClock;
    this.refreshMs = options.refreshMs ?? STATUS_REFRESH_INTERVAL_MS;
    this.queue = new WorkQueue({
      timers: options.timers,
      clock: options.clock,
      reconcile: key => this.reconcile(key),
      onError: (_key, error) => options.onError?.(error),
    });
  }

  /** Looks at every policy now (on becoming leader). */
  resync(): void {
    for (const policy of this.options.state.policies.list())
      this.queue.add(keyOf(policy));
  }

  /** Looks at a policy once changes have settled for STATUS_SETTLE_MS. */
  private settle(key: string): void {
    this.settling.add(key);
    this.settleTimer ??= (this.options.timers ?? systemTimers).after(
      STATUS_SETTLE_MS,
      () => {
        this.settleTimer = undefined;
        for (const settled of this.settling) this.queue.add(settled);
        this.settling.clear();
      },
    );
  }

  /** Every policy, once changes have settled. */
  private settleAll(): void {
    for (const policy of this.options.state.policies.list())
      this.settle(keyOf(policy));
  }

  /**
   * Something in the cluster changed: looks again at the policies it concerns.
   * A member or a Migration concerns its workload's policy alone, found by
   * index: a reclaim's burst of thousands of events would otherwise look at
   * every policy per event.
   */
  changed(change: ClusterChange): void {
    const { state } = this.options;
    switch (change.kind) {
      case 'policy': {
        const key = keyOf(change.event.object);
        if (change.event.type === 'DELETED') {
          this.written.delete(key);
          const { namespace, name } = change.event.object.metadata;
          this.options.metrics?.workloadGone({ namespace, workload: name });
        } else this.settle(key);
        return;
      }
      case 'migration': {
        const { metadata, spec } = change.event.object;
        const policy = state.policyOf(
          metadata.namespace,
          spec.workloadRef.kind,
          spec.workloadRef.name,
        );
        if (policy) this.settle(keyOf(policy));
        return;
      }
      case 'pod': {
        const pod = change.event.object;
        const workload = state.workloadOfPod(pod);
        const policy =
          workload &&
          state.policyOf(
            pod.metadata?.namespace ?? '',
            workload.kind,
            workload.name,
          );
        if (policy) this.settle(keyOf(policy));
        return;
      }
      default:
        this.settleAll();
    }
  }

  async stop(): Promise<void> {
    this.settleTimer?.cancel();
    this.settling.clear();
    await this.queue.shutdown();
  }

  /** Computes and, if worth it, writes one policy's status. */
  async reconcile(key: string): Promise<{ requeueAfterMs: number } | void> {
    const { state } = this.options;
    const cached = state.policies.get(key) as Policy | undefined;
    if (!cached) return undefined;
    const mine = this.written.get(key);
    const previous =
      accruedAt(mine) > accruedAt(cached.status) ? mine : cached.status;
    const policy: Policy = { ...cached, status: previous };
    const now = this.clock.now();
    const { kind, name } = policy.spec.workloadRef;
    const namespace = policy.metadata.namespace;
    // By index, unless another policy names the same workload (then by this one).
    const indexed = state.policyOf(namespace, kind, name);
    // A disabled policy's workload too: its members may still hibernate.
    const found =
      indexed && keyOf(indexed) === key
        ? state.workload(namespace, kind, name, { optedOut: true })
        : state.workloads(p => keyOf(p) === key, { optedOut: true })[0];
    const workload = found?.policy.spec.enabled ? found : undefined;
    const next = spotPolicyStatusOf({
      policy,
      hibernation: memberHibernationOf(
        (found?.view.members ?? []).map(member =>
          state.pods.get(`${policy.metadata.namespace}/${member.pod}`),
        ),
      ),
      workload: workload && {
        view: workload.view,
        replicas: workload.replicas,
      },
      workloadFound: workload !== undefined,
      nodes: state.nodeViewsByName(),
      prices: this.options.prices(),
      riskOf: this.options.riskOf,
      migrations: state.migrationsOf(namespace, kind, name),
      now,
    });
    if (!statusNeedsWrite(previous, next, now, this.refreshMs)) {
      return {
        requeueAfterMs: Math.max(0, accruedAt(previous) + this.refreshMs - now),
      };
    }
    await this.options.writes.patchSpotPolicyStatus(
      policy.metadata.namespace,
      policy.metadata.name,
      next,
    );
    this.written.set(key, next);
    this.options.metrics?.workloadObserved(
      { namespace: policy.metadata.namespace, workload: name },
      {
        hourlyCostUsd: next.cost.hourlyCostUsd,
        onDemandHourlyCostUsd: next.cost.onDemandHourlyCostUsd,
        savingsToDateUsd: next.cost.savingsToDateUsd,
        availability: next.availability.observed,
        availabilityTarget: next.availability.target,
      },
    );
    await this.recordTransitions(policy, previous?.conditions, next.conditions);
    return { requeueAfterMs: this.refreshMs };
  }

  private async recordTransitions(
    policy: SpotPolicy,
    before: Condition[] | undefined,
    after: Condition[],
  ): Promise<void> {
    const events = this.options.events;
    if (!events) return;
    const notes: EventNote[] = [];
    const target = findCondition(
      after,
      SPOT_POLICY_CONDITIONS.availabilityTargetMet,
    );
    if (
      target?.status === 'False' &&
      findCondition(before, SPOT_POLICY_CONDITIONS.availabilityTargetMet)
        ?.status !== 'False'
    ) {
      notes.push({
        type: 'Warning',
        reason: 'AvailabilityTargetMissed',
        action: 'Account',
        note: `${policy.spec.workloadRef.kind} ${policy.spec.workloadRef.name} missed its availability target: ${target.message}`,
      });
    }
    const ready = findCondition(after, SPOT_POLICY_CONDITIONS.ready);
    if (
      ready?.reason === 'BelowQuorum' &&
      findCondition(before, SPOT_POLICY_CONDITIONS.ready)?.reason !==
        'BelowQuorum'
    ) {
      notes.push({
        type: 'Warning',
        reason: 'BelowQuorum',
        action: 'Account',
        note: `${policy.spec.workloadRef.kind} ${policy.spec.workloadRef.name} is below its quorum: ${ready.message}`,
      });
    }
    for (const note of notes) {
      await events.record(
        {
          apiVersion: FERRY_API_VERSION,
          kind: 'SpotPolicy',
          name: policy.metadata.name,
          namespace: policy.metadata.namespace,
          uid: policy.metadata.uid,
        },
        note,
      );
    }
  }
}
