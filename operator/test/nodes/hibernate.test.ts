/**
 * Hibernation on real nodes, as the post's walkthrough shows it with a 10 s
 * idle period: a lone Valkey opted in by `ferry.dev/hibernate-after`, keys
 * written from a client pod on another node, then silence. The node agent sees
 * no packet on port 6379 for 10 s and checkpoints the container in place; the
 * pod stays on its node with zero requests and the label SCALED_DOWN. A GET
 * from the client then wakes it: the client's first command succeeds (its SYN
 * is held, never reset) and finds every key, from the same process.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { criuCommand } from '../../src/migration/__testUtils__/agents';
import { systemClock } from '../../src/core/clock';
import { HibernationController } from '../../src/kube/hibernation/HibernationController';
import { KubeHibernationCluster } from '../../src/kube/hibernation/HibernationCluster';
import { KubeCheckpointDriver } from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { RealNodeAgents } from './nodeAgents';
import { RealNodeCluster } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

jest.setTimeout(900_000);

const REPO_ROOT = path.resolve(__dirname, '../../..');
const NAMESPACE = 'default';
/** The post's demo tuning. */
const HIBERNATE_AFTER = '10s';
/** Generous: the machine runs at load 10-30 beside other suites. */
const PHASE_TIMEOUT_MS = 240_000;
const POLL_MS = 500;
const images = nodeTestImages();
let cluster: RealNodeCluster;
let agents: RealNodeAgents;
let controller: HibernationController;
const stopController = new AbortController();
let controllerRun: Promise<void>;

/** Ferry's runtime wrapper, built (once, cached) by scripts/lib/runtime.sh. */
function ferryRuntime(): string {
  return execFileSync(
    'bash',
    ['-c', 'source scripts/lib/runtime.sh && ferry_runtime'],
    { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  ).trim();
}

beforeAll(async () => {
  cluster = await RealNodeCluster.start({
    images: [images.pause.tar, images.valkey.tar],
    sandboxImage: images.pause.name,
    controlPlane: { kwok: false },
    ferryRuntime: ferryRuntime(),
    criu: criuCommand(),
    // A woken container is the kubelet's second restart of it in a short time.
    maxContainerRestartPeriodSeconds: 1,
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
  controller = new HibernationController({
    cluster: new KubeHibernationCluster(cluster.controlPlane.kubeConfig()),
    agents,
    // eslint-disable-next-line no-console
    log: message => console.log(message),
  });
  controllerRun = controller.run(stopController.signal);
});

afterAll(async () => {
  stopController.abort();
  await controllerRun;
  await cluster?.stop();
});

/** The post's Deployment, opted in with one annotation, and without persistence. */
function valkeyDeployment(name: string, replicas = 1, probed = false): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NAMESPACE, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: {
          labels: { app: name },
          annotations: { 'ferry.dev/hibernate-after': HIBERNATE_AFTER },
        },
        spec: {
          runtimeClassName: 'ferry',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'valkey',
              image: images.valkey.name,
              imagePullPolicy: 'Never',
              args: ['valkey-server', '--save', '', '--appendonly', 'no'],
              ports: [{ containerPort: 6379 }],
              ...(probed
                ? {
                    readinessProbe: {
                      tcpSocket: { port: 6379 },
                      periodSeconds: 1,
                    },
                  }
                : {}),
              resources: {
                requests: { memory: '128Mi', cpu: '250m' },
                limits: { memory: '256Mi', cpu: '500m' },
              },
            },
          ],
        },
      },
    },
  });
}

/** The post's client: a pod of the Valkey image on another node than the store. */
function clientPod(name: string, awayFrom: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      terminationGracePeriodSeconds: 1,
      affinity: {
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            {
              labelSelector: { matchLabels: { app: awayFrom } },
              topologyKey: 'kubernetes.io/hostname',
            },
          ],
        },
      },
      containers: [
        {
          name: 'client',
          image: images.valkey.name,
          imagePullPolicy: 'Never',
          command: ['sleep', 'infinity'],
        },
      ],
    },
  });
}

interface PodView {
  name: string;
  node: string;
  label: string;
  cpu: string;
  memory: string;
  refused: string;
  /** The requests the kubelet reports it applied (the container status's). */
  applied: string;
}

/** The uid of a pod in the test's namespace (the agent names a hibernation after it). */
function podUid(name: string): string {
  return cluster.kubectl([
    'get',
    'pod',
    name,
    '-n',
    NAMESPACE,
    '-o',
    'jsonpath={.metadata.uid}',
  ]);
}

function podOf(app: string): PodView | undefined {
  const out = cluster.kubectl([
    'get',
    'pods',
    '-n',
    NAMESPACE,
    '-l',
    `app=${app}`,
    '-o',
    'json',
  ]);
  const pods = (JSON.parse(out).items as any[]).filter(
    p => !p.metadata.deletionTimestamp,
  );
  if (pods.length !== 1) return undefined;
  const [pod] = pods;
  const requests = pod.spec.containers[0].resources?.requests ?? {};
  return {
    name: pod.metadata.name,
    node: pod.spec.nodeName ?? '',
    label: pod.metadata.labels?.['ferry.dev/hibernation'] ?? '',
    cpu: requests.cpu ?? '',
    memory: requests.memory ?? '',
    refused: pod.metadata.annotations?.['ferry.dev/hibernation-refused'] ?? '',
    applied: JSON.stringify(
      pod.status?.containerStatuses?.[0]?.resources?.requests ?? {},
    ),
  };
}

function agentLogs(): string {
  return cluster.nodes
    .map(
      n =>
        `${n.name}/ferry-agent:\n${cluster.logTail(
          `${n.name}/ferry-agent`,
          20,
        )}`,
    )
    .join('\n');
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = PHASE_TIMEOUT_MS,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let found: T | undefined;
    try {
      found = probe();
    } catch {
      // kubectl starved by the load: ask again.
    }
    if (found !== undefined) return found;
    if (Date.now() > until) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; logs:\n${agentLogs()}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
}

/** valkey-cli in the client pod, against the Service; throws when the command fails. */
function cli(client: string, args: string[]): string {
  return cluster
    .kubectl([
      'exec',
      '-n',
      NAMESPACE,
      client,
      '--',
      'valkey-cli',
      '-h',
      'valkey',
      ...args,
    ])
    .trim();
}

/** Calls `ask` until it resolves (the agent listens), for up to PHASE_TIMEOUT_MS. */
async function untilAnswered<T>(ask: () => Promise<T>): Promise<T> {
  const until = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    try {
      return await ask();
    } catch (error) {
      if (Date.now() > until) throw error;
    }
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
}

/**
 * One GET from the client pod, timed there by busybox's `time` (10 ms steps):
 * from valkey-cli's start to its exit, so name lookup, connect and the reply.
 */
function timedGet(client: string, key: string): { value: string; ms: number } {
  const out = cluster.kubectl([
    'exec',
    '-n',
    NAMESPACE,
    client,
    '--',
    'sh',
    '-c',
    `time valkey-cli -h valkey GET ${key} 2>&1`,
  ]);
  // valkey-cli failing makes kubectl fail above; its output is the value then `time`'s lines.
  const real = /real\s+(\d+)m\s*([\d.]+)s/.exec(out);
  if (!real) throw new Error(`no timing in ${JSON.stringify(out)}`);
  return {
    value: out.split('\n')[0].trim(),
    ms: Math.round((Number(real[1]) * 60 + Number(real[2])) * 1000),
  };
}

describe('hibernation on real nodes', () => {
  it("the post's walkthrough: idle for 10 s, SCALED_DOWN with cpu 0 and memory 1Mi requested on its node, woken by the client's first GET with every key", async () => {
    // The client first: the idle period starts with the store, and a slow
    // client start would have it asleep before the first write.
    cluster.kubectl(['apply', '-f', '-'], clientPod('valkey-client', 'valkey'));
    cluster.kubectl([
      'wait',
      '--for=condition=Ready',
      'pod/valkey-client',
      '-n',
      NAMESPACE,
      '--timeout=180s',
    ]);
    cluster.kubectl(['apply', '-f', '-'], valkeyDeployment('valkey'));
    cluster.kubectl([
      'expose',
      'deployment',
      'valkey',
      '-n',
      NAMESPACE,
      '--port=6379',
    ]);
    const store = await waitFor('the store running', () => {
      const pod = podOf('valkey');
      return pod?.node && pod.label === 'RUNNING' ? pod : undefined;
    });
    expect(store).toMatchObject({ cpu: '250m', memory: '128Mi', refused: '' });
    await waitFor('the client reaching the store', () =>
      cli('valkey-client', ['PING']) === 'PONG' ? true : undefined,
    );
    cli('valkey-client', [
      'HSET',
      'session:u9f3a',
      'user_id',
      '4821',
      'role',
      'admin',
      'last_seen',
      '2026-05-28T14:03:00Z',
    ]);
    cli('valkey-client', [
      'LPUSH',
      'jobs:email',
      'send-welcome:4821',
      'send-invoice:4819',
    ]);
    cli('valkey-client', [
      'SET',
      'agent:ctx:4821',
      'user prefers weekly summaries, timezone UTC+1',
    ]);
    const runId = /run_id:(\w+)/.exec(
      cli('valkey-client', ['INFO', 'server']),
    )![1];

    const wroteAt = Date.now();
    const asleep = await waitFor(
      'SCALED_DOWN with cpu 0 and memory 1Mi requested',
      () => {
        const pod = podOf('valkey');
        return pod?.label === 'SCALED_DOWN' &&
          pod.cpu === '0' &&
          pod.memory === '1Mi'
          ? pod
          : undefined;
      },
    );
    // eslint-disable-next-line no-console
    console.log(
      `SCALED_DOWN ${
        Date.now() - wroteAt
      } ms after the last write (idle period ${HIBERNATE_AFTER}); the kubelet reports requests ${
        asleep.applied
      }`,
    );
    // What the scheduler counts is the larger of spec and the kubelet's
    // status: the kubelet (cgroup v1 here) must report the small requests too.
    const applied = await waitFor('the kubelet applying the resize', () => {
      const pod = podOf('valkey');
      return pod?.applied === JSON.stringify({ cpu: '0', memory: '1Mi' })
        ? pod
        : undefined;
    });
    expect(applied.name).toBe(store.name);
    // The same pod, on the same node: only its process went.
    expect(asleep.name).toBe(store.name);
    expect(asleep.node).toBe(store.node);
    const agent = await agents.agentFor(store.node);
    const uid = podUid(store.name);
    const slept = await agent.hibernation(`hib-${uid}`);
    // A gap of more than 10 s between two writes under load may have put it to
    // sleep (and woken it) before: every sleep but this one has had its wake.
    expect(slept.phase).toBe('HIBERNATED');
    expect(slept.restores).toBe(slept.hibernations - 1);

    // The client's first command after the sleep: no retry, every key there.
    let first: { value: string; ms: number };
    try {
      first = timedGet('valkey-client', 'agent:ctx:4821');
    } catch (error) {
      throw new Error(
        `the first GET after the sleep failed: ${error}\n${agentLogs()}`,
      );
    }
    const value = first.value;
    expect(value).toBe('user prefers weekly summaries, timezone UTC+1');
    expect(cli('valkey-client', ['HGETALL', 'session:u9f3a'])).toBe(
      [
        'user_id',
        '4821',
        'role',
        'admin',
        'last_seen',
        '2026-05-28T14:03:00Z',
      ].join('\n'),
    );
    expect(cli('valkey-client', ['LRANGE', 'jobs:email', '0', '-1'])).toBe(
      'send-invoice:4819\nsend-welcome:4821',
    );
    // Restored, not restarted: the same process.
    expect(
      /run_id:(\w+)/.exec(cli('valkey-client', ['INFO', 'server']))![1],
    ).toBe(runId);
    const woken = await agent.hibernation(`hib-${uid}`);
    const awakeGet = timedGet('valkey-client', 'agent:ctx:4821');
    // One wake for this sleep, whatever the client sent meanwhile.
    expect(woken.restores).toBe(slept.hibernations);
    // eslint-disable-next-line no-console
    console.log(
      `woken: the client's first GET answered in ${
        first.ms
      } ms (in the client pod: name lookup, connect, reply; awake it takes ${
        awakeGet.ms
      } ms); the agent's wake ${
        woken.wakeMs
      } ms from the first held packet, restore ${woken.restoreMs} ms; dump ${
        slept.dumpMs
      } ms, ${slept.imageBytes} bytes kept; load ${execFileSync(
        'cat',
        ['/proc/loadavg'],
        { encoding: 'utf8' },
      ).trim()}`,
    );
    const awake = await waitFor('RUNNING with its requests back', () => {
      const pod = podOf('valkey');
      return pod?.label === 'RUNNING' &&
        pod.cpu === '250m' &&
        pod.memory === '128Mi'
        ? pod
        : undefined;
    });
    expect(awake.name).toBe(store.name);
  });

  it('a burst of 100 clients at a hibernated store: every one served, one restore', async () => {
    const asleep = await waitFor('SCALED_DOWN again', () => {
      const pod = podOf('valkey');
      return pod?.label === 'SCALED_DOWN' && pod.cpu === '0' ? pod : undefined;
    });
    const agent = await agents.agentFor(asleep.node);
    const uid = podUid(asleep.name);
    const before = await agent.hibernation(`hib-${uid}`);
    expect(before.phase).toBe('HIBERNATED');
    // All at once from the client pod: each its own connection, its own first command.
    const out = cluster.kubectl([
      'exec',
      '-n',
      NAMESPACE,
      'valkey-client',
      '--',
      'sh',
      '-c',
      [
        'for i in $(seq 100); do',
        '  (valkey-cli -h valkey GET agent:ctx:4821 > /tmp/burst.$i 2>&1; echo "rc=$?" >> /tmp/burst.$i) &',
        'done; wait',
        'cat /tmp/burst.*; rm -f /tmp/burst.*',
      ].join('\n'),
    ]);
    const served = out
      .split('\n')
      .filter(l => l === 'user prefers weekly summaries, timezone UTC+1');
    const ok = out.split('\n').filter(l => l === 'rc=0');
    expect({ served: served.length, ok: ok.length }).toEqual({
      served: 100,
      ok: 100,
    });
    const after = await agent.hibernation(`hib-${uid}`);
    expect(after.restores).toBe(before.restores + 1);
    expect(after.hibernations).toBe(before.hibernations);
    // eslint-disable-next-line no-console
    console.log(
      `burst of 100: all served, one restore, wake ${
        after.wakeMs
      } ms (restore ${after.restoreMs} ms); load ${execFileSync(
        'cat',
        ['/proc/loadavg'],
        { encoding: 'utf8' },
      ).trim()}`,
    );
  });

  it("wakes after its node's agent restarted while it slept: the new agent takes the watch back", async () => {
    // Awake after the burst first: until the controller follows the wake, the
    // label still says SCALED_DOWN.
    await waitFor('RUNNING after the burst', () =>
      podOf('valkey')?.label === 'RUNNING' ? true : undefined,
    );
    const asleep = await waitFor('SCALED_DOWN again', () => {
      const pod = podOf('valkey');
      return pod?.label === 'SCALED_DOWN' && pod.cpu === '0' ? pod : undefined;
    });
    const uid = podUid(asleep.name);
    const before = await (
      await agents.agentFor(asleep.node)
    ).hibernation(`hib-${uid}`);
    expect(before.phase).toBe('HIBERNATED');
    // SIGKILL, as a crash: nothing of the old agent's memory survives.
    agents.kill(asleep.node);
    await agents.restart(asleep.node);
    const agent = await agents.agentFor(asleep.node);
    // The node's log already holds the first agent's ready line, so the
    // restart may return before the new one listens: ask until it answers.
    const taken = await untilAnswered(() => agent.hibernation(`hib-${uid}`));
    expect(taken.phase).toBe('HIBERNATED');
    let first: { value: string; ms: number };
    try {
      first = timedGet('valkey-client', 'agent:ctx:4821');
    } catch (error) {
      throw new Error(
        `the first GET after the agent's restart failed: ${error}\n${agentLogs()}`,
      );
    }
    expect(first.value).toBe('user prefers weekly summaries, timezone UTC+1');
    const after = await agent.hibernation(`hib-${uid}`);
    expect(after.restores).toBe(before.restores + 1);
  });

  it("sleeps through the kubelet's probes: they neither keep it awake nor wake it, a client does", async () => {
    cluster.kubectl(['apply', '-f', '-'], valkeyDeployment('probed', 1, true));
    cluster.kubectl([
      'expose',
      'deployment',
      'probed',
      '-n',
      NAMESPACE,
      '--port=6379',
    ]);
    await waitFor('the probed store running', () =>
      podOf('probed')?.label === 'RUNNING' ? true : undefined,
    );
    await waitFor('a write through its Service', () =>
      cluster
        .kubectl([
          'exec',
          '-n',
          NAMESPACE,
          'valkey-client',
          '--',
          'valkey-cli',
          '-h',
          'probed',
          'SET',
          'probed-key',
          'kept',
        ])
        .trim() === 'OK'
        ? true
        : undefined,
    );
    // A TCP probe every second from the node: counted, it would never be idle.
    const asleep = await waitFor('SCALED_DOWN despite its probes', () => {
      const pod = podOf('probed');
      return pod?.label === 'SCALED_DOWN' ? pod : undefined;
    });
    const uid = podUid(asleep.name);
    const agent = await agents.agentFor(asleep.node);
    const slept = await agent.hibernation(`hib-${uid}`);
    // Several probes later it still sleeps: held, they would each have woken it.
    await new Promise(resolve => setTimeout(resolve, 5_000));
    const still = await agent.hibernation(`hib-${uid}`);
    expect(still).toMatchObject({
      phase: 'HIBERNATED',
      restores: slept.restores,
    });
    const out = cluster
      .kubectl([
        'exec',
        '-n',
        NAMESPACE,
        'valkey-client',
        '--',
        'valkey-cli',
        '-h',
        'probed',
        'GET',
        'probed-key',
      ])
      .trim();
    expect(out).toBe('kept');
    expect((await agent.hibernation(`hib-${uid}`)).restores).toBe(
      slept.restores + 1,
    );
  });

  it('opting a sleeping pod out wakes it for good: requests back, label gone, no longer watched', async () => {
    await waitFor('the probed store awake after its GET', () =>
      podOf('probed')?.label === 'RUNNING' ? true : undefined,
    );
    const asleep = await waitFor('the probed store asleep again', () => {
      const pod = podOf('probed');
      return pod?.label === 'SCALED_DOWN' && pod.cpu === '0' ? pod : undefined;
    });
    cluster.kubectl([
      'annotate',
      'pod',
      asleep.name,
      '-n',
      NAMESPACE,
      'ferry.dev/hibernate-after-',
    ]);
    const out = await waitFor('requests back and no label', () => {
      const pod = podOf('probed');
      return pod &&
        pod.label === '' &&
        pod.cpu === '250m' &&
        pod.memory === '128Mi'
        ? pod
        : undefined;
    });
    expect(out.name).toBe(asleep.name);
    const uid = podUid(asleep.name);
    const agent = await agents.agentFor(asleep.node);
    await expect(agent.hibernation(`hib-${uid}`)).rejects.toThrow(/404/);
    expect(
      cluster
        .kubectl([
          'exec',
          '-n',
          NAMESPACE,
          'valkey-client',
          '--',
          'valkey-cli',
          '-h',
          'probed',
          'GET',
          'probed-key',
        ])
        .trim(),
    ).toBe('kept');
    // Longer than its old idle period: it stays awake and unlabelled.
    await new Promise(resolve => setTimeout(resolve, 15_000));
    expect(podOf('probed')).toMatchObject({
      name: asleep.name,
      label: '',
      cpu: '250m',
    });
    await expect(agent.hibernation(`hib-${uid}`)).rejects.toThrow(/404/);
  });

  it('hibernated, then its node drained: the move wakes it, takes it to another node with its memory, and leaves no images behind', async () => {
    // Away from the client's node: these nodes' kube-proxy masquerades all
    // Service traffic, so from a pod on the store's own node it arrives from
    // the node's address on the bridge, which the agent takes for the
    // kubelet's probes (seen: a store moved to the client's node counted none
    // of the client's packets, and the client's first GET after its next
    // sleep timed out).
    const clientNode = cluster.kubectl([
      'get',
      'pod',
      'valkey-client',
      '-n',
      NAMESPACE,
      '-o',
      'jsonpath={.spec.nodeName}',
    ]);
    const drained = JSON.parse(valkeyDeployment('drained'));
    drained.spec.template.spec.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchFields: [
                {
                  key: 'metadata.name',
                  operator: 'NotIn',
                  values: [clientNode],
                },
              ],
            },
          ],
        },
      },
    };
    cluster.kubectl(['apply', '-f', '-'], JSON.stringify(drained));
    cluster.kubectl([
      'expose',
      'deployment',
      'drained',
      '-n',
      NAMESPACE,
      '--port=6379',
    ]);
    const drainedCli = (args: string[]) =>
      cluster
        .kubectl([
          'exec',
          '-n',
          NAMESPACE,
          'valkey-client',
          '--',
          'valkey-cli',
          '-h',
          'drained',
          ...args,
        ])
        .trim();
    await waitFor('a write through its Service', () =>
      drainedCli(['SET', 'drained-key', 'kept']) === 'OK' ? true : undefined,
    );
    drainedCli(['RPUSH', 'drained-list', 'a', 'b', 'c']);
    const runId = /run_id:(\w+)/.exec(drainedCli(['INFO', 'server']))![1];
    const asleep = await waitFor('the store SCALED_DOWN', () => {
      const pod = podOf('drained');
      return pod?.label === 'SCALED_DOWN' && pod.cpu === '0' ? pod : undefined;
    });
    const uid = podUid(asleep.name);
    const source = await agents.agentFor(asleep.node);
    const slept = await source.hibernation(`hib-${uid}`);
    expect(slept.phase).toBe('HIBERNATED');
    // This store's images: its hibernation's, and the move's (other stores
    // of the suite may sleep on the same node).
    const imagesOf = (node: string) =>
      cluster
        .filesOnNode(node, cluster.node(node).imagesDir)
        .filter(
          f =>
            f.startsWith(`hib-${uid}`) || f.startsWith('default.drained-drain'),
        );
    // Its memory is in images on its node: what a drain must not leave behind.
    expect(imagesOf(asleep.node)).toEqual([`hib-${uid}-${slept.hibernations}`]);
    const target = cluster.nodes
      .map(n => n.name)
      .find(n => n !== asleep.node && n !== clientNode)!;

    // The drain's first step; Ferry plans the move from it (here the test does).
    cluster.kubectl(['cordon', asleep.node]);
    try {
      const store = new InMemoryMigrationStore();
      const sm = new MigrationStateMachine({
        store,
        drivers: [
          new KubeCheckpointDriver({
            kubeConfig: cluster.controlPlane.kubeConfig(),
            agents,
            clock: systemClock,
          }),
        ],
        clock: systemClock,
      });
      const planned = await sm.plan(NAMESPACE, 'drained-drain', {
        workloadRef: { kind: 'Deployment', name: 'drained' },
        pod: asleep.name,
        sourceNode: asleep.node,
        targetNode: target,
        reason: 'drain',
        driver: 'checkpoint',
      });
      const done = await sm.run(NAMESPACE, planned.metadata.name);
      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
        /^Succeeded/,
      );
      // eslint-disable-next-line no-console
      console.log(
        `drained while hibernated: ${done.status?.message ?? ''}; freeze ${
          done.status?.writePauseMs
        } ms, ${done.status?.bytesMoved} bytes moved; load ${execFileSync(
          'cat',
          ['/proc/loadavg'],
          {
            encoding: 'utf8',
          },
        ).trim()}`,
      );
      const moved = await waitFor('one member, on the other node', () => {
        const pod = podOf('drained');
        return pod?.node === target && pod.name !== asleep.name
          ? pod
          : undefined;
      });
      // The same process, with its memory. Its Service's endpoints follow the
      // hand-off a moment later (kube-proxy refuses meanwhile).
      await waitFor('the moved store answering through its Service', () =>
        drainedCli(['GET', 'drained-key']) === 'kept' ? true : undefined,
      );
      // The Service may still list the old member's address for a moment, and a
      // connection sent there is refused: such a call is asked again (waitFor
      // takes a failed kubectl exec for no answer); every answer must be the
      // moved store's own.
      const answer = (args: string[]) =>
        waitFor(`${args[0]} through its Service`, () => drainedCli(args));
      expect(await answer(['LRANGE', 'drained-list', '0', '-1'])).toBe(
        'a\nb\nc',
      );
      expect(/run_id:(\w+)/.exec(await answer(['INFO', 'server']))![1]).toBe(
        runId,
      );
      // Nothing of its memory stays on the drained node, and nothing there watches it.
      expect(imagesOf(asleep.node)).toEqual([]);
      await expect(source.hibernation(`hib-${uid}`)).rejects.toThrow(/404/);
      // It goes on hibernating where it now runs, with its requests as the template has them.
      expect(moved.cpu).toBe('250m');
      const again = await waitFor('SCALED_DOWN on its new node', () => {
        const pod = podOf('drained');
        return pod?.label === 'SCALED_DOWN' && pod.node === target
          ? pod
          : undefined;
      });
      expect(again.name).toBe(moved.name);
      let woken: string;
      try {
        woken = drainedCli(['GET', 'drained-key']);
      } catch (error) {
        const status = await (await agents.agentFor(target))
          .hibernation(`hib-${podUid(moved.name)}`)
          .catch(e => e);
        throw new Error(
          `the first GET on its new node failed: ${error}\nits watch: ${JSON.stringify(
            status,
          )}\n${agentLogs()}\n${target}/kubelet:\n${cluster.logTail(
            `${target}/kubelet`,
            30,
          )}\n${target}/containerd:\n${cluster.logTail(
            `${target}/containerd`,
            30,
          )}`,
        );
      }
      expect(woken).toBe('kept');
    } finally {
      cluster.kubectl(['uncordon', asleep.node]);
    }
  });

  it('refuses a member of a replicated workload, and says why on the pod', async () => {
    cluster.kubectl(['apply', '-f', '-'], valkeyDeployment('replicated', 3));
    const refused = await waitFor('each member refused with the reason', () => {
      const out = cluster.kubectl([
        'get',
        'pods',
        '-n',
        NAMESPACE,
        '-l',
        'app=replicated',
        '-o',
        'jsonpath={range .items[*]}{.metadata.annotations.ferry\\.dev/hibernation-refused}{"\\n"}{end}',
      ]);
      const reasons = out.trim().split('\n').filter(Boolean);
      return reasons.length === 3 &&
        reasons.every(r =>
          r.includes('Deployment has 3 replicas, whose quorum of 2'),
        )
        ? reasons
        : undefined;
    });
    expect(refused).toHaveLength(3);
  });
  it('keeps awake a store with an open connection to another service, says why on the pod, and lets it sleep once the connection closes', async () => {
    // A lone replica of the walkthrough's store: its link to the primary is
    // its own connection out, which the primary would time out while it slept.
    const follower = JSON.parse(valkeyDeployment('follower'));
    follower.spec.template.spec.containers[0].args.push(
      '--replicaof',
      'valkey',
      '6379',
    );
    cluster.kubectl(['apply', '-f', '-'], JSON.stringify(follower));
    const refused = await waitFor(
      'the replica refused with its open connection',
      () => {
        const pod = podOf('follower');
        return pod?.refused ? pod : undefined;
      },
    );
    expect(refused.refused).toMatch(
      /^it holds open connections to other services \(\d+\.\d+\.\d+\.\d+:6379\), which would time out while it sleeps/,
    );
    const agent = await agents.agentFor(refused.node);
    const uid = podUid(refused.name);
    // Idle for longer than its period, and not checkpointed.
    await new Promise(resolve => setTimeout(resolve, 5_000));
    const awake = await agent.hibernation(`hib-${uid}`);
    expect(awake).toMatchObject({ phase: 'RUNNING', hibernations: 0 });
    expect(awake.idleForMs).toBeGreaterThan(10_000);
    expect(podOf('follower')).toMatchObject({ label: 'RUNNING', cpu: '250m' });

    // Its own command, from inside the pod: the link closes, and it sleeps.
    cluster.kubectl([
      'exec',
      '-n',
      NAMESPACE,
      refused.name,
      '--',
      'valkey-cli',
      'REPLICAOF',
      'NO',
      'ONE',
    ]);
    const asleep = await waitFor(
      'the former replica SCALED_DOWN, its refusal gone',
      () => {
        const pod = podOf('follower');
        return pod?.label === 'SCALED_DOWN' && pod.refused === ''
          ? pod
          : undefined;
      },
    );
    expect(asleep.name).toBe(refused.name);
  });
});
