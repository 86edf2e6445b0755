import type { KubeConfig } from '@kubernetes/client-node';
import {
  EVICTIONS_PATH,
  MUTATE_PODS_PATH,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../../src/kube/client/apiRequest';

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
            timeoutSeconds: 2,
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
            timeoutSeconds: 2,
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
