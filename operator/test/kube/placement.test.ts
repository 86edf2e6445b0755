/**
 * Pods of opted-in workloads placed by the operator's webhook on a real cluster:
 * the permanent floor met once however many pods a rollout creates at once, the
 * rest on spot, spread over zones; pods of other workloads left alone.
 */
import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { SPOT_POLICIES } from '../../src/kube/client/resources';
import { poolsOfNodes } from '../../src/kube/pools/poolsOfNodes';
import { createFakeNodes, NODE_LABELS, standardFleet } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { PLACEMENT_ANNOTATION } from '../../src/kube/client/ferryKeys';
import { until } from './until';
import { registerFerryWebhooks } from './ferryWebhooks';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

describe('placement of opted-in pods on a real cluster', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let operator: KubeOperator;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, standardFleet());
    for (const name of [NAMESPACE, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    operator = new KubeOperator({
      kubeConfig: kc,
      identity: 'operator-0',
      lease: { namespace: 'ferry-system', name: 'ferry-leader' },
      drivers: [],
      // As main.ts does: the pools of the cluster's nodes, none launchable by Ferry.
      pools: async () => poolsOfNodes(operator.state.nodeViews()),
      metrics: new OperatorMetrics({ processMetrics: false }),
      webhook: {
        tls: cluster.issueServingCertificate('webhook'),
        host: '127.0.0.1',
        port: 0,
      },
    });
    await operator.start();
    await registerFerryWebhooks(kc, operator.webhookPort!, cluster.caPem);
    for (const name of ['sessions', 'queue']) {
      await apiRequest(kc, 'POST', collectionPath(SPOT_POLICIES, NAMESPACE), {
        body: {
          apiVersion: FERRY_API_VERSION,
          kind: 'SpotPolicy',
          metadata: { name },
          spec: {
            workloadRef: {
              kind: name === 'queue' ? 'StatefulSet' : 'Deployment',
              name,
            },
          },
        },
      });
    }
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  const template = (app: string) => ({
    metadata: { labels: { app } },
    spec: {
      containers: [
        {
          name: 'valkey',
          image: 'valkey/valkey:8',
          resources: { requests: { cpu: '250m', memory: '512Mi' } },
        },
      ],
    },
  });

  async function placed(
    app: string,
    count: number,
  ): Promise<{ pod: V1Pod; capacityType: string; zone: string }[]> {
    const api = core;
    let running = 0;
    const pods = await until(
      `${count} ${app} pods running`,
      async () => {
        const found = (
          await api.listNamespacedPod({
            namespace: NAMESPACE,
            labelSelector: `app=${app}`,
          })
        ).items.filter(p => p.status?.phase === 'Running');
        running = found.length;
        return found.length === count ? found : undefined;
      },
      { intervalMs: 200, detail: () => `${running} running` },
    );
    return Promise.all(
      pods.map(async pod => {
        const node = await api.readNode({ name: pod.spec!.nodeName! });
        return {
          pod,
          capacityType:
            node.metadata!.labels![NODE_LABELS.karpenterCapacityType],
          zone: node.metadata!.labels![NODE_LABELS.zone],
        };
      }),
    );
  }

  /**
   * Scales a workload created with no replicas once the operator's watch has it,
   * so that its pods never arrive before the operator knows whose they are.
   */
  async function scaleWhenKnown(
    kind: 'deployments' | 'statefulsets',
    name: string,
    replicas: number,
  ) {
    await until(
      `the operator to see ${name}`,
      () =>
        operator.state.workloads().some(w => w.policy.metadata.name === name),
      { timeoutMs: 15_000, intervalMs: 50 },
    );
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/apis/apps/v1/namespaces/${NAMESPACE}/${kind}/${name}/scale`,
      {
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas } },
      },
    );
  }

  it('keeps one of three Deployment replicas on permanent capacity, though all three arrive at once', async () => {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'sessions' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'sessions' } },
          template: template('sessions'),
        },
      },
    });
    await scaleWhenKnown('deployments', 'sessions', 3);
    const pods = await placed('sessions', 3);
    expect(pods.map(p => p.capacityType).sort()).toEqual([
      'on-demand',
      'spot',
      'spot',
    ]);
    const spotZones = new Set(
      pods.filter(p => p.capacityType === 'spot').map(p => p.zone),
    );
    expect(spotZones.size).toBe(2);
    for (const { pod, capacityType } of pods) {
      expect(pod.metadata?.annotations?.[PLACEMENT_ANNOTATION]).toMatch(
        new RegExp(`^${capacityType} `),
      );
    }
  });

  it('keeps two of five StatefulSet members on permanent capacity, the rest on spot in every zone', async () => {
    await apps.createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'queue' },
        spec: {
          replicas: 0,
          serviceName: 'queue',
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: { app: 'queue' } },
          template: template('queue'),
        },
      },
    });
    await scaleWhenKnown('statefulsets', 'queue', 5);
    const pods = await placed('queue', 5);
    expect(pods.filter(p => p.capacityType === 'on-demand')).toHaveLength(2);
    expect(
      new Set(pods.filter(p => p.capacityType === 'spot').map(p => p.zone))
        .size,
    ).toBe(3);
  });

  it('places the pods a Deployment opted in by its own annotations creates at once, before its SpotPolicy is written', async () => {
    const body = {
      metadata: { name: 'agent-memory' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'agent-memory' } },
        template: template('agent-memory'),
      },
    };
    body.spec.template.metadata = {
      ...body.spec.template.metadata,
      annotations: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
      },
    } as typeof body.spec.template.metadata;
    await apps.createNamespacedDeployment({ namespace: NAMESPACE, body });
    const pods = await placed('agent-memory', 3);
    expect(pods.map(p => p.capacityType).sort()).toEqual([
      'on-demand',
      'spot',
      'spot',
    ]);
    for (const { pod, capacityType } of pods) {
      expect(pod.metadata?.annotations?.[PLACEMENT_ANNOTATION]).toMatch(
        new RegExp(`^${capacityType} `),
      );
    }
  });

  it('leaves the pods of workloads that did not opt in alone', async () => {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: template('web'),
        },
      },
    });
    const pods = await placed('web', 2);
    for (const { pod } of pods) {
      expect(pod.metadata?.annotations?.[PLACEMENT_ANNOTATION]).toBeUndefined();
      expect(pod.spec?.affinity).toBeUndefined();
    }
  });
});
