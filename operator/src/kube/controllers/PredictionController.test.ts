import { ManualClock } from '../../core/clock';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import type { NodeView } from '../../core/model';
import { DEFAULT_PROACTIVE_POLICY } from '../../core/proactive';
import type { ClusterState } from '../state/ClusterState';
import { OperatorMetrics } from '../metrics/OperatorMetrics';
import { RISK_FEATURES, RiskCoefficients } from '../../core/risk';
import { PoolRiskFeed } from '../pools/PoolRiskFeed';
import { PredictionController } from './PredictionController';

/** A model that turns a pool hot right after a reclaim and its replacement, and lets it cool within the hour. */
const RECLAIM_SENSITIVE: RiskCoefficients = {
  intercept: 7.5,
  weights: RISK_FEATURES.map(
    f =>
      (({ bandLogit: 1, recentRecovery: 2 } as Record<string, number>)[f] ?? 0),
  ),
};

const START = Date.parse('2026-11-01T00:00:00Z');
const MINUTE = 60_000;

function spotNode(name: string, zone = 'eu-west-1a'): NodeView {
  const resources = { cpuMillis: 2000, memoryMiB: 8192 };
  return {
    name,
    instanceType: 'm5.large',
    zone,
    capacityType: 'spot',
    allocatable: resources,
    free: resources,
  };
}

/** The cluster as the controller reads it: nodes, their notices, and members on some. */
class FakeCluster {
  nodes: NodeView[] = [];
  notices: string[] = [];
  membersOn: string[] = [];
  /** Passes of the controller so far (each reads the nodes once). */
  looks = 0;

  readonly state: Pick<ClusterState, 'nodeViews' | 'signals' | 'workloads'> = {
    nodeViews: () => {
      this.looks += 1;
      return this.nodes;
    },
    signals: () =>
      this.notices.map(
        (node): DisruptionSignal => ({ node, reason: 'notice' }),
      ),
    workloads: () =>
      [
        {
          view: {
            members: this.membersOn.map((node, i) => ({
              pod: `m-${i}`,
              node,
            })),
          },
        },
      ] as unknown as ReturnType<ClusterState['workloads']>,
  };
}

/** Waits until the controller's queue has run a pass that satisfies `done`. */
async function eventually(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) {
    await new Promise(resolve => setImmediate(resolve));
  }
  expect(done()).toBe(true);
}

describe('PredictionController', () => {
  let controller: PredictionController | undefined;
  afterEach(() => controller?.stop());

  function setUp(policy = DEFAULT_PROACTIVE_POLICY) {
    const clock = new ManualClock(START);
    const cluster = new FakeCluster();
    const feed = new PoolRiskFeed({ clock, coefficients: RECLAIM_SENSITIVE });
    const signalled: DisruptionSignal[] = [];
    const withdrawn: string[] = [];
    const metrics = new OperatorMetrics({ processMetrics: false });
    controller = new PredictionController({
      state: cluster.state,
      feed,
      controller: {
        cloudSignal: async signal => {
          signalled.push(signal);
        },
        predictionWithdrawn: node => withdrawn.push(node),
      },
      policy,
      metrics,
      clock,
    });
    /** Reclaims and replaces nodes of the hot pool until its risk is past the threshold. */
    const heatUp = () => {
      for (let i = 1; i <= 3; i++) {
        clock.advance(MINUTE);
        cluster.notices.push(`reclaimed-${i}`);
        feed.observe(cluster.nodes, cluster.state.signals());
        clock.advance(MINUTE);
        cluster.nodes.push(spotNode(`reclaimed-${i + 1}`));
        feed.observe(cluster.nodes, cluster.state.signals());
      }
    };
    return { clock, cluster, feed, signalled, withdrawn, metrics, heatUp };
  }

  it('signals the nodes with members of a pool past the threshold, and withdraws them once it cools', async () => {
    const { clock, cluster, feed, signalled, withdrawn, metrics, heatUp } =
      setUp();
    cluster.nodes = [
      spotNode('hot-1'),
      spotNode('reclaimed-1'),
      spotNode('calm-1', 'eu-west-1b'),
    ];
    cluster.membersOn = ['hot-1', 'calm-1'];
    feed.observe(cluster.nodes, []);
    controller!.changed();
    await eventually(() => feed.risks().length === 2);
    expect(signalled).toEqual([]);

    heatUp();
    controller!.changed();
    await eventually(() => signalled.length > 0);
    // hot-1 only: calm-1's pool is calm, and the new nodes of the hot pool hold no members.
    expect(signalled).toEqual([{ node: 'hot-1', reason: 'prediction' }]);
    expect(await metrics.registry.metrics()).toMatch(
      /ferry_pool_interruption_risk\{instance_type="m5.large",zone="eu-west-1a"\} 0\.(2[5-9]|[3-9])/,
    );

    // An hour without reclaims: the replacement's recency has faded.
    clock.advance(60 * MINUTE);
    controller!.changed();
    await eventually(() => withdrawn.length > 0);
    expect(withdrawn).toEqual(['hot-1']);
    expect(signalled).toHaveLength(1);
  });

  it('moves no more members ahead of notices than the budget allows', async () => {
    const { cluster, feed, signalled, heatUp } = setUp({
      ...DEFAULT_PROACTIVE_POLICY,
      movesPerWindow: 1,
    });
    cluster.nodes = [
      spotNode('hot-1'),
      spotNode('hot-2'),
      spotNode('reclaimed-1'),
    ];
    cluster.membersOn = ['hot-1', 'hot-2'];
    feed.observe(cluster.nodes, []);
    heatUp();
    controller!.changed();
    await eventually(() => signalled.length > 0);
    const looks = cluster.looks;
    controller!.changed();
    await eventually(() => cluster.looks > looks);
    expect(signalled).toEqual([{ node: 'hot-1', reason: 'prediction' }]);
  });
});
