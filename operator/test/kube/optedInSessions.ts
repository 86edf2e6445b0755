import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { SPOT_POLICIES } from '../../src/kube/client/resources';

/**
 * The workload most operator suites act on: `sessions`, a three-member Valkey
 * Deployment on spot nodes spread over zones, opted in by a SpotPolicy of the
 * same name with `spec` added to its workload reference. `valkeyPort`, when
 * given, is declared as the container's `valkey` port.
 */
export async function createOptedInSessions(
  kc: KubeConfig,
  namespace: string,
  spec: Record<string, unknown> = {},
  valkeyPort?: number,
): Promise<void> {
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'sessions' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'sessions' } },
        template: {
          metadata: { labels: { app: 'sessions' } },
          spec: {
            nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'topology.kubernetes.io/zone',
                whenUnsatisfiable: 'DoNotSchedule',
                labelSelector: { matchLabels: { app: 'sessions' } },
              },
            ],
            containers: [
              {
                name: 'valkey',
                image: 'valkey/valkey:8',
                resources: { requests: { cpu: '500m', memory: '1Gi' } },
                ports: valkeyPort
                  ? [{ name: 'valkey', containerPort: valkeyPort }]
                  : undefined,
              },
            ],
          },
        },
      },
    },
  });
  await apiRequest(kc, 'POST', collectionPath(SPOT_POLICIES, namespace), {
    body: {
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: { name: 'sessions' },
      spec: { workloadRef: { kind: 'Deployment', name: 'sessions' }, ...spec },
    },
  });
}
