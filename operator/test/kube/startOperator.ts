import { CoreV1Api } from '@kubernetes/client-node';
import { KubeOperator, KubeOperatorOptions } from '../../src/kube/KubeOperator';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { registerFerryWebhooks } from './ferryWebhooks';
import { LocalControlPlane } from './LocalControlPlane';

/** The namespace of the operator's Lease in these suites. */
export const OPERATOR_NAMESPACE = 'ferry-system';

/** A running operator and the warnings it logged. */
export interface StartedOperator {
  operator: KubeOperator;
  warnings: string[];
}

/**
 * Starts an operator on a suite's cluster the way the suites need it: one
 * replica leading through a Lease in OPERATOR_NAMESPACE, no drivers and no
 * pools, metrics without process metrics, warnings collected; with
 * `webhooks`, serving the placement and eviction webhooks registered with
 * the API server as the chart registers them. `overrides` replaces any part.
 */
export async function startOperator(
  cluster: LocalControlPlane,
  overrides: Partial<KubeOperatorOptions> = {},
  { webhooks = false }: { webhooks?: boolean } = {},
): Promise<StartedOperator> {
  const kubeConfig = cluster.kubeConfig();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  // A second operator of the suite finds it there.
  const namespaces = await core.listNamespace();
  if (!namespaces.items.some(n => n.metadata?.name === OPERATOR_NAMESPACE)) {
    await core.createNamespace({
      body: { metadata: { name: OPERATOR_NAMESPACE } },
    });
  }
  const warnings: string[] = [];
  const operator = new KubeOperator({
    kubeConfig,
    identity: 'operator-0',
    lease: { namespace: OPERATOR_NAMESPACE, name: 'ferry-leader' },
    drivers: [],
    pools: async () => [],
    metrics: new OperatorMetrics({ processMetrics: false }),
    webhook: webhooks
      ? {
          tls: cluster.issueServingCertificate('webhook'),
          host: '127.0.0.1',
          port: 0,
        }
      : undefined,
    log: { info: () => {}, warn: message => warnings.push(message) },
    ...overrides,
  });
  await operator.start();
  if (webhooks) {
    await registerFerryWebhooks(
      kubeConfig,
      operator.webhookPort!,
      cluster.caPem,
    );
  }
  return { operator, warnings };
}
