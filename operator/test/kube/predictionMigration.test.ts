/**
 * Ferry's own prediction on a real cluster: spot nodes of one pool are
 * reclaimed (AWS Node Termination Handler taints) and replaced, one after the
 * other; the operator's risk model counts each reclaim and each replacement,
 * the pool's risk crosses the proactive threshold, and the leader creates a
 * `prediction` Migration for a member still on that pool, whose node has no
 * notice. The member is rescheduled within its PodDisruptionBudget, the
 * placement webhook puts a new member on another pool where it would have
 * taken the risky one, and the pool's record survives into the next operator
 * through its ConfigMap.
 */
import {
  AppsV1Api,
  CoreV1Api,
  PolicyV1Api,
  V1Pod,
} from '@kubernetes/client-node';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { poolIdOf, PoolKey } from '../../src/core/model';
import { DEFAULT_PROACTIVE_POLICY } from '../../src/core/proactive';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { KubePodEvictor } from '../../src/kube/runtimes/reschedule/KubePodEvictor';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { PoolRiskFeed } from '../../src/kube/pools/PoolRiskFeed';
import { PoolRiskHistoryStore } from '../../src/kube/stores/PoolRiskHistoryStore';
import { Reflector } from '../../src/kube/informers/Reflector';
import { PODS, SPOT_POLICIES } from '../../src/kube/client/resources';
import { RescheduleDriver } from '../../src/migration/reschedule/RescheduleDriver';
import {
  createFakeNodes,
  FAKE_ZONES,
  FakeInstanceType,
  FakeNodeSpec,
  poolsOf,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { registerFerryWebhooks } from './ferryWebhooks';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { isReady } from '../../src/kube/state/workloadViews';
import { until } from './until';
import { PLACEMENT_ANNOTATION } from '../../src/kube/client/ferryKeys';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(90_000);

const NAMESPACE = 'shop';
const OPERATOR_NAMESPACE = 'ferry-system';
const HISTORY = 'ferry-pool-risk';
/** Of three members, two stay up. */
const MIN_AVAILABLE = 2;
/**
 * Reclaims of one pool, each followed by a replacement node: with the shipped
 * coefficients the replacement after a reclaim is what the traces say precedes
 * the next one; three take an unknown-band pool past the threshold.
 */
const RECLAIMS = 3;

/**
 * In each zone, spot nodes of two instance types at the same price (2 vCPU
 * each), so that only risk tells their pools apart, and an on-demand node.
 */
const FLEET: FakeNodeSpec[] = FAKE_ZONES.flatMap(zone => [
  ...(['m5.large', 'r5.large'] as const).map(instanceType => ({
    name: `spot-${instanceType.replace('.', '-')}-${zone}`,
    capacityType: 'spot' as const,
    instanceType,
    zone,
  })),
  {
    name: `on-demand-${zone}`,
    capacityType: 'on-demand' as const,
    instanceType: 'm5.large' as const,
    zone,
  },
]);

const NTH_TAINT = {
  key: 'aws-node-termination-handler/spot-itn',
  value: 'evt',
  effect: 'NoSchedule',
};

describe("Ferry's own prediction on a real cluster", () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let operator: KubeOperator;
  let feed: PoolRiskFeed;
  let pods: Reflector<V1Pod>;
  /** Fewest ready members seen at any change of the members' pods, once all three were up. */
  let fewestReady: number | undefined;
  const warnings: string[] = [];
  /** The member that moves, and the pool its node is in. */
  let member: { pod: string; node: string };
  /** The members before the move. */
  let before: Set<string>;
  let pool: PoolKey & { capacityType: 'spot' };

  function startOperator(identity: string, riskFeed: PoolRiskFeed) {
    const kc = cluster.kubeConfig();
    return new KubeOperator({
      kubeConfig: kc,
      identity,
      lease: {
        namespace: OPERATOR_NAMESPACE,
        name: 'ferry-leader',
        leaseDurationMs: 4_000,
        renewDeadlineMs: 3_000,
        retryPeriodMs: 500,
      },
      drivers: [
        new RescheduleDriver({
          evictor: new KubePodEvictor(kc),
          clock: systemClock,
        }),
      ],
      // Every spot pool at the same price and risk (the feed's replaces it), the
      // member's first: among equals the webhook takes the first pool, so only
      // the feed's risk can send a new member elsewhere.
      pools: async () => {
        const pools = poolsOf(FLEET);
        const first = pools.filter(
          p =>
            pool && p.capacityType === 'spot' && poolIdOf(p) === poolIdOf(pool),
        );
        return [...first, ...pools.filter(p => !first.includes(p))];
      },
      risk: {
        feed: riskFeed,
        history: new PoolRiskHistoryStore(kc, OPERATOR_NAMESPACE, HISTORY),
      },
      metrics: new OperatorMetrics({ processMetrics: false }),
      webhook: {
        tls: cluster.issueServingCertificate('webhook'),
        host: '127.0.0.1',
        port: 0,
      },
      log: { info: () => {}, warn: message => warnings.push(message) },
    });
  }

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    for (const name of [NAMESPACE, OPERATOR_NAMESPACE]) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    feed = new PoolRiskFeed({ onError: error => warnings.push(String(error)) });
    operator = startOperator('operator-0', feed);
    await operator.start();
    await registerFerryWebhooks(kc, operator.webhookPort!, cluster.caPem);
    await kc.makeApiClient(PolicyV1Api).createNamespacedPodDisruptionBudget({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'sessions' },
        spec: {
          minAvailable: MIN_AVAILABLE,
          selector: { matchLabels: { app: 'sessions' } },
        },
      },
    });
    await createOptedInSessions(kc, NAMESPACE, {
      migration: 'reschedule',
      // One permanent member of three, and of four: the webhook counts its
      // decisions of the last 30 s as members still arriving, so the
      // replacement's admission sees four.
      permanentRatio: 0.25,
    });
    // Members the webhook places, so that one is on permanent capacity and a
    // new one goes to spot: none before the operator knows the workload.
    const scale = (replicas: number) =>
      apiRequest(
        kc,
        'PATCH',
        `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/sessions/scale`,
        {
          contentType: 'application/merge-patch+json',
          body: { spec: { replicas } },
        },
      );
    await scale(0);
    await until(
      'the operator to know the workload with no members',
      () =>
        operator.state.workloads()[0]?.view.members.length === 0 &&
        operator.state.workloads()[0]?.replicas === 0,
      { timeoutMs: 60_000 },
    );
    await scale(3);
    pods = new Reflector<V1Pod>({
      kubeConfig: kc,
      type: PODS,
      namespace: NAMESPACE,
      labelSelector: 'app=sessions',
      onChange: () => {
        const ready = pods
          .list()
          .filter(pod => !pod.metadata?.deletionTimestamp && isReady(pod));
        if (fewestReady === undefined && ready.length < 3) return;
        fewestReady = Math.min(fewestReady ?? Infinity, ready.length);
      },
    });
    await pods.start();
    await until(
      'three ready members, placed by the webhook',
      () => {
        const members = operator.state.workloads()[0]?.view.members ?? [];
        const placed = pods
          .list()
          .filter(pod => pod.metadata?.annotations?.[PLACEMENT_ANNOTATION]);
        return (
          members.length === 3 &&
          members.every(m => m.node && m.ready) &&
          placed.length === 3
        );
      },
      { timeoutMs: 60_000 },
    );
  }, 180_000);

  afterAll(async () => {
    pods?.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  const migrations = async () =>
    await migrationsIn(cluster.kubeConfig(), NAMESPACE);

  const taint = (node: string) =>
    apiRequest(cluster.kubeConfig(), 'PATCH', `/api/v1/nodes/${node}`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { taints: [NTH_TAINT] } },
    });

  it('moves a member off a pool whose reclaims raised its risk past the threshold, before any notice for its node', async () => {
    const nodes = new Map(operator.state.nodeViews().map(n => [n.name, n]));
    // The spot member in the zone that wins the webhook's last tie-break (the
    // first by name), whose pool is listed first: with every pool's risk the
    // same, a new member of another workload would go to this very pool.
    const onSpot = operator.state.workloads()[0].view.members.find(m => {
      const node = nodes.get(m.node!);
      return node?.capacityType === 'spot' && node.zone === FAKE_ZONES[0];
    });
    expect(onSpot).toBeDefined();
    member = { pod: onSpot!.pod, node: onSpot!.node! };
    before = new Set(
      operator.state.workloads()[0].view.members.map(m => m.pod),
    );
    const node = nodes.get(member.node)!;
    pool = {
      instanceType: node.instanceType,
      zone: node.zone,
      capacityType: 'spot',
    };
    expect(feed.riskOf(pool)).toBeLessThan(DEFAULT_PROACTIVE_POLICY.exitRisk);
    const sameZoneOtherPool = {
      ...pool,
      instanceType: pool.instanceType === 'm5.large' ? 'r5.large' : 'm5.large',
    };
    expect(await migrations()).toEqual([]);

    // Nodes of the member's pool are reclaimed and replaced, one after the other.
    const spec = (i: number): FakeNodeSpec => ({
      name: `reclaimed-${i}`,
      capacityType: 'spot',
      instanceType: pool.instanceType as FakeInstanceType,
      zone: pool.zone,
    });
    await createFakeNodes(cluster.kubeConfig(), [spec(1)]);
    const reclaim = async (i: number) => {
      await taint(`reclaimed-${i}`);
      await until(
        `the notice on reclaimed-${i} to be seen`,
        () => operator.state.signals().some(s => s.node === `reclaimed-${i}`),
        { timeoutMs: 60_000 },
      );
      await createFakeNodes(cluster.kubeConfig(), [spec(i + 1)]);
    };
    for (let i = 1; i <= RECLAIMS; i++) await reclaim(i);

    const predicted = await until(
      'a prediction Migration',
      async () =>
        (await migrations()).find(m => m.spec.reason === 'prediction'),
      { timeoutMs: 60_000 },
    );
    expect(predicted.spec).toMatchObject({
      pod: member.pod,
      sourceNode: member.node,
      driver: 'reschedule',
    });
    // Before any notice: the member's node carries no taint.
    expect((await core.readNode({ name: member.node })).spec?.taints).toBe(
      undefined,
    );
    expect(feed.riskOf(pool)).toBeGreaterThanOrEqual(
      DEFAULT_PROACTIVE_POLICY.enterRisk,
    );
    // The zone's other pool only shares in its co-interruptions, a little.
    expect(feed.riskOf(sameZoneOtherPool)).toBeLessThan(
      DEFAULT_PROACTIVE_POLICY.exitRisk,
    );
    const metrics = await operator.metrics.registry.metrics();
    const gauge = new RegExp(
      `ferry_pool_interruption_risk\\{instance_type="${pool.instanceType}",zone="${pool.zone}"\\} ([0-9.e-]+)`,
    ).exec(metrics);
    expect(Number(gauge?.[1])).toBeGreaterThanOrEqual(
      DEFAULT_PROACTIVE_POLICY.enterRisk,
    );
    // Only the member's pool is hot, and its one node with a member moved: one Migration.
    expect((await migrations()).map(m => [m.spec.reason, m.spec.pod])).toEqual([
      ['prediction', member.pod],
    ]);

    const done = await until(
      'the prediction Migration to finish',
      async () =>
        (
          await migrations()
        ).find(
          m =>
            m.metadata.name === predicted.metadata.name &&
            ['Succeeded', 'RolledBack', 'Failed'].includes(
              m.status?.phase ?? '',
            ),
        ),
      { timeoutMs: 60_000 },
    );
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    const replacement = await until(
      'the replacement to be ready',
      async () =>
        (
          await core.listNamespacedPod({
            namespace: NAMESPACE,
            labelSelector: 'app=sessions',
          })
        ).items.find(
          pod =>
            !pod.metadata?.deletionTimestamp &&
            isReady(pod) &&
            !before.has(pod.metadata!.name!),
        ),
      { timeoutMs: 60_000 },
    );
    expect(replacement.spec!.nodeName).not.toBe(member.node);
    // The budget held throughout the move: never fewer ready members than it asks for.
    expect(fewestReady).toBeGreaterThanOrEqual(MIN_AVAILABLE);
    expect(fewestReady).toBeLessThan(3);
  });

  it('places a new member of another workload away from the risky pool', async () => {
    const kc = cluster.kubeConfig();
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'reports' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'reports' } },
          template: {
            metadata: { labels: { app: 'reports' } },
            spec: {
              containers: [
                {
                  name: 'valkey',
                  image: 'valkey/valkey:8',
                  resources: { requests: { cpu: '250m', memory: '512Mi' } },
                },
              ],
            },
          },
        },
      },
    });
    await apiRequest(kc, 'POST', collectionPath(SPOT_POLICIES, NAMESPACE), {
      body: {
        apiVersion: FERRY_API_VERSION,
        kind: 'SpotPolicy',
        metadata: { name: 'reports' },
        spec: {
          workloadRef: { kind: 'Deployment', name: 'reports' },
          permanentRatio: 0.25,
        },
      },
    });
    await until(
      'the operator to know reports',
      () =>
        operator.state
          .workloads()
          .some(w => w.policy.metadata.name === 'reports'),
      { timeoutMs: 60_000 },
    );
    // Two members: one permanent, one on spot in any zone (none has one yet),
    // at the same price in every spot pool; the member's pool is listed first.
    await apiRequest(
      kc,
      'PATCH',
      `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/reports/scale`,
      {
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 2 } },
      },
    );
    const placements = await until(
      'both reports members placed',
      async () => {
        const placed = (
          await core.listNamespacedPod({
            namespace: NAMESPACE,
            labelSelector: 'app=reports',
          })
        ).items
          .map(pod => pod.metadata?.annotations?.[PLACEMENT_ANNOTATION])
          .filter((p): p is string => p !== undefined);
        return placed.length === 2 ? placed.sort() : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const onSpot = placements.filter(p => p.startsWith('spot '));
    expect(onSpot).toHaveLength(1);
    expect(onSpot[0]).not.toBe(`spot ${poolIdOf(pool)}`);
  });

  it("keeps the pool's record for the next operator in its ConfigMap", async () => {
    const stored = await until(
      'the history to be stored',
      async () => {
        const history = await new PoolRiskHistoryStore(
          cluster.kubeConfig(),
          OPERATOR_NAMESPACE,
          HISTORY,
        ).load();
        return history?.pools.find(p => poolIdOf(p) === poolIdOf(pool))
          ?.interruptions === RECLAIMS
          ? history
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(
      stored.pools.find(p => poolIdOf(p) === poolIdOf(pool)),
    ).toMatchObject({ lastRecoveryAt: expect.any(Number) });
    await operator.stop();

    const next = new PoolRiskFeed();
    // Before it has seen a thing, a fresh feed knows nothing of the pool.
    expect(next.riskOf(pool)).toBeLessThan(DEFAULT_PROACTIVE_POLICY.exitRisk);
    operator = startOperator('operator-1', next);
    await operator.start();
    expect(next.riskOf(pool)).toBeGreaterThanOrEqual(
      DEFAULT_PROACTIVE_POLICY.enterRisk,
    );
    // The tainted nodes it finds still tainted were counted already.
    expect(
      next.history().pools.find(p => poolIdOf(p) === poolIdOf(pool))
        ?.interruptions,
    ).toBe(RECLAIMS);
  });
});
