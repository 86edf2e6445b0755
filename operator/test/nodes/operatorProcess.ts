/**
 * Ferry's operator as a process of its own, for the real-node suites that kill it:
 * KubeOperator, as main.ts wires it on a cluster, with the checkpoint and valkey drivers and the
 * node agents of RealNodeAgents (reached through the cluster's egress proxy, as the
 * machine has no route to the nodes). It runs for leader on a Lease, as the chart's
 * replicas do, so a successor takes over once the lease of a killed one runs out.
 *
 *   node --import tsx operatorProcess.ts '<OperatorProcessSpec as JSON>'
 *
 * It prints `leading` once it leads; its log goes to stdout.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { NodeAgentClient } from '../../src/agent/NodeAgentClient';
import { systemClock } from '../../src/core/clock';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { KubeCheckpointDriver } from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { KubeValkeyDriver } from '../../src/kube/runtimes/valkey/KubeValkeyDriver';
import { connectThroughProxy } from './RealNodeCluster';
import { LEADING_LINE } from './checkpointNodes';

/** What the process is told on its command line. */
export interface OperatorProcessSpec {
  kubeconfig: string;
  identity: string;
  /** The Lease's namespace (it must exist). */
  leaseNamespace: string;
  /** The agents' shared bearer token. */
  token: string;
  /** Each node's agent URL. */
  agents: Record<string, string>;
  /** The hub's CONNECT proxy (RealNodeCluster.egressSocket). */
  egressSocket: string;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as OperatorProcessSpec;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(spec.kubeconfig);
  const log = (level: string) => (message: string) =>
    process.stdout.write(
      `${new Date().toISOString()} ${level} ${spec.identity}: ${message}\n`,
    );
  const agents = {
    async agentFor(node: string): Promise<NodeAgentClient> {
      const url = spec.agents[node];
      if (!url) throw new Error(`no agent on ${node}`);
      return new NodeAgentClient(
        url,
        spec.token,
        undefined,
        undefined,
        (h, p) => connectThroughProxy(spec.egressSocket, h, p),
      );
    },
  };
  const operator = new KubeOperator({
    kubeConfig,
    identity: spec.identity,
    lease: { namespace: spec.leaseNamespace, name: 'ferry-leader' },
    drivers: [
      new KubeCheckpointDriver({ kubeConfig, agents, clock: systemClock }),
      // It dials the members at their pod addresses: only a process in the
      // cluster's network (the hub's namespace) reaches them.
      new KubeValkeyDriver({ kubeConfig, clock: systemClock }),
    ],
    pools: async () => [],
    metrics: new OperatorMetrics({ processMetrics: false }),
    log: {
      info: message => {
        log('info')(message);
        if (message === `${spec.identity} leads`) {
          process.stdout.write(`${LEADING_LINE}\n`);
        }
      },
      warn: log('warn'),
    },
  });
  await operator.start();
  await operator.done;
  process.exit(0);
}

main().catch(error => {
  process.stderr.write(`operator: ${error.stack ?? error}\n`);
  process.exit(1);
});
