import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NodeAgentClient } from '../../src/agent/NodeAgentClient';
import type { NodeAgentFinder } from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { criuCommand } from '../../src/migration/__testUtils__/agents';
import { nodeBinDir } from './nodeBinaries';
import type { RealNodeCluster } from './RealNodeCluster';

const REPO_ROOT = path.resolve(__dirname, '../../..');
/** The port agents listen on, on their node's address. */
const AGENT_PORT = 7444;
const AGENT_START_TIMEOUT_MS = 120_000;

/**
 * Ferry's node agent on real nodes, one per node, as the agent DaemonSet runs it:
 * in the node's network and mount namespaces, with the node's runc, its runc root
 * and the tmpfs it shares with the runtime wrapper. The test reaches them through
 * the cluster's proxy; agents reach each other directly.
 */
export class RealNodeAgents implements NodeAgentFinder {
  readonly token = randomBytes(16).toString('hex');
  private readonly clients = new Map<string, NodeAgentClient>();

  constructor(private readonly cluster: RealNodeCluster) {}

  /** Starts an agent on each named node and waits until each listens. */
  async start(nodes: string[]): Promise<void> {
    await Promise.all(nodes.map(name => this.startOne(name)));
  }

  async agentFor(node: string): Promise<NodeAgentClient> {
    const client = this.clients.get(node);
    if (!client) throw new Error(`no agent on ${node}`);
    return client;
  }

  /** Each node's agent address, for a process of its own that reaches the agents (the operator). */
  urls(): Record<string, string> {
    return Object.fromEntries(
      [...this.clients].map(([node, client]) => [node, client.url]),
    );
  }

  /** Kills the agent on a node at once (SIGKILL), as an agent crash would; its runc and CRIU children run on. */
  kill(name: string): void {
    const imagesDir = this.cluster.node(name).imagesDir;
    for (const pid of fs.readdirSync('/proc').filter(p => /^\d+$/.test(p))) {
      let cmdline = '';
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue; // Exited meanwhile.
      }
      if (cmdline.includes('agent/main.ts') && cmdline.includes(imagesDir)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
  }

  /** Starts the agent on a node again, as its DaemonSet would after a crash. */
  restart(name: string): Promise<void> {
    return this.startOne(name);
  }

  private async startOne(name: string): Promise<void> {
    const node = this.cluster.node(name);
    await this.cluster.startOnNode(
      name,
      'ferry-agent',
      [
        path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
        path.join(REPO_ROOT, 'operator/src/agent/main.ts'),
        '--node',
        name,
        '--host',
        node.ip,
        '--port',
        String(AGENT_PORT),
        '--images-dir',
        node.imagesDir,
        '--runc-root',
        node.runcRoot,
        '--criu-config',
        path.join(node.dir, 'criu.conf'),
      ],
      {
        FERRY_AGENT_TOKEN: this.token,
        FERRY_CRIU: criuCommand(),
        FERRY_RUNC: path.join(nodeBinDir(), 'runc'),
      },
      `ferry-agent listening on ${AGENT_PORT}`,
      AGENT_START_TIMEOUT_MS,
    );
    this.clients.set(
      name,
      new NodeAgentClient(
        `http://${node.ip}:${AGENT_PORT}`,
        this.token,
        undefined,
        undefined,
        (host, port) => this.cluster.connect(host, port),
      ),
    );
  }
}
