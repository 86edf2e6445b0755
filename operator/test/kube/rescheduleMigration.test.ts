/**
 * The `reschedule` method on a real cluster, end to end: an AWS Node Termination
 * Handler taint on a spot node holding a member of an opted-in Deployment becomes
 * a Migration; the operator evicts the member through the Eviction API (its own
 * eviction webhook lets that eviction through, PodDisruptionBudgets still hold),
 * the ReplicaSet's replacement is placed by the placement webhook on a healthy
 * node, and the Migration succeeds once the replacement is ready.
 */
import {
  AppsV1Api,
  CoreV1Api,
  PolicyV1Api,
  V1Pod,
} from '@kubernetes/client-node';
import { systemClock } from '../../src/core/clock';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { KubePodEvictor } from '../../src/kube/runtimes/reschedule/KubePodEvictor';
import { Reflector } from '../../src/kube/informers/Reflector';
import { PODS } from '../../src/kube/client/resources';
import { RescheduleDriver } from '../../src/migration/reschedule/RescheduleDriver';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { isReady } from '../../src/kube/state/workloadViews';
import { until } from './until';
import { PLACEMENT_ANNOTATION } from '../../src/kube/client/ferryKeys';
import { startOperator } from './startOperator';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** The budget of the test: of three members, two stay up. */
const MIN_AVAILABLE = 2;

/** Two spot nodes and one on-demand node in each of three zones. */
const FLEET: FakeNodeSpec[] = zonalFleet();

describe('the reschedule method on a real cluster', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let operator: KubeOperator;
  let pods: Reflector<V1Pod>;
  /** Fewest ready members seen at any change of the members' pods, once all three were up. */
  let fewestReady: number | undefined;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    for (const name of [NAMESPACE, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    ({ operator } = await startOperator(
      cluster,
      {
        drivers: [
          new RescheduleDriver({
            evictor: new KubePodEvictor(kc),
            clock: systemClock,
          }),
        ],
        pools: async () => poolsOf(FLEET),
      },
      { webhooks: true },
    ));
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
    await createOptedInSessions(kc, NAMESPACE, { migration: 'reschedule' });

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
    await until('three ready members', () => {
      const members = operator.state.workloads()[0]?.view.members ?? [];
      return members.length === 3 && members.every(m => m.node && m.ready);
    });
  }, 180_000);

  afterAll(async () => {
    pods?.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  const migrations = async () =>
    await migrationsIn(cluster.kubeConfig(), NAMESPACE);

  it('evicts a member off a node with a spot interruption notice and succeeds once its replacement is ready elsewhere', async () => {
    const members = operator.state.workloads()[0].view.members;
    const member = members.find(m => m.node!.startsWith('spot-'))!;
    const before = new Set(members.map(m => m.pod));
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${member.node}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          spec: {
            taints: [
              {
                key: 'aws-node-termination-handler/spot-itn',
                value: 'evt-1',
                effect: 'NoSchedule',
              },
            ],
          },
        },
      },
    );

    const done = await until('the migration to finish', async () =>
      (
        await migrations()
      ).find(
        m =>
          m.spec.pod === member.pod &&
          ['Succeeded', 'RolledBack', 'Failed'].includes(m.status?.phase ?? ''),
      ),
    );
    // The message says why, should it not have succeeded.
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    expect(done.spec).toMatchObject({
      driver: 'reschedule',
      reason: 'notice',
      sourceNode: member.node,
    });
    expect(done.status!.phases.map(t => t.phase)).toEqual([
      'Planned',
      'PreparingTarget',
      'Transferring',
      'SwitchingOver',
      'Verifying',
      'CleaningUp',
    ]);

    // The member is gone; its replacement, created by the ReplicaSet and placed
    // by the webhook, runs on a node without the notice.
    const now = (
      await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: 'app=sessions',
      })
    ).items.filter(pod => !pod.metadata?.deletionTimestamp);
    expect(now.map(pod => pod.metadata!.name)).not.toContain(member.pod);
    const replacements = now.filter(pod => !before.has(pod.metadata!.name!));
    expect(replacements).toHaveLength(1);
    const [replacement] = replacements;
    expect(done.status!.driverState?.targetPod).toBe(
      replacement.metadata!.name,
    );
    expect(isReady(replacement)).toBe(true);
    expect(replacement.spec!.nodeName).not.toBe(member.node);
    expect(replacement.metadata!.annotations?.[PLACEMENT_ANNOTATION]).toEqual(
      expect.any(String),
    );
    expect(replacement.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ReplicaSet', controller: true }),
    ]);
    const node = await core.readNode({ name: replacement.spec!.nodeName! });
    expect(node.spec?.taints ?? []).toEqual([]);

    // The budget held throughout: never fewer ready members than it asks for.
    expect(fewestReady).toBeGreaterThanOrEqual(MIN_AVAILABLE);
    expect(fewestReady).toBeLessThan(3);
  });
  it('answers as the Eviction API does: blocked while a budget forbids it, evicted once it allows, gone for a pod that is not there', async () => {
    // A workload Ferry does not manage, so that only its budget decides.
    const kc = cluster.kubeConfig();
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'nginx' }] },
          },
        },
      },
    });
    const policy = kc.makeApiClient(PolicyV1Api);
    await policy.createNamespacedPodDisruptionBudget({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'web' },
        spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } },
      },
    });
    const budgetAllows = (allowed: number) =>
      until(`the budget to allow ${allowed}`, async () => {
        const budget = await policy.readNamespacedPodDisruptionBudget({
          namespace: NAMESPACE,
          name: 'web',
        });
        return (
          budget.status?.observedGeneration === budget.metadata?.generation &&
          budget.status?.currentHealthy === 2 &&
          budget.status?.disruptionsAllowed === allowed
        );
      });
    await budgetAllows(0);
    const [pod] = (
      await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: 'app=web',
      })
    ).items;
    const evictor = new KubePodEvictor(kc);

    expect(await evictor.evict(NAMESPACE, pod.metadata!.name!)).toBe('blocked');
    expect(
      (
        await core.readNamespacedPod({
          namespace: NAMESPACE,
          name: pod.metadata!.name!,
        })
      ).metadata?.deletionTimestamp,
    ).toBeUndefined();

    await apiRequest(
      kc,
      'PATCH',
      `/apis/policy/v1/namespaces/${NAMESPACE}/poddisruptionbudgets/web`,
      {
        contentType: 'application/merge-patch+json',
        body: { spec: { minAvailable: 1 } },
      },
    );
    await budgetAllows(1);
    expect(await evictor.evict(NAMESPACE, pod.metadata!.name!)).toBe('evicted');
    expect(await evictor.evict(NAMESPACE, 'no-such-pod')).toBe('gone');
    await expect(
      evictor.readyReplacement(NAMESPACE, 'no-such-workload', 'spot-1-a'),
    ).rejects.toThrow(
      'no Deployment or StatefulSet shop/no-such-workload: the workload whose member was evicted is gone, so no replacement will come',
    );
  });
});
