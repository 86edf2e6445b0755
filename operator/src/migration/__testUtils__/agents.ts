/* Ferry node agents running inside testbed hosts, and the checkpoint driver's view of the testbed. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NodeAgentClient } from '../../agent/NodeAgentClient';
import type { CheckpointWorkloadRuntime, NodeAgentDirectory } from '../checkpoint/CheckpointDriver';
import type { Testbed } from './Testbed';
import type { TestMember } from './valkeyMembers';

const REPO_ROOT = resolve(__dirname, '../../../..');
/** The port agents listen on inside their host. */
export const AGENT_PORT = 7444;
const AGENT_START_TIMEOUT_MS = 30_000;

/**
 * The CRIU command line: `$FERRY_CRIU` as scripts/ferry exports it, or the same
 * function run here (offline once cached). Throws, failing the test, when CRIU
 * cannot be had.
 */
export function criuCommand(): string {
  if (process.env.FERRY_CRIU) return process.env.FERRY_CRIU;
  try {
    return execFileSync(
      'bash',
      ['-c', 'source scripts/lib/system.sh 2>/dev/null; source scripts/lib/criu.sh && ferry_criu >&2 && printf %s "$FERRY_CRIU"'],
      { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    ).trim();
  } catch (error) {
    throw new Error(`CRIU 4.2.1 is not available (scripts/lib/criu.sh ferry_criu failed): ${error}`);
  }
}

/** Agents on testbed hosts, reachable from the operator over the hosts' links. */
export class TestbedAgents implements NodeAgentDirectory {
  readonly token = randomBytes(16).toString('hex');
  private readonly clients = new Map<string, NodeAgentClient>();
  private readonly dirs: string[] = [];

  constructor(private readonly bed: Testbed) {}

  /** Starts an agent in `hostName` and waits until it listens. */
  async start(hostName: string): Promise<NodeAgentClient> {
    const imagesDir = `/dev/shm/${this.bed.prefix}-${hostName}`;
    this.dirs.push(imagesDir);
    const child = this.bed.spawnService(
      hostName,
      join(REPO_ROOT, 'node_modules/.bin/tsx'),
      [join(REPO_ROOT, 'operator/src/agent/main.ts'), '--node', hostName, '--port', String(AGENT_PORT), '--images-dir', imagesDir],
      { FERRY_AGENT_TOKEN: this.token, FERRY_CRIU: criuCommand() },
    );
    await new Promise<void>((resolvePromise, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`agent on ${hostName} did not start: ${output}`)), AGENT_START_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk;
        if (output.includes('listening')) {
          clearTimeout(timer);
          resolvePromise();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', code => {
        clearTimeout(timer);
        reject(new Error(`agent on ${hostName} exited (${code}): ${output}`));
      });
    });
    const client = new NodeAgentClient(`http://${this.bed.host(hostName).address}:${AGENT_PORT}`, this.token);
    this.clients.set(hostName, client);
    return client;
  }

  agentFor(node: string): NodeAgentClient {
    const client = this.clients.get(node);
    if (!client) throw new Error(`no agent on ${node}`);
    return client;
  }

  /** Removes the agents' image directories (the processes go with the testbed). */
  cleanUp(): void {
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** The container runtime and CNI of the testbed: members by name, addresses by route. */
export class TestbedCheckpointRuntime implements CheckpointWorkloadRuntime {
  readonly pods = new Map<string, { member: TestMember; address: string }>();

  constructor(private readonly bed: Testbed) {}

  async resolveProcess(pod: string) {
    const found = this.pods.get(pod);
    if (!found) throw new Error(`no pod ${pod}`);
    return { pid: found.member.pid, address: found.address };
  }

  attachAddress(address: string, node: string): Promise<void> {
    return this.bed.attachAddress(address, node);
  }

  routeAddress(address: string, node: string): Promise<void> {
    return this.bed.placeAddress(address, node);
  }
}
