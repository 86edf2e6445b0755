import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type {
  FerryClusterClient,
  MigrationQuery,
  SpotPoolSummary,
} from '../api/FerryClusterClient';
import {
  FERRY_API_VERSION,
  Migration,
  SpotPolicy,
  SpotPolicySpec,
  WorkloadKind,
  WorkloadSummary,
} from '../api/v1alpha1';
import type { SimulatedCloudProvider } from '../cloud/SimulatedCloudProvider';
import { capacityTypeFromLabels, NODE_LABELS } from '../cloud/nodeLabels';
import { poolIdOf } from '../core/model';
import {
  DEPLOYMENTS,
  MIGRATIONS,
  NODES,
  PODS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../kube/client/resources';
import type { WorkloadObject } from '../kube/state/workloadViews';
import type { SimulatedCluster } from './SimulatedCluster';

/** The label the demo's workloads give their pods: the workload's name. */
export const WORKLOAD_LABEL = 'app';

/** A write the caller based on a SpotPolicy that has changed since; Backstage answers it 409 by its name. */
class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

function isReady(pod: V1Pod): boolean {
  return (
    pod.status?.conditions?.some(
      c => c.type === 'Ready' && c.status === 'True',
    ) ?? false
  );
}

/**
 * The portal's view of the demo's cluster: it reads the same objects the
 * operator's controllers read and write (workloads, SpotPolicies, Migrations)
 * and writes a SpotPolicy as the portal's REST does on a cluster; what
 * follows from it is the controllers' doing.
 */
export class SimulatedClusterClient implements FerryClusterClient {
  constructor(
    private readonly options: {
      cluster: SimulatedCluster;
      provider: SimulatedCloudProvider;
      /** The market's time now (the demo clock's plus its offset). */
      marketNow: () => number;
      /** Interruption risk of a spot pool by its id, as the operator ranks it. */
      riskOf: (poolId: string) => number;
    },
  ) {}

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    const { cluster } = this.options;
    const pods = cluster.objects<V1Pod>(PODS);
    const summaries: WorkloadSummary[] = [];
    for (const [kind, type] of [
      ['Deployment', DEPLOYMENTS],
      ['StatefulSet', STATEFUL_SETS],
    ] as const) {
      for (const workload of cluster.objects<WorkloadObject>(type)) {
        const namespace = workload.metadata?.namespace ?? '';
        const labels =
          (workload.metadata as { labels?: Record<string, string> })?.labels ??
          {};
        if (query.namespace && namespace !== query.namespace) continue;
        if (
          !Object.entries(query.labelSelector).every(
            ([k, v]) => labels[k] === v,
          )
        ) {
          continue;
        }
        const selector = workload.spec?.selector?.matchLabels ?? {};
        const members = pods.filter(
          pod =>
            pod.metadata?.namespace === namespace &&
            Object.entries(selector).every(
              ([k, v]) => pod.metadata?.labels?.[k] === v,
            ),
        );
        summaries.push({
          kind: kind as WorkloadKind,
          namespace,
          name: workload.metadata?.name ?? '',
          labels: { ...labels },
          replicas: workload.spec?.replicas ?? members.length,
          readyReplicas: members.filter(
            pod => pod.spec?.nodeName && isReady(pod),
          ).length,
        });
      }
    }
    return summaries;
  }

  async listSpotPolicies(namespace?: string): Promise<SpotPolicy[]> {
    return this.options.cluster
      .objects<SpotPolicy>(SPOT_POLICIES)
      .filter(p => !namespace || p.metadata.namespace === namespace)
      .map(p => structuredClone(p));
  }

  async getSpotPolicy(
    namespace: string,
    name: string,
  ): Promise<SpotPolicy | undefined> {
    const policy = this.options.cluster.object<SpotPolicy>(
      SPOT_POLICIES,
      `${namespace}/${name}`,
    );
    return policy && structuredClone(policy);
  }

  async applySpotPolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
    options?: { basedOn: SpotPolicy | undefined },
  ): Promise<SpotPolicy> {
    const { cluster } = this.options;
    const { kind, name: workloadName } = spec.workloadRef;
    const workloads = kind === 'Deployment' ? DEPLOYMENTS : STATEFUL_SETS;
    if (!cluster.object(workloads, `${namespace}/${workloadName}`)) {
      throw new Error(`No ${kind} ${workloadName} in namespace ${namespace}`);
    }
    const existing = cluster.object<SpotPolicy>(
      SPOT_POLICIES,
      `${namespace}/${name}`,
    );
    if (
      options &&
      existing?.metadata.resourceVersion !==
        options.basedOn?.metadata.resourceVersion
    ) {
      throw new ConflictError(
        `SpotPolicy ${namespace}/${name} changed since it was read; read it again`,
      );
    }
    const written = existing
      ? cluster.replaceSpotPolicy(existing, spec, annotations)
      : cluster.put<SpotPolicy>(SPOT_POLICIES, {
          apiVersion: FERRY_API_VERSION,
          kind: 'SpotPolicy',
          metadata: { name, namespace, generation: 1, annotations },
          spec: structuredClone(spec),
        });
    return structuredClone(written);
  }

  async listMigrations(query: MigrationQuery = {}): Promise<Migration[]> {
    return this.options.cluster
      .objects<Migration>(MIGRATIONS)
      .filter(m => !query.namespace || m.metadata.namespace === query.namespace)
      .filter(
        m =>
          !query.workloadName || m.spec.workloadRef.name === query.workloadName,
      )
      .filter(
        m =>
          !query.since || (m.metadata.creationTimestamp ?? '') >= query.since,
      )
      .map(m => structuredClone(m));
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    const { cluster, provider } = this.options;
    const managed = new Set(
      cluster
        .objects<SpotPolicy>(SPOT_POLICIES)
        .filter(p => p.spec.enabled)
        .map(p => `${p.metadata.namespace}/${p.spec.workloadRef.name}`),
    );
    const nodes = new Map(
      cluster.objects<V1Node>(NODES).map(n => [n.metadata?.name ?? '', n]),
    );
    const replicas = new Map<string, number>();
    for (const pod of cluster.objects<V1Pod>(PODS)) {
      const owner = pod.metadata?.labels?.[WORKLOAD_LABEL];
      if (!owner || !managed.has(`${pod.metadata?.namespace}/${owner}`))
        continue;
      const labels =
        nodes.get(pod.spec?.nodeName ?? '')?.metadata?.labels ?? {};
      if (capacityTypeFromLabels(labels) !== 'spot') continue;
      const id = poolIdOf({
        instanceType: labels[NODE_LABELS.instanceType] ?? '',
        zone: labels[NODE_LABELS.zone] ?? '',
      });
      replicas.set(id, (replicas.get(id) ?? 0) + 1);
    }
    return provider.spotPoolsAt(this.options.marketNow()).map(p => ({
      provider: 'simulated' as const,
      region: p.region,
      zone: p.zone,
      instanceType: p.instanceType,
      spotPriceUsdPerHour: p.spotPriceUsdPerHour,
      onDemandPriceUsdPerHour: p.onDemandPriceUsdPerHour,
      interruptionRisk: this.options.riskOf(poolIdOf(p)),
      replicas: replicas.get(poolIdOf(p)) ?? 0,
    }));
  }
}
