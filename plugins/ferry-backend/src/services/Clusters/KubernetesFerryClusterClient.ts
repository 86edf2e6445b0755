import { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, InputError } from '@backstage/errors';
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
} from '@ferry/plugin-ferry-node';
import * as k8s from '@kubernetes/client-node';
import { STATUS_CODES } from 'node:http';
import { KubernetesClusterConfig } from '../../config';

const SPOT_POLICIES = 'spotpolicies';
const MIGRATIONS = 'migrations';
/** The field manager Ferry's portal writes SpotPolicies as. */
const FIELD_MANAGER = 'ferry-backend';
/**
 * How long the portal waits for one answer of a cluster before it calls the
 * cluster unavailable (503). client-node has no timeout of its own: a cluster
 * that accepts connections and never answers would hold the request forever.
 */
export const CLUSTER_REQUEST_TIMEOUT_MS = 15_000;

/**
 * A cluster reached through its Kubernetes API with the Kubernetes plugin's
 * configuration (a service account token per cluster).
 */
export class KubernetesFerryClusterClient implements FerryClusterClient {
  private readonly apps: k8s.AppsV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly clusterName: string;

  private readonly requestTimeoutMs: number;

  constructor(
    cluster: KubernetesClusterConfig,
    private readonly logger: LoggerService,
    options: { requestTimeoutMs?: number } = {},
  ) {
    this.clusterName = cluster.name;
    this.requestTimeoutMs =
      options.requestTimeoutMs ?? CLUSTER_REQUEST_TIMEOUT_MS;
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
    // makeApiClient's configuration, with a deadline on every request.
    const configuration = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(cluster.url, {}),
      authMethods: { default: kubeConfig },
      promiseMiddleware: [
        {
          pre: async context => {
            context.setSignal(AbortSignal.timeout(this.requestTimeoutMs));
            return context;
          },
          post: async context => context,
        },
      ],
    });
    this.apps = new k8s.AppsV1Api(configuration);
    this.custom = new k8s.CustomObjectsApi(configuration);
  }

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    const labelSelector = Object.entries(query.labelSelector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const [statefulSets, deployments] = await this.answerOf(
      `the workloads labelled ${labelSelector}`,
      () =>
        Promise.all([
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
        ]),
    );
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
    const list = await this.answerOf('the SpotPolicies', () =>
      namespace
        ? this.custom.listNamespacedCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace,
            plural: SPOT_POLICIES,
          })
        : this.custom.listClusterCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            plural: SPOT_POLICIES,
          }),
    );
    return (list as { items: SpotPolicy[] }).items;
  }

  async getSpotPolicy(
    namespace: string,
    name: string,
  ): Promise<SpotPolicy | undefined> {
    return this.answerOf(`SpotPolicy ${namespace}/${name}`, async () => {
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
    });
  }

  async applySpotPolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
    options?: { basedOn: SpotPolicy | undefined },
  ): Promise<SpotPolicy> {
    // Without the caller's read, the guard covers only the time since this read.
    const existing = options
      ? options.basedOn
      : await this.getSpotPolicy(namespace, name);
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
    const what = `SpotPolicy ${namespace}/${name}`;
    const written = await this.answerOf(what, () =>
      existing
        ? this.custom.replaceNamespacedCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace,
            plural: SPOT_POLICIES,
            name,
            body,
            fieldManager: FIELD_MANAGER,
          })
        : this.custom.createNamespacedCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace,
            plural: SPOT_POLICIES,
            body,
            fieldManager: FIELD_MANAGER,
          }),
    );
    this.logger.debug(`Applied SpotPolicy ${namespace}/${name}`);
    return written as SpotPolicy;
  }

  async listMigrations(query: MigrationQuery = {}): Promise<Migration[]> {
    const list = await this.answerOf('the Migrations', () =>
      query.namespace
        ? this.custom.listNamespacedCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace: query.namespace,
            plural: MIGRATIONS,
          })
        : this.custom.listClusterCustomObject({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            plural: MIGRATIONS,
          }),
    );
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

  /**
   * Runs a call to the API server, turning its refusals into the errors the portal
   * answers with. client-node's ApiException puts the whole HTTP exchange (escaped
   * JSON, headers) in its message; the person needs the API server's own sentence.
   * Connection failures and 5xx answers stay as they are: ClusterRegistry makes them 503.
   */
  private async answerOf<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if ((error as Error)?.name === 'AbortError') {
        // ClusterRegistry answers 503 to this name.
        const timeout = new Error(
          `no answer to ${what} within ${this.requestTimeoutMs} ms`,
        );
        timeout.name = 'ClusterUnavailableError';
        throw timeout;
      }
      if (!(error instanceof k8s.ApiException) || error.code >= 500) {
        throw error;
      }
      // client-node drops the body of some answers (401): the status text stands in.
      const reason =
        statusMessage(error.body) ??
        STATUS_CODES[error.code] ??
        `HTTP ${error.code}`;
      const where = `cluster ${this.clusterName}`;
      switch (error.code) {
        case 400:
        case 422:
          throw new InputError(`The ${where} refused ${what}: ${reason}`);
        case 409:
          throw new ConflictError(
            `${what} changed in the ${where} while Ferry was writing it (${reason}); try again`,
          );
        case 401:
          throw new Error(
            `The ${where} did not accept Ferry's service account token (serviceAccountToken in kubernetes.clusterLocatorMethods) for ${what}: ${reason}`,
          );
        case 404:
          // Objects that may be absent are handled by their callers; this is a
          // missing resource type.
          throw new Error(
            `The ${where} does not serve ${what}: ${reason}; are Ferry's CRDs installed there?`,
          );
        default:
          throw new Error(
            `The ${where} answered ${error.code} to ${what}: ${reason}`,
          );
      }
    }
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    // Pools are the operator's in-memory picture of the market; a cluster does
    // not publish them as objects, so the portal shows none for real clusters.
    return [];
  }
}

/** The `message` of a Kubernetes `Status` body, which client-node leaves as text. */
function statusMessage(body: unknown): string | undefined {
  try {
    const status = typeof body === 'string' ? JSON.parse(body) : body;
    return typeof status?.message === 'string' ? status.message : undefined;
  } catch {
    return typeof body === 'string' && body ? body : undefined;
  }
}
