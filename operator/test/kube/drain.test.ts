/**
 * `kubectl drain` of a node with an opted-in member: its eviction is refused (429,
 * as a PodDisruptionBudget would) while the member migrates, so drain waits and
 * retries instead of killing it; other pods are evicted at once; the drain
 * finishes when the migration has removed the old member.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  AdmissionWebhookServer,
  EVICTIONS_PATH,
  EvictionAdmission,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { createFakeNodes } from './fakeNodes';
import { LocalControlPlane } from './LocalControlPlane';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

describe('kubectl drain of a node with an opted-in member', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let webhook: AdmissionWebhookServer;
  const refused: EvictionAdmission[] = [];
  const allowed: string[] = [];
  /** Members whose migration has started, and those whose migration is done, by `namespace/pod`. */
  const migrating = new Set<string>();
  const migrated = new Set<string>();

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
        name: 'on-demand-a',
        capacityType: 'on-demand',
        instanceType: 'm5.large',
        zone: 'us-east-1a',
      },
    ]);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

    webhook = new AdmissionWebhookServer({
      tls: cluster.issueServingCertificate('webhook'),
      host: '127.0.0.1',
      mutatePod: async () => [],
      reviewEviction: async eviction => {
        const key = `${eviction.namespace}/${eviction.pod}`;
        // Not opted in, or moved already: the eviction goes ahead (for a moved
        // member there is nothing left to evict).
        if (!eviction.pod.startsWith('cache-') || migrated.has(key)) {
          allowed.push(key);
          return { allowed: true };
        }
        refused.push(eviction);
        migrating.add(key);
        return {
          allowed: false,
          message: `ferry is migrating ${key} off its node`,
        };
      },
    });
    const port = await webhook.start();
    await apiRequest(
      kc,
      'POST',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      {
        body: {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingWebhookConfiguration',
          metadata: { name: 'ferry-evictions' },
          webhooks: [
            {
              name: 'evictions.ferry.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'NoneOnDryRun',
              failurePolicy: 'Ignore',
              timeoutSeconds: 2,
              clientConfig: {
                url: `https://127.0.0.1:${port}${EVICTIONS_PATH}`,
                caBundle: Buffer.from(cluster.caPem).toString('base64'),
              },
              rules: [
                {
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods/eviction'],
                  operations: ['CREATE'],
                },
              ],
            },
          ],
        },
      },
    );
    for (const name of ['cache-0', 'batch-job']) {
      await core.createNamespacedPod({
        namespace: NAMESPACE,
        body: {
          metadata: { name, labels: { app: name } },
          spec: {
            nodeName: 'spot-a',
            containers: [{ name: 'main', image: 'valkey/valkey:8' }],
          },
        },
      });
    }
  }, 180_000);

  afterAll(async () => {
    await webhook?.stop();
    await cluster?.stop();
  });

  it('waits for the migration instead of killing the member', async () => {
    const drain = promisify(execFile)(
      path.join(cluster.binDir, 'kubectl'),
      ['drain', 'spot-a', '--force', '--ignore-daemonsets', '--timeout=90s'],
      { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } },
    );

    // The migration: once it has started, the member moves and its old pod goes.
    await until(
      'the eviction to reach the webhook',
      () => migrating.has(`${NAMESPACE}/cache-0`),
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    const pod = await core.readNamespacedPod({
      namespace: NAMESPACE,
      name: 'cache-0',
    });
    expect(pod.metadata?.deletionTimestamp).toBeUndefined();
    expect(allowed).toEqual([`${NAMESPACE}/batch-job`]);
    allowed.length = 0;
    await new Promise(resolve => setTimeout(resolve, 1_000));
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'cache-0' });
    migrated.add(`${NAMESPACE}/cache-0`);

    const { stdout, stderr } = await drain;
    expect(stdout).toContain('node/spot-a drained');
    expect(stderr).toContain(
      `ferry is migrating ${NAMESPACE}/cache-0 off its node`,
    );
    expect(refused.length).toBeGreaterThanOrEqual(1);
    const left = await core.listNamespacedPod({ namespace: NAMESPACE });
    expect(left.items).toHaveLength(0);
  }, 120_000);
});
