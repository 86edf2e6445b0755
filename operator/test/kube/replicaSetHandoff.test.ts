/**
 * What a hand-off of a Deployment's member has to do for the Deployment's own
 * ReplicaSet to keep the new member and remove the old one, checked on a real
 * controller manager: the new member starts outside the ReplicaSet's selector (so
 * it is not counted, adopted or replaced while state moves), and once it has taken
 * over, the old member's `pod-deletion-cost` is lowered and the new member is given
 * the selector's labels. The ReplicaSet adopts it, finds one pod too many, and
 * removes the cheapest to delete: the old member.
 */
import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { createFakeNodes } from './fakeNodes';
import { LocalControlPlane } from './LocalControlPlane';
import { eventually } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** The annotation ReplicaSets rank pods by when they scale down (Kubernetes 1.22+). */
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

describe('a hand-off the ReplicaSet agrees with', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await createFakeNodes(kc, [
      {
        name: 'spot-a',
        capacityType: 'spot',
        instanceType: 'm5.large',
        zone: 'us-east-1a',
      },
      {
        name: 'spot-b',
        capacityType: 'spot',
        instanceType: 'm5.large',
        zone: 'us-east-1b',
      },
      {
        name: 'spot-c',
        capacityType: 'spot',
        instanceType: 'm5.large',
        zone: 'us-east-1c',
      },
      {
        name: 'on-demand-a',
        capacityType: 'on-demand',
        instanceType: 'm5.large',
        zone: 'us-east-1a',
      },
    ]);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const runningPods = async () =>
    (
      await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: 'app=cache',
      })
    ).items.filter(
      pod =>
        pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp,
    );

  it('ends with the new member owned by the ReplicaSet and the old one removed', async () => {
    await cluster
      .kubeConfig()
      .makeApiClient(AppsV1Api)
      .createNamespacedDeployment({
        namespace: NAMESPACE,
        body: {
          metadata: { name: 'cache' },
          spec: {
            replicas: 3,
            selector: { matchLabels: { app: 'cache' } },
            template: {
              metadata: { labels: { app: 'cache' } },
              spec: {
                nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
                topologySpreadConstraints: [
                  {
                    maxSkew: 1,
                    topologyKey: 'topology.kubernetes.io/zone',
                    whenUnsatisfiable: 'DoNotSchedule',
                    labelSelector: { matchLabels: { app: 'cache' } },
                  },
                ],
                containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
              },
            },
          },
        },
      });
    const before = await eventually(async () => {
      const pods = await runningPods();
      if (pods.length !== 3) throw new Error(`${pods.length} running`);
      return pods;
    });
    const old = before.find(pod => pod.spec!.nodeName === 'spot-a')!;
    const owner = old.metadata!.ownerReferences!.find(ref => ref.controller)!;
    const templateLabels = old.metadata!.labels!;

    // 1. The new member, on the target node, outside the selector: not counted yet.
    const { app: _selected, ...outsideSelector } = templateLabels;
    const target: V1Pod = {
      metadata: {
        name: `${old.metadata!.name}-ferry`,
        labels: {
          ...outsideSelector,
          'ferry.dev/handoff-of': old.metadata!.name!,
        },
      },
      spec: {
        // Placed by the migration plan (here: the permanent fallback), not by the scheduler.
        nodeName: 'on-demand-a',
        containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
      },
    };
    await core.createNamespacedPod({ namespace: NAMESPACE, body: target });
    await eventually(async () => {
      const pod = await core.readNamespacedPod({
        namespace: NAMESPACE,
        name: target.metadata!.name!,
      });
      if (pod.status?.phase !== 'Running')
        throw new Error('target not running');
    });
    // (State moves here; the ReplicaSet still sees exactly its three pods.)
    await new Promise(resolve => setTimeout(resolve, 1_000));
    expect((await runningPods()).map(p => p.metadata!.name).sort()).toEqual(
      before.map(p => p.metadata!.name).sort(),
    );

    // 2. After the switch-over: the old member is the cheapest to delete, the new one joins.
    const patchPod = (name: string, metadata: object) =>
      apiRequest(
        cluster.kubeConfig(),
        'PATCH',
        `/api/v1/namespaces/${NAMESPACE}/pods/${name}`,
        {
          contentType: 'application/merge-patch+json',
          body: { metadata },
        },
      );
    await patchPod(old.metadata!.name!, {
      annotations: { [DELETION_COST]: String(-(2 ** 31)) },
    });
    await patchPod(target.metadata!.name!, {
      labels: { app: templateLabels.app },
    });
    const after = await eventually(async () => {
      const pods = await runningPods();
      const names = pods.map(p => p.metadata!.name);
      if (pods.length !== 3 || names.includes(old.metadata!.name)) {
        throw new Error(`running: ${names.join(', ')}`);
      }
      return pods;
    });
    const adopted = after.find(
      p => p.metadata!.name === target.metadata!.name,
    )!;
    expect(adopted.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ uid: owner.uid, controller: true }),
    ]);
    expect(adopted.spec!.nodeName).toBe('on-demand-a');
    // The other two members were never touched.
    expect(after.map(p => p.metadata!.name).sort()).toEqual(
      [
        ...before.filter(p => p !== old).map(p => p.metadata!.name!),
        target.metadata!.name!,
      ].sort(),
    );
  });
});
