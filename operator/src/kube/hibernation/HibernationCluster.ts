import type { KubeConfig, V1Pod, V1Service } from '@kubernetes/client-node';
import { apiRequest } from '../client/apiRequest';

/** A pod's or a Service's labels and annotations to merge; `null` removes a key. */
export interface MetadataChange {
  labels?: Record<string, string | null>;
  annotations?: Record<string, string | null>;
}

/** The owner of a pod that decides how many replicas it has (a ReplicaSet or a StatefulSet). */
export interface PodOwner {
  spec?: { replicas?: number };
  metadata?: { ownerReferences?: { kind: string; controller?: boolean }[] };
}

/**
 * What the hibernation controller reads and writes on the cluster: pods (always
 * as they are now, never from a cache: a scale-down saves the requests it reads
 * before changing them), the Services that select them, and their owners. The
 * Kubernetes implementation is {@link KubeHibernationCluster}.
 */
export interface HibernationCluster {
  listPods(): Promise<V1Pod[]>;
  getPod(namespace: string, name: string): Promise<V1Pod>;
  listServices(namespace: string): Promise<V1Service[]>;
  /** Merges labels and annotations into a pod. */
  patchPodMetadata(
    namespace: string,
    name: string,
    metadata: MetadataChange,
  ): Promise<void>;
  /** Sets containers' requests in place (the pod's `resize` subresource). */
  resizePod(
    namespace: string,
    name: string,
    requests: Record<string, Record<string, string>>,
  ): Promise<void>;
  /** Merges annotations and `publishNotReadyAddresses` into a Service. */
  patchService(
    namespace: string,
    name: string,
    change: {
      annotations: Record<string, string | null>;
      publishNotReadyAddresses: boolean;
    },
  ): Promise<void>;
  getOwner(
    namespace: string,
    kind: 'ReplicaSet' | 'StatefulSet',
    name: string,
  ): Promise<PodOwner>;
}

const OWNER_PLURALS = {
  ReplicaSet: 'replicasets',
  StatefulSet: 'statefulsets',
} as const;

function namespacePath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
}

function podPath(namespace: string, name: string): string {
  return `${namespacePath(namespace)}/pods/${encodeURIComponent(name)}`;
}

/** {@link HibernationCluster} through the API server. */
export class KubeHibernationCluster implements HibernationCluster {
  constructor(private readonly kubeConfig: KubeConfig) {}

  async listPods(): Promise<V1Pod[]> {
    const pods = await apiRequest<{ items: V1Pod[] }>(
      this.kubeConfig,
      'GET',
      '/api/v1/pods',
    );
    return pods.items;
  }

  getPod(namespace: string, name: string): Promise<V1Pod> {
    return apiRequest<V1Pod>(this.kubeConfig, 'GET', podPath(namespace, name));
  }

  async listServices(namespace: string): Promise<V1Service[]> {
    const services = await apiRequest<{ items: V1Service[] }>(
      this.kubeConfig,
      'GET',
      `${namespacePath(namespace)}/services`,
    );
    return services.items;
  }

  async patchPodMetadata(
    namespace: string,
    name: string,
    metadata: MetadataChange,
  ): Promise<void> {
    await apiRequest(this.kubeConfig, 'PATCH', podPath(namespace, name), {
      contentType: 'application/merge-patch+json',
      body: { metadata },
    });
  }

  async resizePod(
    namespace: string,
    name: string,
    requests: Record<string, Record<string, string>>,
  ): Promise<void> {
    await apiRequest(
      this.kubeConfig,
      'PATCH',
      `${podPath(namespace, name)}/resize`,
      {
        contentType: 'application/strategic-merge-patch+json',
        body: {
          spec: {
            containers: Object.entries(requests).map(([container, r]) => ({
              name: container,
              resources: { requests: r },
            })),
          },
        },
      },
    );
  }

  async patchService(
    namespace: string,
    name: string,
    change: {
      annotations: Record<string, string | null>;
      publishNotReadyAddresses: boolean;
    },
  ): Promise<void> {
    await apiRequest(
      this.kubeConfig,
      'PATCH',
      `${namespacePath(namespace)}/services/${encodeURIComponent(name)}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          metadata: { annotations: change.annotations },
          spec: { publishNotReadyAddresses: change.publishNotReadyAddresses },
        },
      },
    );
  }

  getOwner(
    namespace: string,
    kind: 'ReplicaSet' | 'StatefulSet',
    name: string,
  ): Promise<PodOwner> {
    return apiRequest<PodOwner>(
      this.kubeConfig,
      'GET',
      `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${
        OWNER_PLURALS[kind]
      }/${encodeURIComponent(name)}`,
    );
  }
}
