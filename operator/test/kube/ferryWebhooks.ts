import type { KubeConfig } from '@kubernetes/client-node';
import {
  EVICTIONS_PATH,
  MUTATE_PODS_PATH,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../../src/kube/client/apiRequest';

/**
 * How long the API server waits for a review. The chart's 2 s is for an API
 * server with cores to spare; a full test run on two cores has starved a
 * review past 2 s, and the member it should have pinned to its target was
 * created unpinned (failing open), so the test saw the scheduler's choice.
 */
const REVIEW_TIMEOUT_SECONDS = 10;

/**
 * Registers an operator's webhooks with the API server as the chart does, both
 * failing open: placement of pods being created, and review of evictions.
 */
export async function registerFerryWebhooks(
  kc: KubeConfig,
  webhookPort: number,
  caPem: string,
): Promise<void> {
  const clientConfig = (path: string) => ({
    url: `https://127.0.0.1:${webhookPort}${path}`,
    caBundle: Buffer.from(caPem).toString('base64'),
  });
  const admissionRegistration = '/apis/admissionregistration.k8s.io/v1';
  await apiRequest(
    kc,
    'POST',
    `${admissionRegistration}/mutatingwebhookconfigurations`,
    {
      body: {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'ferry' },
        webhooks: [
          {
            name: 'pods.placement.ferry.dev',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Ignore',
            timeoutSeconds: REVIEW_TIMEOUT_SECONDS,
            reinvocationPolicy: 'IfNeeded',
            clientConfig: clientConfig(MUTATE_PODS_PATH),
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
  await apiRequest(
    kc,
    'POST',
    `${admissionRegistration}/validatingwebhookconfigurations`,
    {
      body: {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        metadata: { name: 'ferry' },
        webhooks: [
          {
            name: 'evictions.ferry.dev',
            admissionReviewVersions: ['v1'],
            sideEffects: 'NoneOnDryRun',
            failurePolicy: 'Ignore',
            timeoutSeconds: REVIEW_TIMEOUT_SECONDS,
            clientConfig: clientConfig(EVICTIONS_PATH),
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
}
