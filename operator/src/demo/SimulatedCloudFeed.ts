import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type {
  SimulatedCloudProvider,
  SimulatedNode,
} from '../cloud/SimulatedCloudProvider';
import { NODES, PODS } from '../kube/client/resources';
import type { SimulatedCluster } from './SimulatedCluster';

/**
 * The taint the AWS Node Termination Handler puts on a node with a spot
 * interruption warning (its `taintNode: true`); the operator's cluster state
 * reads a notice from it on a cluster, and so it does in demo mode.
 */
export const SPOT_NOTICE_TAINT = 'aws-node-termination-handler/spot-itn';

/** The Node object a simulated node shows in the cluster, as its kubelet would register it. */
export function nodeObjectOf(node: SimulatedNode, now: number): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.name, labels: { ...node.labels } },
    spec: {
      providerID: `simulated:///${node.zone}/${node.name}`,
      taints:
        node.terminatesAt === undefined
          ? undefined
          : [
              {
                key: SPOT_NOTICE_TAINT,
                value: node.name,
                effect: 'NoSchedule',
              },
            ],
    },
    status: {
      allocatable: {
        cpu: `${node.allocatable.cpuMillis}m`,
        memory: `${node.allocatable.memoryMiB}Mi`,
      },
      conditions: [
        { type: 'Ready', status: node.readyAt <= now ? 'True' : 'False' },
      ],
    },
  };
}

/**
 * Feeds the simulated cloud into the demo's cluster: its nodes appear as Node
 * objects, a termination notice becomes the taint NTH would set, and a
 * reclaimed node leaves the cluster with the pods that ran on it. The cloud
 * replays market time; the cluster and the operator run on the demo's clock,
 * `offsetMs` behind it.
 */
export class SimulatedCloudFeed {
  constructor(
    private readonly options: {
      cluster: SimulatedCluster;
      provider: SimulatedCloudProvider;
      /** Market time minus the demo clock's time. */
      offsetMs: number;
    },
  ) {}

  /** Shows a node of the cloud in the cluster (launched or adopted), as of `now` on the demo's clock. */
  show(node: SimulatedNode, now: number): void {
    this.options.cluster.put(
      NODES,
      nodeObjectOf(
        { ...node, readyAt: node.readyAt - this.options.offsetMs },
        now,
      ),
    );
  }

  /**
   * Applies what the cloud did between two times of the demo's clock; returns
   * the pods that lost their node (their workload's controller replaces them).
   */
  advance(from: number, to: number): V1Pod[] {
    const { cluster, provider, offsetMs } = this.options;
    const lost: V1Pod[] = [];
    for (const signal of provider.signalsBetween(
      from + offsetMs,
      to + offsetMs,
    )) {
      if (signal.kind === 'termination-notice') {
        const node = provider.node(signal.node);
        if (node) this.show(node, signal.at - offsetMs);
      } else if (signal.kind === 'terminated') {
        cluster.remove(NODES, signal.node);
        for (const pod of cluster.objects<V1Pod>(PODS)) {
          if (pod.spec?.nodeName !== signal.node) continue;
          cluster.remove(
            PODS,
            `${pod.metadata?.namespace}/${pod.metadata?.name}`,
          );
          lost.push(pod);
        }
      }
    }
    // Nodes launched earlier become Ready as time passes.
    for (const node of provider.listNodes()) {
      const readyAt = node.readyAt - offsetMs;
      if (readyAt > from && readyAt <= to) this.show(node, to);
    }
    return lost;
  }

  /** Sends a termination notice to one spot node now, as the cloud does before a reclaim. */
  notice(name: string, now: number): void {
    const { provider, offsetMs } = this.options;
    provider.noticeNode(name, now + offsetMs);
    this.show(provider.node(name)!, now);
  }
}
