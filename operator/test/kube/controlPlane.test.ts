import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import {
  FAKE_INSTANCE_TYPES,
  FAKE_ZONES,
  NODE_LABELS,
  createFakeNodes,
  standardFleet,
} from './fakeNodes';
import { LocalControlPlane } from './LocalControlPlane';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

describe('the local control plane', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let startedInMs: number;

  beforeAll(async () => {
    const started = Date.now();
    cluster = await LocalControlPlane.start();
    startedInMs = Date.now() - started;
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts etcd, the API server, the controller manager, the scheduler and kwok', () => {
    // Printed so that the cost of a cluster per suite stays visible.
    process.stdout.write(`local control plane ready in ${startedInMs} ms\n`);
    expect(cluster.kubectl(['version', '-o', 'json'])).toContain(
      '"gitVersion"',
    );
  });

  it('runs a fleet of fake nodes: spot and on-demand, 3 zones, 4 instance types', async () => {
    const nodes = await createFakeNodes(cluster.kubeConfig(), standardFleet());
    expect(nodes).toHaveLength(24);
    const label = (key: string) =>
      new Set(nodes.map(node => node.metadata!.labels![key]));
    expect(label(NODE_LABELS.karpenterCapacityType)).toEqual(
      new Set(['spot', 'on-demand']),
    );
    expect(label(NODE_LABELS.eksCapacityType)).toEqual(
      new Set(['SPOT', 'ON_DEMAND']),
    );
    expect(label(NODE_LABELS.zone)).toEqual(new Set(FAKE_ZONES));
    expect(label(NODE_LABELS.instanceType)).toEqual(
      new Set(Object.keys(FAKE_INSTANCE_TYPES)),
    );
    const spot = cluster.kubectl([
      'get',
      'nodes',
      '-l',
      `${NODE_LABELS.karpenterCapacityType}=spot`,
      '-o',
      'name',
    ]);
    expect(spot.trim().split('\n')).toHaveLength(12);
  });

  it('schedules a Deployment onto the fake nodes, and kwok runs its pods', async () => {
    await core.createNamespace({ body: { metadata: { name: 'apps' } } });
    await cluster
      .kubeConfig()
      .makeApiClient(AppsV1Api)
      .createNamespacedDeployment({
        namespace: 'apps',
        body: {
          metadata: { name: 'cache' },
          spec: {
            replicas: 3,
            selector: { matchLabels: { app: 'cache' } },
            template: {
              metadata: { labels: { app: 'cache' } },
              spec: {
                nodeSelector: { [NODE_LABELS.karpenterCapacityType]: 'spot' },
                topologySpreadConstraints: [
                  {
                    maxSkew: 1,
                    topologyKey: NODE_LABELS.zone,
                    whenUnsatisfiable: 'DoNotSchedule',
                    labelSelector: { matchLabels: { app: 'cache' } },
                  },
                ],
                containers: [
                  {
                    name: 'valkey',
                    image: 'valkey/valkey:8',
                    resources: { requests: { cpu: '500m', memory: '1Gi' } },
                  },
                ],
              },
            },
          },
        },
      });

    let pods: V1Pod[] = [];
    await until(
      'three pods running',
      async () => {
        pods = (await core.listNamespacedPod({ namespace: 'apps' })).items;
        return pods.filter(pod => pod.status?.phase === 'Running').length === 3;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 250,
        detail: () =>
          `${JSON.stringify(
            pods.map(p => [
              p.metadata?.name,
              p.spec?.nodeName,
              p.status?.phase,
            ]),
          )}\nscheduler log:\n${cluster.logTail(
            'kube-scheduler',
          )}\nkwok log:\n${cluster.logTail('kwok')}`,
      },
    );
    const nodes = await Promise.all(
      pods.map(pod => core.readNode({ name: pod.spec!.nodeName! })),
    );
    expect(
      nodes.map(
        node => node.metadata!.labels![NODE_LABELS.karpenterCapacityType],
      ),
    ).toEqual(['spot', 'spot', 'spot']);
    expect(
      new Set(nodes.map(node => node.metadata!.labels![NODE_LABELS.zone])).size,
    ).toBe(3);
    // Pod addresses are loopback: a test that dials one reaches only this machine.
    for (const pod of pods) {
      expect(pod.status?.podIP).toMatch(/^127\./);
    }
  });
});
