/**
 * kwok plays the kubelet of the fake nodes but runs no process; this plays the
 * part of the container runtime for Valkey pods: for every running pod of one
 * namespace with a `valkey` container port, a redis-server listening on the
 * pod's IP and that port, stopped when the pod is deleted. The container's
 * `args` go to redis-server as an image's entrypoint would pass them
 * (`--requirepass`, `--masterauth`). Servers belong to a pod's incarnation (its
 * uid), so a StatefulSet's recreated `cache-1` gets a server of its own.
 *
 * Pod IPs come from the node's `spec.podCIDR` (kwok assigns from it); a loopback
 * CIDR (`loopbackPodCidrs`) gives every pod an address the machine already
 * routes to itself, so no address or route is added anywhere.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { Reflector } from '../../src/kube/informers/Reflector';
import { PODS } from '../../src/kube/client/resources';
import { redisServerPath } from '../../src/migration/__testUtils__/valkeyMembers';

/**
 * One loopback /24 per node, under a second octet drawn per run so that two
 * suites on one machine do not meet; a node's pods get addresses in its /24.
 */
export async function loopbackPodCidrs(
  kc: KubeConfig,
  nodes: string[],
): Promise<void> {
  const second = 100 + Math.floor(Math.random() * 150);
  await Promise.all(
    nodes.map((node, index) =>
      apiRequest(kc, 'PATCH', `/api/v1/nodes/${node}`, {
        contentType: 'application/merge-patch+json',
        body: { spec: { podCIDR: `127.${second}.${index + 1}.0/24` } },
      }),
    ),
  );
}

interface RunningServer {
  pod: string;
  child: ChildProcess;
  dir: string;
  exited: Promise<void>;
}

/** redis-server processes for the running Valkey pods of a namespace. */
export class ProcessKubelet {
  private readonly servers = new Map<string, RunningServer>();
  private readonly pods: Reflector<V1Pod>;
  /** What each server printed, by pod, for a failing test's message. */
  readonly output = new Map<string, string>();
  /** Pods whose server is never started, as if their container could not run. */
  withhold: (pod: V1Pod) => boolean = () => false;

  constructor(kc: KubeConfig, namespace: string) {
    this.pods = new Reflector<V1Pod>({
      kubeConfig: kc,
      type: PODS,
      namespace,
      onChange: () => this.reconcile(),
    });
  }

  async start(): Promise<void> {
    await this.pods.start();
    this.reconcile();
  }

  /** Stops watching and every server. */
  async stop(): Promise<void> {
    this.pods.stop();
    await Promise.all([...this.servers.keys()].map(key => this.kill(key)));
  }

  /** Pods whose server runs now. */
  get running(): string[] {
    return [...this.servers.values()].map(server => server.pod);
  }

  private reconcile(): void {
    const live = new Set<string>();
    for (const pod of this.pods.list()) {
      const name = pod.metadata!.name!;
      const uid = pod.metadata!.uid!;
      const container = pod.spec?.containers.find(c =>
        (c.ports ?? []).some(p => p.name === 'valkey'),
      );
      const port = container?.ports?.find(
        p => p.name === 'valkey',
      )?.containerPort;
      const ip = pod.status?.podIP;
      if (
        !port ||
        !ip ||
        pod.status?.phase !== 'Running' ||
        pod.metadata?.deletionTimestamp ||
        this.withhold(pod)
      ) {
        continue;
      }
      live.add(uid);
      if (!this.servers.has(uid)) {
        this.run(uid, name, ip, port, container?.args ?? []);
      }
    }
    for (const uid of this.servers.keys()) {
      if (!live.has(uid)) void this.kill(uid);
    }
  }

  private run(
    uid: string,
    name: string,
    ip: string,
    port: number,
    args: string[],
  ): void {
    const dir = mkdtempSync(join(tmpdir(), `ferry-kubelet-${name}-`));
    // As a member's configuration would say (operator/docs/migration.md): the
    // initial sync starts at once and streams into the empty replica.
    const child = spawn(
      redisServerPath(),
      [
        '--bind', ip,
        '--port', String(port),
        '--protected-mode', 'no',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--repl-diskless-sync', 'yes',
        '--repl-diskless-sync-delay', '0',
        ...args,
      ], // prettier-ignore
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const append = (chunk: Buffer) =>
      this.output.set(name, (this.output.get(name) ?? '') + chunk.toString());
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    const exited = new Promise<void>(resolve =>
      child.once('exit', () => resolve()),
    );
    this.servers.set(uid, { pod: name, child, dir, exited });
  }

  private async kill(uid: string): Promise<void> {
    const server = this.servers.get(uid);
    if (!server) return;
    this.servers.delete(uid);
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(server.dir, { recursive: true, force: true });
  }
}
