/**
 * The checkpoint method on real nodes: a Deployment's Valkey member moves from one
 * kubelet + containerd node to another with its memory. The source node's agent
 * pauses and checkpoints the container with runc and CRIU, the pages stream to the
 * target's agent, and the replacement pod (runtime class `ferry`) is restored by
 * Ferry's runtime wrapper instead of started: the same process (run_id), every
 * key, uptime continuing. A crash of the restored container afterwards restarts it
 * fresh, never from the checkpoint again. A move that fails before the switch
 * leaves the source serving where it was paused.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { systemClock } from '../../src/core/clock';
import { KubeCheckpointDriver } from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { criuCommand } from '../../src/migration/__testUtils__/agents';
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';
import { nodeBinDir } from './nodeBinaries';
import { RealNodeAgents } from './nodeAgents';
import { RealNodeCluster } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

jest.setTimeout(900_000);

const REPO_ROOT = path.resolve(__dirname, '../../..');
const NAMESPACE = 'default';
/** Keys the member holds before the move (DEBUG POPULATE, 100-byte values). */
const KEYS = 100_000;
const images = nodeTestImages();
let cluster: RealNodeCluster;
let agents: RealNodeAgents;

/** Ferry's runtime wrapper, built (once, cached) by scripts/lib/runtime.sh. */
function ferryRuntime(): string {
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

beforeAll(async () => {
  cluster = await RealNodeCluster.start({
    images: [images.pause.tar, images.valkey.tar],
    sandboxImage: images.pause.name,
    controlPlane: { kwok: false },
    ferryRuntime: ferryRuntime(),
    criu: criuCommand(),
  });
  cluster.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'node.k8s.io/v1',
      kind: 'RuntimeClass',
      metadata: { name: 'ferry' },
      handler: 'ferry',
    }),
  );
  agents = new RealNodeAgents(cluster);
  await agents.start(cluster.nodes.map(n => n.name));
});

afterAll(async () => {
  await cluster?.stop();
});

/** A one-member Valkey Deployment on `node` (by node affinity, which a hand-off replaces). */
function deployment(name: string, node: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
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
              image: images.valkey.name,
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
      },
    },
  });
}

function podsOf(app: string): { name: string; node: string; uid: string }[] {
  const out = cluster.kubectl([
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

function cli(pod: string, args: string[]): string {
  return cluster
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

function info(pod: string): { runId: string; uptime: number } {
  const text = cli(pod, ['info', 'server']);
  return {
    runId: /run_id:(\w+)/.exec(text)![1],
    uptime: Number(/uptime_in_seconds:(\d+)/.exec(text)![1]),
  };
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 240_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}

/** A member of `app` with data, Ready on `node`. */
async function memberWithData(app: string, node: string) {
  cluster.kubectl(['apply', '-f', '-'], deployment(app, node));
  try {
    cluster.kubectl([
      'rollout',
      'status',
      `deployment/${app}`,
      '-n',
      NAMESPACE,
      '--timeout=90s',
    ]);
  } catch (error) {
    throw new Error(
      `${error}\n${cluster.kubectl([
        'describe',
        'pods',
        '-n',
        NAMESPACE,
        '-l',
        `app=${app}`,
      ])}\n${cluster.logTail(`${node}/containerd`, 40)}\n${cluster.logTail(
        `${node}/kubelet`,
        20,
      )}`,
    );
  }
  const [pod] = podsOf(app);
  expect(pod.node).toBe(node);
  expect(cli(pod.name, ['debug', 'populate', String(KEYS), 'key', '100'])).toBe(
    'OK',
  );
  cli(pod.name, ['set', 'written-before-the-move', 'yes']);
  return pod;
}

function machine() {
  const store = new InMemoryMigrationStore();
  const driver = new KubeCheckpointDriver({
    kubeConfig: cluster.controlPlane.kubeConfig(),
    agents,
    clock: systemClock,
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

describe('checkpoint moves between real nodes', () => {
  it('moves a Deployment member with its memory: the same process continues on the target, restored once', async () => {
    const source = await memberWithData('cache', 'spot-a');
    const before = info(source.name);
    const digest = cli(source.name, ['debug', 'digest']);

    const { sm } = machine();
    const planned = await sm.plan(NAMESPACE, 'cache-ckpt', {
      workloadRef: { kind: 'Deployment', name: 'cache' },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const done = await sm.run(NAMESPACE, planned.metadata.name);
    if (done.status?.phase !== 'Succeeded') {
      console.log(
        ['spot-b/ferry-agent', 'spot-b/containerd', 'spot-b/kubelet']
          .map(n => `${n}:\n${cluster.logTail(n, 60)}`)
          .join('\n'),
      );
    }
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    const state = done.status?.driverState ?? {};
    // The figures of this move, for whoever reads the test's output.
    console.log(
      `checkpoint move of ${KEYS} keys: freeze ${done.status?.writePauseMs} ms (dump ${state.dumpMs} ms, stream ${state.streamMs} ms), ${done.status?.bytesMoved} bytes`,
    );
    expect(done.status?.bytesMoved).toBeGreaterThan(KEYS * 100);
    expect(done.status?.writePauseMs).toBeGreaterThan(0);

    // The ReplicaSet adopted the restored member and removed the old one.
    const moved = await waitFor('one member, on spot-b', () => {
      const pods = podsOf('cache');
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    const owner = cluster.kubectl([
      'get',
      'pod',
      moved.name,
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}',
    ]);
    expect(owner).toBe('ReplicaSet');
    const after = info(moved.name);
    expect(after.runId).toBe(before.runId);
    expect(after.uptime).toBeGreaterThanOrEqual(before.uptime);
    expect(cli(moved.name, ['debug', 'digest'])).toBe(digest);
    expect(cli(moved.name, ['get', 'written-before-the-move'])).toBe('yes');
    // Checkpoint images hold the process's memory: none is left on either node.
    for (const node of ['spot-a', 'spot-b']) {
      const left = fs
        .readdirSync(cluster.node(node).imagesDir)
        .filter(f => !f.startsWith('.'));
      expect(left).toEqual([]);
    }

    // Restored once: a crash restarts the container fresh, never from the checkpoint.
    cli(moved.name, ['set', 'written-after-the-move', 'yes']);
    expect(() => cli(moved.name, ['debug', 'segfault'])).toThrow();
    await waitFor('the restarted container', () => {
      const restarts = cluster.kubectl([
        'get',
        'pod',
        moved.name,
        '-o',
        'jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}',
      ]);
      return restarts === '1 true' ? true : undefined;
    });
    const restarted = info(moved.name);
    expect(restarted.runId).not.toBe(before.runId);
    expect(cli(moved.name, ['dbsize'])).toBe('0');
  });

  it('survives the source agent killed mid-dump: the member serves every key from the same process, nothing left paused', async () => {
    const source = await memberWithData('cache-agent-crash', 'spot-a');
    const before = info(source.name);
    const digest = cli(source.name, ['debug', 'digest']);
    const containerId = cluster
      .kubectl([
        'get',
        'pod',
        source.name,
        '-o',
        'jsonpath={.status.containerStatuses[0].containerID}',
      ])
      .replace(/^\w+:\/\//, '');
    const runcState = () => {
      try {
        return JSON.parse(
          execFileSync(
            path.join(nodeBinDir(), 'runc'),
            ['--root', cluster.node('spot-a').runcRoot, 'state', containerId],
            {
              encoding: 'utf8',
            },
          ),
        ).status as string;
      } catch {
        return 'gone';
      }
    };

    const { sm } = machine();
    const planned = await sm.plan(NAMESPACE, 'cache-agent-crash-ckpt', {
      workloadRef: { kind: 'Deployment', name: 'cache-agent-crash' },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const running = sm.run(NAMESPACE, planned.metadata.name);
    // The agent dies as soon as it has paused the container for its dump.
    await waitFor(
      'the source paused for the dump',
      () => (runcState() === 'paused' ? true : undefined),
      120_000,
    );
    agents.kill('spot-a');
    await agents.restart('spot-a');
    const done = await running;
    console.log(
      `after the source agent's crash: ${done.status?.phase}: ${
        done.status?.message ?? ''
      }`,
    );
    expect(done.status?.phase).toMatch(/^(Succeeded|RolledBack)$/);

    const serving = await waitFor('one member serving', () => {
      const pods = podsOf('cache-agent-crash');
      return pods.length === 1 ? pods[0] : undefined;
    });
    expect(info(serving.name).runId).toBe(before.runId);
    expect(cli(serving.name, ['debug', 'digest'])).toBe(digest);
    // Moved: the paused source was retired; rolled back: it runs on.
    expect(runcState()).toBe(serving.node === 'spot-a' ? 'running' : 'gone');
  });
});
