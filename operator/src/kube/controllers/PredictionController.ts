/**
 * The leader's proactive moves: it reads the spot pools' risk (`PoolRiskFeed`)
 * whenever the nodes change and at least every `PREDICTION_INTERVAL_MS` (risk
 * decays with time alone), and the core's `ProactiveMoveGovernor` (hysteresis,
 * move budget) turns a pool that crossed the threshold into `prediction`
 * signals for its nodes that hold members. The disruption controller plans them
 * as any other signal: serially per workload, within quorum and budgets. A pool
 * that cools below the exit threshold has its nodes' predictions withdrawn.
 */
import { Clock, systemClock, Timers } from '../../core/clock';
import { poolIdOf } from '../../core/model';
import {
  DEFAULT_PROACTIVE_POLICY,
  ProactiveCandidate,
  ProactiveMoveGovernor,
  ProactivePolicy,
} from '../../core/proactive';
import type { ClusterState } from '../state/ClusterState';
import type { DisruptionController } from './DisruptionController';
import type { OperatorMetrics } from '../metrics/OperatorMetrics';
import type { PoolRiskFeed } from '../pools/PoolRiskFeed';
import type { PoolRiskHistoryStore } from '../stores/PoolRiskHistoryStore';
import { WorkQueue } from './WorkQueue';

/** Risk is read again this often when nothing changes: its recency features fade by the minute. */
export const PREDICTION_INTERVAL_MS = 60_000;

const PREDICTION_KEY = 'pools';

/** Reads risk, signals hot pools' nodes to the disruption controller, persists the feed's history. */
export class PredictionController {
  private readonly governor: ProactiveMoveGovernor;
  private readonly policy: ProactivePolicy;
  private readonly queue: WorkQueue;
  private readonly clock: Clock;
  /** Nodes this controller signalled, with their pool, until the pool cools or the node goes. */
  private readonly predicted = new Map<string, string>();
  private restored = false;

  constructor(
    private readonly options: {
      state: Pick<ClusterState, 'nodeViews' | 'signals' | 'workloads'>;
      feed: PoolRiskFeed;
      controller: Pick<
        DisruptionController,
        'cloudSignal' | 'predictionWithdrawn'
      >;
      policy?: ProactivePolicy;
      /** How often it reads risk when nothing changes; PREDICTION_INTERVAL_MS when left out. */
      intervalMs?: number;
      history?: PoolRiskHistoryStore;
      metrics?: OperatorMetrics;
      clock?: Clock;
      /** What its waits run on; the wall clock's timers when left out. */
      timers?: Timers;
      onError?: (error: unknown) => void;
    },
  ) {
    this.clock = options.clock ?? systemClock;
    this.policy = options.policy ?? DEFAULT_PROACTIVE_POLICY;
    this.governor = new ProactiveMoveGovernor(this.policy);
    this.queue = new WorkQueue({
      timers: options.timers,
      clock: options.clock,
      concurrency: 1,
      reconcile: async () => {
        await this.pass();
        return {
          requeueAfterMs: options.intervalMs ?? PREDICTION_INTERVAL_MS,
        };
      },
      onError: (_key, error) => options.onError?.(error),
    });
  }

  /** The nodes, members or signals changed: read risk again. */
  changed(): void {
    this.queue.add(PREDICTION_KEY);
  }

  async stop(): Promise<void> {
    await this.queue.shutdown();
  }

  private async pass(): Promise<void> {
    const { state, feed, controller, history, metrics } = this.options;
    if (!this.restored && history) {
      // What earlier leaders observed, including the cloud signals only they received.
      // A history that cannot be read is reported, and prediction goes on from what this replica saw.
      this.restored = true;
      try {
        const stored = await history.load();
        if (stored) feed.restore(stored);
      } catch (error) {
        this.options.onError?.(error);
      }
    }
    const nodes = state.nodeViews();
    feed.observe(nodes, state.signals());
    const risks = feed.risks();
    metrics?.poolRisks(risks);
    const riskByPool = new Map(risks.map(r => [poolIdOf(r.pool), r.risk]));

    const membersOn = new Map<string, number>();
    for (const { view } of state.workloads()) {
      for (const member of view.members) {
        if (member.node)
          membersOn.set(member.node, (membersOn.get(member.node) ?? 0) + 1);
      }
    }
    const names = new Set(nodes.map(node => node.name));
    for (const [node, pool] of this.predicted) {
      if (!names.has(node)) this.predicted.delete(node);
      else if ((riskByPool.get(pool) ?? 0) < this.policy.exitRisk) {
        this.predicted.delete(node);
        controller.predictionWithdrawn(node);
      }
    }
    const candidates: ProactiveCandidate[] = nodes
      .filter(
        node =>
          node.capacityType === 'spot' &&
          node.terminatesAt === undefined &&
          !node.unschedulable,
      )
      .map(node => ({
        node: node.name,
        pool: poolIdOf(node),
        risk: riskByPool.get(poolIdOf(node)) ?? 0,
        members: membersOn.get(node.name) ?? 0,
      }));
    for (const signal of this.governor.decide(this.clock.now(), candidates)) {
      const node = candidates.find(c => c.node === signal.node)!;
      this.predicted.set(signal.node, node.pool);
      // Resolves once planned; a controller that stops first drops it, and the next leader predicts afresh.
      controller.cloudSignal(signal).catch(() => {});
    }
    if (history && feed.dirty) {
      try {
        await history.save(feed.history());
      } catch (error) {
        feed.dirty = true;
        this.options.onError?.(error);
      }
    }
  }
}
