import { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import {
  AdmissionWebhookServer,
  JsonPatchOperation,
  MUTATE_PODS_PATH,
  PodMutator,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { LocalControlPlane } from './LocalControlPlane';
import { eventually } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** A pod create should never wait on the webhook longer than this. */
const WEBHOOK_TIMEOUT_SECONDS = 2;

describe('the pod admission webhook on a real API server', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let server: AdmissionWebhookServer | undefined;
  let mutate: PodMutator = async () => [];
  let pods = 0;
  const reviews: { durationMs: number; patched: boolean; failed: boolean }[] =
    [];

  async function serveWebhook(port = 0): Promise<number> {
    const tls = cluster.issueServingCertificate('webhook');
    server = new AdmissionWebhookServer({
      tls,
      host: '127.0.0.1',
      port,
      mutatePod: (pod, admission) => mutate(pod, admission),
      onReview: review => reviews.push(review),
    });
    return server.start();
  }

  beforeAll(async () => {
    // The controller manager creates each namespace's default ServiceAccount, which pods need.
    cluster = await LocalControlPlane.start({ scheduler: false, kwok: false });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const port = await serveWebhook();
    await apiRequest(
      cluster.kubeConfig(),
      'POST',
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      {
        body: {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name: 'ferry-placement' },
          webhooks: [
            {
              name: 'pods.placement.ferry.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Ignore',
              timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
              reinvocationPolicy: 'IfNeeded',
              clientConfig: {
                url: `https://127.0.0.1:${port}${MUTATE_PODS_PATH}`,
                caBundle: Buffer.from(cluster.caPem).toString('base64'),
              },
              namespaceSelector: {
                matchExpressions: [
                  {
                    key: 'kubernetes.io/metadata.name',
                    operator: 'NotIn',
                    values: ['kube-system'],
                  },
                ],
              },
              rules: [
                {
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods'],
                  operations: ['CREATE'],
                },
              ],
            },
          ],
        },
      },
    );
    // The default ServiceAccount, which pods need, comes from the controller manager.
    await eventually(
      () =>
        core.readNamespacedServiceAccount({
          namespace: NAMESPACE,
          name: 'default',
        }),
      { timeoutMs: 30_000 },
    );
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
  });

  async function createPod(): Promise<{ pod: V1Pod; ms: number }> {
    const started = Date.now();
    const pod = await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: `cache-${++pods}`, labels: { app: 'cache' } },
        spec: { containers: [{ name: 'valkey', image: 'valkey/valkey:8' }] },
      },
    });
    return { pod, ms: Date.now() - started };
  }

  it('applies the placement it is given to pods being created', async () => {
    const placement: JsonPatchOperation[] = [
      {
        op: 'add',
        path: '/spec/affinity',
        value: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    {
                      key: 'karpenter.sh/capacity-type',
                      operator: 'In',
                      values: ['spot'],
                    },
                  ],
                },
              ],
            },
          },
        },
      },
      {
        op: 'add',
        path: '/spec/tolerations/-',
        value: {
          key: 'karpenter.sh/capacity-type',
          operator: 'Equal',
          value: 'spot',
          effect: 'NoSchedule',
        },
      },
      {
        op: 'add',
        path: '/metadata/labels/ferry.dev~1placement',
        value: 'spot',
      },
    ];
    const seen: string[] = [];
    mutate = async (pod, admission) => {
      seen.push(
        `${admission.operation} ${admission.namespace} ${pod.metadata?.labels?.app}`,
      );
      return placement;
    };
    const { pod } = await createPod();
    expect(seen).toEqual(['CREATE shop cache']);
    expect(pod.metadata?.labels).toMatchObject({
      'ferry.dev/placement': 'spot',
    });
    expect(
      pod.spec?.affinity?.nodeAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
        .matchExpressions?.[0],
    ).toMatchObject({ key: 'karpenter.sh/capacity-type', values: ['spot'] });
    expect(pod.spec?.tolerations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          key: 'karpenter.sh/capacity-type',
          value: 'spot',
        }),
      ]),
    );
  });

  it('admits the pod unchanged when the placement fails', async () => {
    mutate = async () => {
      throw new Error('no plan for this workload');
    };
    const { pod } = await createPod();
    expect(pod.spec?.affinity).toBeUndefined();
    expect(reviews.at(-1)).toMatchObject({ failed: true, patched: false });
  });

  it('answers reviews in a few milliseconds', () => {
    const durations = reviews.map(r => r.durationMs);
    expect(durations.length).toBeGreaterThan(0);
    expect(Math.max(...durations)).toBeLessThan(50);
  });

  it('does not stop pods from being created while it is down', async () => {
    await server!.stop();
    const { pod, ms } = await createPod();
    expect(pod.metadata?.name).toBeDefined();
    expect(pod.spec?.affinity).toBeUndefined();
    // A refused connection fails at once; at worst the API server waits out the timeout.
    expect(ms).toBeLessThan(WEBHOOK_TIMEOUT_SECONDS * 1000 + 1000);
  });
});
