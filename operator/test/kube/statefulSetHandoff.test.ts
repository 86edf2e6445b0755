/**
 * The StatefulSet half of the hand-off design (src/kube/README.md), on a real
 * controller manager and scheduler: a member's identity cannot exist twice, so the
 * StatefulSet recreates it, and the placement webhook makes the recreation land on
 * the migration's target node.
 */
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  AdmissionWebhookServer,
  JsonPatchOperation,
  MUTATE_PODS_PATH,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { createFakeNodes } from './fakeNodes';
import { LocalControlPlane } from './LocalControlPlane';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

describe('a StatefulSet member recreated where its migration goes', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let webhook: AdmissionWebhookServer;
  /** Pod name → target node, for the migrations under way. */
  const targets = new Map<string, string>();

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
        name: 'on-demand-b',
        capacityType: 'on-demand',
        instanceType: 'm5.large',
        zone: 'us-east-1b',
      },
    ]);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

    webhook = new AdmissionWebhookServer({
      tls: cluster.issueServingCertificate('webhook'),
      host: '127.0.0.1',
      mutatePod: async (pod, admission): Promise<JsonPatchOperation[]> => {
        const target = targets.get(
          `${admission.namespace}/${pod.metadata?.name}`,
        );
        if (!target) return [];
        // Ferry owns the capacity type of an opted-in workload's pods: the
        // template's spot selector gives way to the plan's target.
        const capacitySelector =
          pod.spec?.nodeSelector?.['karpenter.sh/capacity-type'];
        return [
          ...(capacitySelector
            ? [
                {
                  op: 'remove' as const,
                  path: '/spec/nodeSelector/karpenter.sh~1capacity-type',
                },
              ]
            : []),
          {
            op: 'add',
            path: '/spec/affinity',
            value: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchFields: [
                        {
                          key: 'metadata.name',
                          operator: 'In',
                          values: [target],
                        },
                      ],
                    },
                  ],
                },
              },
            },
          },
        ];
      },
    });
    const port = await webhook.start();
    await apiRequest(
      kc,
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
              timeoutSeconds: 2,
              clientConfig: {
                url: `https://127.0.0.1:${port}${MUTATE_PODS_PATH}`,
                caBundle: Buffer.from(cluster.caPem).toString('base64'),
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
  }, 180_000);

  afterAll(async () => {
    await webhook?.stop();
    await cluster?.stop();
  });

  async function podOn(
    name: string,
    notUid?: string,
  ): Promise<{ uid: string; node: string; owner?: string }> {
    const pod = await until(
      `${name} running`,
      async () => {
        const found = await core
          .readNamespacedPod({ namespace: NAMESPACE, name })
          .catch(() => undefined); // Not there yet.
        return found?.status?.phase === 'Running' &&
          found.metadata!.uid !== notUid &&
          !found.metadata?.deletionTimestamp
          ? found
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    return {
      uid: pod.metadata!.uid!,
      node: pod.spec!.nodeName!,
      owner: pod.metadata!.ownerReferences?.find(ref => ref.controller)?.kind,
    };
  }

  it('lands cache-1 on the target node when the StatefulSet recreates it', async () => {
    await cluster
      .kubeConfig()
      .makeApiClient(AppsV1Api)
      .createNamespacedStatefulSet({
        namespace: NAMESPACE,
        body: {
          metadata: { name: 'cache' },
          spec: {
            replicas: 3,
            serviceName: 'cache',
            podManagementPolicy: 'Parallel',
            selector: { matchLabels: { app: 'cache' } },
            template: {
              metadata: { labels: { app: 'cache' } },
              spec: {
                nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
                containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
              },
            },
          },
        },
      });
    const before = await podOn('cache-1');
    expect(before.node).toMatch(/^spot-/);

    // The migration of cache-1 to on-demand-b is under way; its old pod goes.
    targets.set(`${NAMESPACE}/cache-1`, 'on-demand-b');
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'cache-1' });

    const after = await podOn('cache-1', before.uid);
    expect(after).toMatchObject({ node: 'on-demand-b', owner: 'StatefulSet' });
  });
});
