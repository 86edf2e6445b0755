/**
 * What the checkpoint suites on real nodes share: a cluster whose nodes name Ferry's
 * runtime wrapper as the handler `ferry` (and have the RuntimeClass), a node agent on
 * every node, one-member Valkey Deployments pinned to a node, and the reads a test
 * makes of a member (valkey-cli through kubectl exec, runc's view of its container).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { systemClock } from '../../src/core/clock';
import {
  CheckpointRoute,
  KubeCheckpointDriver,
} from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { criuCommand } from '../../src/migration/__testUtils__/agents';
import {
  MigrationStore,
  InMemoryMigrationStore,
} from '../../src/migration/MigrationStore';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';
import { nodeBinDir } from './nodeBinaries';
import { RealNodeAgents } from './nodeAgents';
import { RealNodeCluster, RealNodeSpec } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

const REPO_ROOT = path.resolve(__dirname, '../../..');
/** The namespace the suites' members live in. */
export const NAMESPACE = 'default';
/** How long a test waits for something the cluster does by itself, on a loaded two-core machine. */
export const SETTLE_TIMEOUT_MS = 240_000;
/** The line operatorProcess.ts prints once it leads. */
export const LEADING_LINE = 'leading';
/** How often a test looks for a restore to begin (it acts the moment it does). */
const RESTORE_POLL_MS = 5;

/** Ferry's runtime wrapper, built (once, cached) by scripts/lib/runtime.sh. */
export function ferryRuntime(): string {
  return execFileSync(
    'bash',
    ['-c', 'source scripts/lib/runtime.sh && ferry_runtime'],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  ).trim();
}

/** A member as the test sees it: its pod, node and uid. */
export interface MemberPod {
  name: string;
  node: string;
  uid: string;
}

/**
 * Real nodes ready for checkpoint moves: the wrapper as each node's `ferry`
 * handler, the RuntimeClass, and an agent on every node.
 */
export class CheckpointNodes {
  private constructor(
    readonly cluster: RealNodeCluster,
    readonly agents: RealNodeAgents,
  ) {}

  static async start(
    options: { nodes?: RealNodeSpec[] } = {},
  ): Promise<CheckpointNodes> {
    const images = nodeTestImages();
    const cluster = await RealNodeCluster.start({
      nodes: options.nodes,
      images: [images.pause.tar, images.valkey.tar],
      sandboxImage: images.pause.name,
      controlPlane: { kwok: false },
      ferryRuntime: ferryRuntime(),
      criu: criuCommand(),
    });
    try {
      cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'node.k8s.io/v1',
          kind: 'RuntimeClass',
          metadata: { name: 'ferry' },
          handler: 'ferry',
        }),
      );
      const agents = new RealNodeAgents(cluster);
      await agents.start(cluster.nodes.map(n => n.name));
      return new CheckpointNodes(cluster, agents);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.cluster.stop();
  }

  /** A state machine with the checkpoint driver taking `route`, over `store` (in memory unless given). */
  machine(
    store: MigrationStore = new InMemoryMigrationStore(),
    route?: CheckpointRoute,
  ) {
    const driver = new KubeCheckpointDriver({
      kubeConfig: this.cluster.controlPlane.kubeConfig(),
      agents: this.agents,
      clock: systemClock,
      route,
    });
    return {
      store,
      sm: new MigrationStateMachine({
        store,
        drivers: [driver],
        clock: systemClock,
      }),
    };
  }

  /** Creates a one-member Deployment on `node`, waits until it serves, and fills it with `keys` values of `valueBytes`. */
  async memberWithData(
    app: string,
    node: string,
    keys: number,
    valueBytes = 100,
  ): Promise<MemberPod> {
    this.cluster.kubectl(
      ['apply', '-f', '-'],
      valkeyDeployment(app, node, nodeTestImages().valkey.name),
    );
    try {
      this.cluster.kubectl([
        'rollout',
        'status',
        `deployment/${app}`,
        '-n',
        NAMESPACE,
        '--timeout=180s',
      ]);
    } catch (error) {
      throw new Error(
        `${error}\n${this.cluster.kubectl([
          'describe',
          'pods',
          '-n',
          NAMESPACE,
          '-l',
          `app=${app}`,
        ])}\n${this.cluster.logTail(
          `${node}/containerd`,
          40,
        )}\n${this.cluster.logTail(`${node}/kubelet`, 20)}`,
      );
    }
    const [pod] = this.podsOf(app);
    if (pod?.node !== node) {
      throw new Error(`${app}'s member is on ${pod?.node}, not on ${node}`);
    }
    const populated = this.cli(pod.name, [
      'debug',
      'populate',
      String(keys),
      'key',
      String(valueBytes),
    ]);
    if (populated !== 'OK') {
      throw new Error(`DEBUG POPULATE on ${pod.name} answered ${populated}`);
    }
    this.cli(pod.name, ['set', 'written-before-the-move', 'yes']);
    return pod;
  }

  /** The members of `app` that are not being deleted. */
  podsOf(app: string): MemberPod[] {
    const out = this.cluster.kubectl([
      'get',
      'pods',
      '-n',
      NAMESPACE,
      '-l',
      `app=${app}`,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.uid} {.metadata.deletionTimestamp}{"\\n"}{end}',
    ]);
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(line => line.split(' '))
      .filter(parts => !parts[3])
      .map(([name, node, uid]) => ({ name, node, uid }));
  }

  /** valkey-cli inside a member's container. */
  cli(pod: string, args: string[]): string {
    return this.cluster
      .kubectl([
        'exec',
        '-n',
        NAMESPACE,
        pod,
        '-c',
        'valkey',
        '--',
        'valkey-cli',
        ...args,
      ])
      .trim();
  }

  /** The member's process as Valkey reports it: its run id and uptime. */
  info(pod: string): { runId: string; uptime: number } {
    const text = this.cli(pod, ['info', 'server']);
    return {
      runId: /run_id:(\w+)/.exec(text)![1],
      uptime: Number(/uptime_in_seconds:(\d+)/.exec(text)![1]),
    };
  }

  /** The id containerd gave the member's Valkey container. */
  containerId(pod: string): string {
    return this.cluster
      .kubectl([
        'get',
        'pod',
        '-n',
        NAMESPACE,
        pod,
        '-o',
        'jsonpath={.status.containerStatuses[0].containerID}',
      ])
      .replace(/^\w+:\/\//, '');
  }

  /** What runc on `node` says of a container: running, paused, stopped, or gone. */
  runcState(node: string, containerId: string): string {
    try {
      return JSON.parse(
        execFileSync(
          path.join(nodeBinDir(), 'runc'),
          ['--root', this.cluster.node(node).runcRoot, 'state', containerId],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
        ),
      ).status as string;
    } catch {
      return 'gone';
    }
  }

  /**
   * The checkpoint images left on a node's tmpfs (none may outlive a move), as
   * the node sees it: the host's directory beneath that mount is always empty.
   */
  imagesLeft(node: string): string[] {
    return fs
      .readdirSync(this.imagesPath(node))
      .filter(f => !f.startsWith('.'));
  }

  /** A path under the node's checkpoint images tmpfs, as the node (not the host) sees it. */
  imagesPath(node: string, ...parts: string[]): string {
    return this.cluster.nodePath(
      node,
      path.join(this.cluster.node(node).imagesDir, ...parts),
    );
  }

  /**
   * Resolves, with the file, once Ferry's runtime wrapper on `node` has claimed
   * `imageId`: it writes that claim just before it runs `runc restore`, and
   * rewrites it when the restore ends. Looks every few milliseconds, so that the
   * caller acts while the restore runs; throws when `moveEnded` says there will be none.
   */
  async restoreBegins(
    node: string,
    imageId: string,
    moveEnded: () => boolean,
  ): Promise<string> {
    const record = path.join(
      this.cluster.node(node).dir,
      'ferry-runtime/images',
      imageId,
    );
    const until = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      // The wrapper creates the file, then writes its claim: an empty file is
      // a restore not begun yet.
      if (fs.existsSync(record) && fs.statSync(record).size > 0) return record;
      if (moveEnded() || Date.now() > until) {
        throw new Error(
          `no restore of ${imageId} began on ${node}${
            moveEnded() ? ' before the move ended' : ''
          }\n${this.nodeLogs(node)}`,
        );
      }
      await new Promise(resolve => setTimeout(resolve, RESTORE_POLL_MS));
    }
  }

  /** The last lines of a node's agent, containerd and kubelet logs, for a failure's message. */
  nodeLogs(node: string, lines = 60): string {
    return ['ferry-agent', 'containerd', 'kubelet']
      .map(c => `${node}/${c}:\n${this.cluster.logTail(`${node}/${c}`, lines)}`)
      .join('\n');
  }
}

/** Polls `probe` every `intervalMs` until it gives a value; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = SETTLE_TIMEOUT_MS,
  intervalMs = 500,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, intervalMs));
  }
}

/**
 * The pod template of a one-member Valkey workload on `node` (by node affinity,
 * which a move replaces), restored through Ferry's runtime class.
 */
export function valkeyPodTemplate(name: string, node: string, image: string) {
  return {
    metadata: { labels: { app: name } },
    spec: {
      runtimeClassName: 'ferry',
      terminationGracePeriodSeconds: 1,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchFields: [
                  { key: 'metadata.name', operator: 'In', values: [node] },
                ],
              },
            ],
          },
        },
      },
      containers: [
        {
          name: 'valkey',
          image,
          imagePullPolicy: 'Never',
          command: ['valkey-server'],
          args: [
            '--protected-mode',
            'no',
            '--save',
            '',
            '--appendonly',
            'no',
            '--enable-debug-command',
            'yes',
          ],
          ports: [{ name: 'valkey', containerPort: 6379 }],
          readinessProbe: { tcpSocket: { port: 6379 }, periodSeconds: 1 },
        },
      ],
    },
  };
}

/** A one-member Valkey Deployment on `node` (by node affinity, which a hand-off replaces). */
export function valkeyDeployment(
  name: string,
  node: string,
  image: string,
): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: valkeyPodTemplate(name, node, image),
    },
  });
}
