import type { V1Pod, V1Service } from '@kubernetes/client-node';
import type { HibernationStatus } from '../../../agent/ContainerHibernation';
import type { NodeAgentClient } from '../../../agent/NodeAgentClient';
import type { NodeAgentFinder } from '../../runtimes/checkpoint/KubeCheckpointDriver';
import type {
  HibernationCluster,
  MetadataChange,
  PodOwner,
} from '../HibernationCluster';

/** A lone member, as the hibernation controller would let it sleep: one container, a port, the ferry runtime class. */
export function sleepablePod(
  name: string,
  options: { namespace?: string; annotations?: Record<string, string> } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: options.namespace ?? 'shop',
      uid: `uid-${name}`,
      annotations: options.annotations,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          name: 'cache',
          uid: 'uid-cache',
          controller: true,
        },
      ],
    },
    spec: {
      nodeName: 'node-a',
      runtimeClassName: 'ferry',
      containers: [
        {
          name: 'valkey',
          ports: [{ containerPort: 6379 }],
          resources: {
            requests: { cpu: '250m', memory: '128Mi' },
            limits: { cpu: '500m', memory: '256Mi' },
          },
        },
      ],
    },
    status: {
      phase: 'Running',
      qosClass: 'Burstable',
      containerStatuses: [
        {
          name: 'valkey',
          containerID: `containerd://c-${name}`,
          image: 'valkey',
          imageID: 'valkey',
          ready: true,
          restartCount: 0,
        },
      ],
    },
  };
}

/** Pods in memory, and a node agent that records what it is asked to watch. */
export class FakeHibernationCluster implements HibernationCluster {
  readonly pods = new Map<string, V1Pod>();
  /** What the agent was asked to watch, by hibernation id. */
  readonly watched = new Map<string, { idleMs: number; ports: number[] }>();
  /** The replicas of the pods' owner. */
  replicas = 1;

  readonly agents: NodeAgentFinder = {
    agentFor: async () =>
      ({
        watchForHibernation: async (
          id: string,
          request: { containerId: string; ports: number[]; idleMs: number },
        ): Promise<HibernationStatus> => {
          this.watched.set(id, {
            idleMs: request.idleMs,
            ports: request.ports,
          });
          return {
            id,
            phase: 'RUNNING',
            containerId: request.containerId,
            ports: request.ports,
            idleMs: request.idleMs,
            packets: 0,
            idleForMs: 0,
            hibernations: 0,
            restores: 0,
          };
        },
      } as unknown as NodeAgentClient),
  };

  put(pod: V1Pod): void {
    this.pods.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, pod);
  }

  async listPods(): Promise<V1Pod[]> {
    return [...this.pods.values()];
  }

  async getPod(namespace: string, name: string): Promise<V1Pod> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    return pod;
  }

  async listServices(): Promise<V1Service[]> {
    return [];
  }

  async patchPodMetadata(
    namespace: string,
    name: string,
    change: MetadataChange,
  ): Promise<void> {
    const pod = await this.getPod(namespace, name);
    const merge = (
      into: Record<string, string> | undefined,
      from: Record<string, string | null> | undefined,
    ) => {
      const result = { ...into };
      for (const [key, value] of Object.entries(from ?? {})) {
        if (value === null) delete result[key];
        else result[key] = value;
      }
      return result;
    };
    this.put({
      ...pod,
      metadata: {
        ...pod.metadata,
        labels: merge(pod.metadata?.labels, change.labels),
        annotations: merge(pod.metadata?.annotations, change.annotations),
      },
    });
  }

  async resizePod(): Promise<void> {}

  async patchService(): Promise<void> {}

  async getOwner(): Promise<PodOwner> {
    return { spec: { replicas: this.replicas } };
  }
}
