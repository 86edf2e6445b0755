/**
 * operator/chart on real nodes, installed with `helm install` from Ferry's own images
 * (operator/src/images), imported into every node's containerd and never pulled: two
 * operator replicas Running from the image, one leader by Lease, the webhooks served
 * with the chart's certificate (a pod of an opted-in workload is placed by the mutating
 * webhook), and the node agent's DaemonSet Running on every real node.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  V1Pod,
} from '@kubernetes/client-node';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import { ferryImages } from '../../src/images/build';
import { FERRY_IMAGE_VERSION, imageSpec } from '../../src/images/images';
import { helmBinary } from '../kube/helmBinary';
import { until } from '../kube/until';
import { RealNodeCluster } from './RealNodeCluster';
import { PLACEMENT_DECISION_ANNOTATION } from '../../src/kube/client/ferryKeys';

// Images (cold: Debian packages and bundles), three nodes and a chart on two loaded cores.
jest.setTimeout(900_000);

const CHART = path.resolve(__dirname, '../../chart');
const NAMESPACE = 'ferry-system';
const RELEASE = 'ferry';
const APP_NAMESPACE = 'shop';
/** How long the last agent may take after `helm install --wait` returns, on two loaded cores. */
const AGENT_READY_TIMEOUT_MS = 180_000;

let cluster: RealNodeCluster;

beforeAll(async () => {
  const images = await ferryImages();
  cluster = await RealNodeCluster.start({
    images: Object.values(images),
    sandboxImage: imageSpec('pause').references[0],
    controlPlane: { kwok: false },
  });
  execFileSync(
    helmBinary(),
    [
      'install',
      RELEASE,
      CHART,
      '--namespace',
      NAMESPACE,
      '--create-namespace',
      // With the checkpoint method, so that the node agent's DaemonSet runs too; without
      // the RuntimeClass `ferry`, whose handler these nodes lack (checkpointMove.test.ts
      // starts nodes with it), so the webhook leaves the opted-in pod on runc.
      '--set',
      'checkpoint.enabled=true',
      '--set',
      'checkpoint.runtimeClass.create=false',
      '--wait',
      '--timeout',
      '600s',
      '--kubeconfig',
      cluster.kubeconfigPath,
    ],
    {
      env: {
        ...process.env,
        HELM_CACHE_HOME: path.join(cluster.controlPlane.workDir, 'helm/cache'),
        HELM_CONFIG_HOME: path.join(
          cluster.controlPlane.workDir,
          'helm/config',
        ),
        HELM_DATA_HOME: path.join(cluster.controlPlane.workDir, 'helm/data'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
});

afterAll(async () => {
  await cluster?.stop();
});

function core() {
  return cluster.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
}

async function podsOf(name: string): Promise<V1Pod[]> {
  const pods = await core().listNamespacedPod({
    namespace: NAMESPACE,
    labelSelector: `app.kubernetes.io/name=${name}`,
  });
  return pods.items;
}

/** Each agent pod's node, phase, readiness and container state, for a failed wait. */
async function agentPodsDetail(): Promise<string> {
  const pods = await podsOf('ferry-agent');
  return JSON.stringify(
    pods.map(pod => ({
      node: pod.spec?.nodeName,
      phase: pod.status?.phase,
      conditions: pod.status?.conditions?.map(c => `${c.type}=${c.status}`),
      containers: pod.status?.containerStatuses?.map(c => ({
        ready: c.ready,
        restarts: c.restartCount,
        state: c.state,
        lastState: c.lastState,
      })),
    })),
  );
}

it('runs two operator replicas from its own image, never pulled, one of them leading', async () => {
  const deployment = await cluster.controlPlane
    .kubeConfig()
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
  expect(deployment.status?.readyReplicas).toBe(2);
  const pods = await podsOf('ferry');
  expect(pods).toHaveLength(2);
  for (const pod of pods) {
    expect(pod.status?.phase).toBe('Running');
    const [container] = pod.status!.containerStatuses!;
    expect(container.ready).toBe(true);
    expect(container.image).toBe(
      `localhost/ferry/operator:${FERRY_IMAGE_VERSION}`,
    );
    expect(pod.spec!.containers[0].imagePullPolicy).toBe('Never');
    expect(cluster.nodes.map(node => node.name)).toContain(pod.spec!.nodeName);
  }
  const lease = await cluster.controlPlane
    .kubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ namespace: NAMESPACE, name: `${RELEASE}-leader` });
  expect(pods.map(pod => pod.metadata!.name)).toContain(
    lease.spec?.holderIdentity,
  );
});

it('runs the node agent on every real node, privileged, from its own image', async () => {
  // `helm install --wait` holds a DaemonSet ready with one pod short (maxUnavailable 1),
  // so the last node's agent may still be starting when it returns.
  await until(
    `the agent ready on all ${cluster.nodes.length} nodes`,
    async () => {
      const daemonSet = await cluster.controlPlane
        .kubeConfig()
        .makeApiClient(AppsV1Api)
        .readNamespacedDaemonSet({
          namespace: NAMESPACE,
          name: `${RELEASE}-agent`,
        });
      return daemonSet.status?.numberReady === cluster.nodes.length;
    },
    { timeoutMs: AGENT_READY_TIMEOUT_MS, detail: agentPodsDetail },
  );
  const pods = await podsOf('ferry-agent');
  expect(pods.map(pod => pod.spec!.nodeName).sort()).toEqual(
    cluster.nodes.map(node => node.name).sort(),
  );
  for (const pod of pods) {
    expect(pod.status!.containerStatuses![0].image).toBe(
      `localhost/ferry/agent:${FERRY_IMAGE_VERSION}`,
    );
    expect(pod.status!.containerStatuses![0].ready).toBe(true);
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
  }
});

it("places a pod of an opted-in workload through the webhook, served with the chart's certificate", async () => {
  cluster.kubectl(['create', 'namespace', APP_NAMESPACE]);
  cluster.kubectl(
    ['apply', '-n', APP_NAMESPACE, '-f', '-'],
    JSON.stringify({
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: { name: 'sessions' },
      spec: { workloadRef: { kind: 'Deployment', name: 'sessions' } },
    }),
  );
  // The replicas learn of the policy through their watch; a pod created before that is
  // left alone (the webhook fails open), so the Deployment comes a moment later.
  await new Promise(resolve => setTimeout(resolve, 5_000));
  cluster.kubectl(
    ['apply', '-n', APP_NAMESPACE, '-f', '-'],
    JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'sessions' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'sessions' } },
        template: {
          metadata: { labels: { app: 'sessions' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'valkey', image: 'valkey/valkey:9' }],
          },
        },
      },
    }),
  );
  cluster.kubectl([
    'rollout',
    'status',
    '-n',
    APP_NAMESPACE,
    'deployment/sessions',
    '--timeout=300s',
  ]);
  const pods = await core().listNamespacedPod({
    namespace: APP_NAMESPACE,
    labelSelector: 'app=sessions',
  });
  expect(pods.items).toHaveLength(1);
  const [pod] = pods.items;
  // Only the webhook writes this annotation, and the API server called it over TLS
  // with the chart's CA bundle.
  expect(
    pod.metadata?.annotations?.[PLACEMENT_DECISION_ANNOTATION],
  ).toBeTruthy();
  expect(pod.spec?.affinity?.nodeAffinity).toBeDefined();
  expect(pod.status?.phase).toBe('Running');
  // Found in the node's containerd under the post's name: IfNotPresent, nothing pulled.
  expect(pod.spec!.containers[0].imagePullPolicy).toBe('IfNotPresent');
  expect(pod.status!.containerStatuses![0].image).toBe(
    'docker.io/valkey/valkey:9',
  );
});

it("refuses a pod in the cluster without the agent's token: every node's agent answers 401, and the token is answered", async () => {
  const nodes = await core().listNode();
  const addresses = nodes.items.map(
    node =>
      node.status!.addresses!.find(address => address.type === 'InternalIP')!
        .address,
  );
  const secret = await core().readNamespacedSecret({
    namespace: NAMESPACE,
    name: 'ferry-node-agent',
  });
  const token = Buffer.from(secret.data!.token, 'base64').toString('utf8');
  const agents = await cluster.controlPlane
    .kubeConfig()
    .makeApiClient(AppsV1Api)
    .readNamespacedDaemonSet({
      namespace: NAMESPACE,
      name: `${RELEASE}-agent`,
    });
  const port =
    agents.spec!.template.spec!.containers[0].ports![0].containerPort;
  // From the pod network, as any workload would try: no token, a wrong one, and a
  // dump asked for without one; then the real token, so a refusal is not a wall.
  const probe = `
    const ask = (url, method, authorization, body) =>
      fetch(url, { method, headers: authorization ? { authorization } : {}, body })
        .then(r => r.status, e => 'unreachable: ' + e.cause?.code);
    (async () => {
      const answers = {};
      for (const address of process.env.AGENTS.split(' ')) {
        const base = 'http://' + address + ':' + process.env.AGENT_PORT + '/v1';
        answers[address] = [
          await ask(base + '/health', 'GET'),
          await ask(base + '/health', 'GET', 'Bearer not-the-token'),
          await ask(base + '/checkpoints/intruder', 'POST', undefined,
            JSON.stringify({ pid: 1, targetUrl: 'http://127.0.0.1:1' })),
          await ask(base + '/health', 'GET', 'Bearer ' + process.env.AGENT_TOKEN),
        ];
      }
      console.log(JSON.stringify(answers));
    })();`;
  const name = 'intruder';
  await core().createNamespacedPod({
    namespace: APP_NAMESPACE,
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'probe',
            image: `localhost/ferry/operator:${FERRY_IMAGE_VERSION}`,
            imagePullPolicy: 'Never',
            command: ['node', '-e', probe],
            env: [
              { name: 'AGENTS', value: addresses.join(' ') },
              { name: 'AGENT_PORT', value: String(port) },
              { name: 'AGENT_TOKEN', value: token },
            ],
          },
        ],
      },
    },
  });
  await until(
    'the probe pod to finish',
    async () => {
      const pod = await core().readNamespacedPod({
        namespace: APP_NAMESPACE,
        name,
      });
      return ['Succeeded', 'Failed'].includes(pod.status?.phase ?? '');
    },
    {
      timeoutMs: 180_000,
      detail: async () =>
        JSON.stringify(
          (
            await core().readNamespacedPod({ namespace: APP_NAMESPACE, name })
          ).status,
        ),
    },
  );
  const log = await core().readNamespacedPodLog({
    namespace: APP_NAMESPACE,
    name,
  });
  expect(JSON.parse(log.trim().split('\n').at(-1)!)).toEqual(
    Object.fromEntries(
      addresses.map(address => [address, [401, 401, 401, 200]]),
    ),
  );
});
