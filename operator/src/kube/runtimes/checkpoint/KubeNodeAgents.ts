import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { NodeAgentClient } from '../../../agent/NodeAgentClient';
import { apiRequest } from '../../client/apiRequest';
import type { NodeAgentFinder } from './KubeCheckpointDriver';
import { isReady } from '../../state/workloadViews';

/** Where the operator finds Ferry's node agents on a cluster, and how it talks to them. */
export interface KubeNodeAgentsOptions {
  kubeConfig: KubeConfig;
  /** The namespace of the agent DaemonSet (the chart's release namespace). */
  namespace: string;
  /** The agent pods' labels, e.g. `app.kubernetes.io/component=node-agent`. */
  labelSelector: string;
  port: number;
  /** The bearer token agents and the operator share (a Secret). */
  token: string;
  /** The CA that signed the agents' certificates; without it agents are reached over plain HTTP. */
  ca?: string | Buffer;
}

/**
 * Ferry's node agents as the agent DaemonSet runs them: the ready agent pod on
 * a node, reached on its IP (the node's: agents use the host network, where
 * CRIU's page server listens too).
 */
export class KubeNodeAgents implements NodeAgentFinder {
  constructor(private readonly options: KubeNodeAgentsOptions) {}

  async agentFor(node: string): Promise<NodeAgentClient> {
    const { kubeConfig, namespace, labelSelector, port, token, ca } =
      this.options;
    const pods = await apiRequest<{ items: V1Pod[] }>(
      kubeConfig,
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      { query: { labelSelector, fieldSelector: `spec.nodeName=${node}` } },
    );
    const agent = pods.items.find(
      p => !p.metadata?.deletionTimestamp && isReady(p) && p.status?.podIP,
    );
    if (!agent) {
      throw new Error(
        `no ready pod '${labelSelector}' in ${namespace} on ${node} (${pods.items.length} found); is the agent DaemonSet installed (the chart's agent.enabled) and does it tolerate the node's taints?`,
      );
    }
    const host = agent.status!.podIP!;
    const url = `${ca ? 'https' : 'http'}://${
      host.includes(':') ? `[${host}]` : host
    }:${port}`;
    return new NodeAgentClient(url, token, ca);
  }
}
