/**
 * The reschedule driver's `PodEvictor` on a cluster: evictions through the
 * Eviction API (policy/v1), so PodDisruptionBudgets hold, and the workload's
 * own controller brings the replacement up where Ferry's placement puts it.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type {
  EvictionResult,
  PodEvictor,
} from '../../../migration/reschedule/RescheduleDriver';
import { apiRequest, isNotFound, KubeApiError } from '../../client/apiRequest';
import { isReady, membersOf, WorkloadObject } from '../../state/workloadViews';

/** Evicts pods and finds their replacements through the API server. */
export class KubePodEvictor implements PodEvictor {
  constructor(private readonly kubeConfig: KubeConfig) {}

  /**
   * 429 is the Eviction API's "not now": a budget allows no disruption, or an
   * admission webhook (Ferry's own, or another tool's) asks to wait. The
   * driver waits and asks again rather than deleting around it.
   */
  async evict(namespace: string, pod: string): Promise<EvictionResult> {
    try {
      await apiRequest(
        this.kubeConfig,
        'POST',
        `/api/v1/namespaces/${encodeURIComponent(
          namespace,
        )}/pods/${encodeURIComponent(pod)}/eviction`,
        {
          body: {
            apiVersion: 'policy/v1',
            kind: 'Eviction',
            metadata: { name: pod, namespace },
          },
        },
      );
      return 'evicted';
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 429) return 'blocked';
      if (isNotFound(error)) return 'gone';
      throw error;
    }
  }

  /**
   * A replacement is ready when the workload is whole again away from the node
   * being left: at least its desired replicas are ready members on other nodes.
   * Counting, rather than looking for any ready member elsewhere, keeps the
   * members that were already running from passing for the replacement; the
   * newest of them is named. The evicted pod's name may come back (a
   * StatefulSet recreates `cache-1`): on another node it is the replacement.
   */
  async readyReplacement(
    namespace: string,
    workload: string,
    avoidNode: string,
  ): Promise<string | undefined> {
    const found = await this.workload(namespace, workload);
    const replicas = found.object.spec?.replicas ?? 1;
    // The selector's labels narrow the list; membersOf checks the whole selector and ownership.
    const labelSelector = Object.entries(
      found.object.spec?.selector?.matchLabels ?? {},
    )
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    const pods = await apiRequest<{ items: V1Pod[] }>(
      this.kubeConfig,
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      { query: { labelSelector: labelSelector || undefined } },
    );
    const ready = membersOf(found.object, pods.items, found.replicaSetOwners)
      .filter(pod => pod.spec?.nodeName && pod.spec.nodeName !== avoidNode)
      .filter(isReady);
    if (ready.length < replicas) return undefined;
    const newest = ready.reduce((a, b) =>
      String(a.metadata?.creationTimestamp) >=
      String(b.metadata?.creationTimestamp)
        ? a
        : b,
    );
    return newest.metadata?.name;
  }

  /** The Deployment or StatefulSet named `name` (a Migration names its workload without a kind). */
  private async workload(
    namespace: string,
    name: string,
  ): Promise<{
    object: WorkloadObject;
    replicaSetOwners: Map<string, string>;
  }> {
    const apps = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}`;
    const deployment = await apiRequest<WorkloadObject>(
      this.kubeConfig,
      'GET',
      `${apps}/deployments/${encodeURIComponent(name)}`,
    ).catch(notFoundAsUndefined);
    if (deployment) {
      const replicaSets = await apiRequest<{
        items: {
          metadata?: {
            uid?: string;
            ownerReferences?: { uid: string; controller?: boolean }[];
          };
        }[];
      }>(this.kubeConfig, 'GET', `${apps}/replicasets`);
      const owners = new Map<string, string>();
      for (const rs of replicaSets.items) {
        const owner = rs.metadata?.ownerReferences?.find(ref => ref.controller);
        if (rs.metadata?.uid && owner) owners.set(rs.metadata.uid, owner.uid);
      }
      return {
        object: { ...deployment, kind: 'Deployment' },
        replicaSetOwners: owners,
      };
    }
    const statefulSet = await apiRequest<WorkloadObject>(
      this.kubeConfig,
      'GET',
      `${apps}/statefulsets/${encodeURIComponent(name)}`,
    ).catch(notFoundAsUndefined);
    if (statefulSet) {
      return {
        object: { ...statefulSet, kind: 'StatefulSet' },
        replicaSetOwners: new Map(),
      };
    }
    throw new Error(
      `no Deployment or StatefulSet ${namespace}/${name}: the workload whose member was evicted is gone, so no replacement will come`,
    );
  }
}

function notFoundAsUndefined(error: unknown): undefined {
  if (isNotFound(error)) return undefined;
  throw error;
}
