import { LoggerService } from '@backstage/backend-plugin-api';
import {
  FERRY_API_VERSION,
  FERRY_GROUP,
  FERRY_VERSION,
  FerryClusterClient,
  Migration,
  MigrationQuery,
  SpotPolicy,
  SpotPolicySpec,
  SpotPoolSummary,
  WorkloadSummary,
} from '@ferry/operator';
import * as k8s from '@kubernetes/client-node';
import { KubernetesClusterConfig } from '../../config';

const SPOT_POLICIES = 'spotpolicies';
const MIGRATIONS = 'migrations';
/** The field manager Ferry's portal writes SpotPolicies as. */
const FIELD_MANAGER = 'ferry-backend';

/**
 * A cluster reached through its Kubernetes API with the Kubernetes plugin's
 * configuration (a service account token per cluster).
 */
export class KubernetesFerryClusterClient implements FerryClusterClient {
  private readonly apps: k8s.AppsV1Api;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(
    cluster: KubernetesClusterConfig,
    private readonly logger: LoggerService,
  ) {
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromClusterAndUser(
      {
        name: cluster.name,
        server: cluster.url,
        skipTLSVerify: cluster.skipTLSVerify,
        caData: cluster.caData,
        caFile: cluster.caFile,
      },
      { name: 'ferry', token: cluster.serviceAccountToken },
    );
    this.apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
    this.custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
  }

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    const labelSelector = Object.entries(query.labelSelector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const [statefulSets, deployments] = await Promise.all([
      query.namespace
        ? this.apps.listNamespacedStatefulSet({
            namespace: query.namespace,
            labelSelector,
          })
        : this.apps.listStatefulSetForAllNamespaces({ labelSelector }),
      query.namespace
        ? this.apps.listNamespacedDeployment({
            namespace: query.namespace,
            labelSelector,
          })
        : this.apps.listDeploymentForAllNamespaces({ labelSelector }),
    ]);
    const summarise = (
      kind: 'StatefulSet' | 'Deployment',
      item: k8s.V1StatefulSet | k8s.V1Deployment,
    ): WorkloadSummary => ({
      kind,
      namespace: item.metadata?.namespace ?? '',
      name: item.metadata?.name ?? '',
      labels: item.metadata?.labels ?? {},
      replicas: item.spec?.replicas ?? 1,
      readyReplicas: item.status?.readyReplicas ?? 0,
    });
    return [
      ...statefulSets.items.map(i => summarise('StatefulSet', i)),
      ...deployments.items.map(i => summarise('Deployment', i)),
    ];
  }

  async listSpotPolicies(namespace?: string): Promise<SpotPolicy[]> {
    const list = namespace
      ? await this.custom.listNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace,
          plural: SPOT_POLICIES,
        })
      : await this.custom.listClusterCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          plural: SPOT_POLICIES,
        });
    return (list as { items: SpotPolicy[] }).items;
  }

  async getSpotPolicy(
    namespace: string,
    name: string,
  ): Promise<SpotPolicy | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: FERRY_GROUP,
        version: FERRY_VERSION,
        namespace,
        plural: SPOT_POLICIES,
        name,
      })) as SpotPolicy;
    } catch (error) {
      if ((error as k8s.ApiException<unknown>).code === 404) return undefined;
      throw error;
    }
  }

  async applySpotPolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
  ): Promise<SpotPolicy> {
    const existing = await this.getSpotPolicy(namespace, name);
    const body: SpotPolicy = {
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: {
        ...existing?.metadata,
        name,
        namespace,
        annotations: { ...existing?.metadata.annotations, ...annotations },
      },
      spec,
    };
    // The status is the operator's: replace carries the resourceVersion, so a
    // concurrent writer makes this fail with 409 instead of being overwritten.
    const written = existing
      ? await this.custom.replaceNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace,
          plural: SPOT_POLICIES,
          name,
          body,
          fieldManager: FIELD_MANAGER,
        })
      : await this.custom.createNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace,
          plural: SPOT_POLICIES,
          body,
          fieldManager: FIELD_MANAGER,
        });
    this.logger.debug(`Applied SpotPolicy ${namespace}/${name}`);
    return written as SpotPolicy;
  }

  async listMigrations(query: MigrationQuery = {}): Promise<Migration[]> {
    const list = query.namespace
      ? await this.custom.listNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace: query.namespace,
          plural: MIGRATIONS,
        })
      : await this.custom.listClusterCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          plural: MIGRATIONS,
        });
    return (list as { items: Migration[] }).items
      .filter(
        m =>
          !query.workloadName || m.spec.workloadRef.name === query.workloadName,
      )
      .filter(
        m =>
          !query.since || (m.metadata.creationTimestamp ?? '') >= query.since,
      );
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    // Pools are the operator's in-memory picture of the market; a cluster does
    // not publish them as objects, so the portal shows none for real clusters.
    return [];
  }
}
