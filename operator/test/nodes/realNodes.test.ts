/**
 * Real nodes: kubelet, containerd, runc, CNI and kube-proxy on three network namespaces
 * of this machine, with CoreDNS. Pods run on every node, reach each other across nodes
 * and find a Service by name; a reclaimed spot node keeps its pods until its deadline,
 * then takes them down with it and goes NotReady.
 */
import fs from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { NODE_LABELS } from '../../src/cloud/nodeLabels';
import { RealNodeCluster, SPOT_NOTICE_TAINT } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

jest.setTimeout(600_000);

const images = nodeTestImages();
let cluster: RealNodeCluster;

beforeAll(async () => {
  cluster = await RealNodeCluster.start({
    images: [images.pause.tar, images.valkey.tar],
    sandboxImage: images.pause.name,
    // Real nodes only: kwok's fake kubelets are not needed here.
    controlPlane: { kwok: false },
  });
});

afterAll(async () => {
  await cluster?.stop();
});

function podOn(name: string, node: string, command?: string[]): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: images.valkey.name,
          imagePullPolicy: 'Never',
          ...(command
            ? { command }
            : {
                command: ['valkey-server'],
                args: [
                  '--protected-mode',
                  'no',
                  '--save',
                  '',
                  '--appendonly',
                  'no',
                ],
                readinessProbe: {
                  tcpSocket: { port: 6379 },
                  periodSeconds: 1,
                },
              }),
        },
      ],
    },
  });
}

function waitReady(pods: string[]): void {
  cluster.kubectl([
    'wait',
    '--for=condition=Ready',
    '--timeout=240s',
    ...pods.map(p => `pod/${p}`),
  ]);
}

function podIp(name: string): string {
  return cluster.kubectl([
    'get',
    'pod',
    name,
    '-o',
    'jsonpath={.status.podIP}',
  ]);
}

/**
 * Retries a kubectl exec until it succeeds: a new Service reaches every node's
 * kube-proxy a moment after its endpoints are Ready.
 */
async function eventually(
  run: () => string,
  timeoutMs = 60_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return run();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise(resolve => setTimeout(resolve, 500));
    }
  }
}

function cli(pod: string, args: string[]): string {
  return cluster.kubectl(['exec', pod, '--', 'valkey-cli', ...args]).trim();
}

describe('real nodes', () => {
  it('registers every node Ready, labelled as Karpenter and EKS label spot and on-demand capacity', async () => {
    const core = cluster.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    const nodes = (await core.listNode()).items;
    for (const real of cluster.nodes) {
      const node = nodes.find(n => n.metadata?.name === real.name);
      expect(node).toBeDefined();
      const labels = node!.metadata!.labels!;
      expect(labels[NODE_LABELS.karpenterCapacityType]).toBe(
        real.spec.capacityType,
      );
      expect(labels[NODE_LABELS.eksCapacityType]).toBe(
        real.spec.capacityType === 'spot' ? 'SPOT' : 'ON_DEMAND',
      );
      expect(labels[NODE_LABELS.zone]).toBe(real.spec.zone);
      expect(labels[NODE_LABELS.instanceType]).toBe(real.spec.instanceType);
      expect(
        node!.status?.conditions?.find(c => c.type === 'Ready')?.status,
      ).toBe('True');
      expect(node!.status?.addresses).toContainEqual({
        type: 'InternalIP',
        address: real.ip,
      });
    }
  });

  it('runs pods on all three nodes, which reach each other across nodes and find a Service by name', async () => {
    const [a, b, c] = cluster.nodes.map(n => n.name);
    cluster.kubectl(['apply', '-f', '-'], podOn('server', a));
    cluster.kubectl(
      ['apply', '-f', '-'],
      podOn('client-b', b, ['sleep', 'infinity']),
    );
    cluster.kubectl(
      ['apply', '-f', '-'],
      podOn('client-c', c, ['sleep', 'infinity']),
    );
    waitReady(['server', 'client-b', 'client-c']);
    const placed = cluster
      .kubectl([
        'get',
        'pods',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{"\\n"}{end}',
      ])
      .trim()
      .split('\n');
    expect(placed.sort()).toEqual(
      [`client-b=${b}`, `client-c=${c}`, `server=${a}`].sort(),
    );

    // Pod to pod, across nodes: the server's pod IP is on node a's bridge.
    const serverIp = podIp('server');
    expect(
      cluster
        .node(a)
        .podCidr.startsWith(serverIp.split('.').slice(0, 3).join('.')),
    ).toBe(true);
    expect(cli('client-b', ['-h', serverIp, 'set', 'greeting', 'hello'])).toBe(
      'OK',
    );
    expect(cli('client-c', ['-h', serverIp, 'get', 'greeting'])).toBe('hello');

    // A Service by its name: CoreDNS answers, kube-proxy on the client's node routes.
    cluster.kubectl(['expose', 'pod', 'server', '--name=kv', '--port=6379']);
    expect(
      await eventually(() => cli('client-c', ['-h', 'kv', 'get', 'greeting'])),
    ).toBe('hello');
    expect(
      await eventually(() =>
        cli('client-b', ['-h', 'kv.default.svc.cluster.local', 'ping']),
      ),
    ).toBe('PONG');
  });

  it('reclaims a spot node: a notice taint first, its pods alive until the deadline, then gone with the node, which goes NotReady', async () => {
    const spot = cluster.nodes.find(
      n => n.spec.capacityType === 'spot' && n.name !== cluster.nodes[0].name,
    )!;
    const [a] = cluster.nodes.map(n => n.name);
    cluster.kubectl(['apply', '-f', '-'], podOn('doomed', spot.name));
    cluster.kubectl(
      ['apply', '-f', '-'],
      podOn('watcher', a, ['sleep', 'infinity']),
    );
    waitReady(['doomed', 'watcher']);
    const doomedIp = podIp('doomed');
    const pidsBefore = cluster.pidsOf(spot.name);
    expect(pidsBefore.length).toBeGreaterThan(0);

    const noticeSeconds = 8;
    const reclaim = cluster.reclaim(spot.name, { noticeSeconds });
    // During the notice: the taint is there and the pod still answers.
    const core = cluster.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    for (let i = 0; i < 50; i++) {
      const node = await core.readNode({ name: spot.name });
      if (node.spec?.taints?.some(t => t.key === SPOT_NOTICE_TAINT)) break;
      await new Promise(resolve => setTimeout(resolve, 100));
    }
    const tainted = await core.readNode({ name: spot.name });
    expect(tainted.spec?.taints?.map(t => t.key)).toContain(SPOT_NOTICE_TAINT);
    expect(cli('watcher', ['-h', doomedIp, 'ping'])).toBe('PONG');

    const { noticedAt, killedAt } = await reclaim;
    expect(killedAt - noticedAt).toBeGreaterThanOrEqual(noticeSeconds * 1000);
    // Every process of the node and its pods is gone: kubelet, containerd, shims, containers.
    expect(pidsBefore.filter(pid => isAlive(pid))).toEqual([]);
    expect(cluster.pidsOf(spot.name)).toEqual([]);
    expect(() =>
      cluster.kubectl([
        'exec',
        'watcher',
        '--',
        'valkey-cli',
        '-h',
        doomedIp,
        '-t',
        '3',
        'ping',
      ]),
    ).toThrow();

    // The node controller notices the silence.
    const deadline = Date.now() + 120_000;
    let ready: string | undefined = 'True';
    while (Date.now() < deadline) {
      const node = await core.readNode({ name: spot.name });
      ready = node.status?.conditions?.find(c => c.type === 'Ready')?.status;
      if (ready !== 'True') break;
      await new Promise(resolve => setTimeout(resolve, 1000));
    }
    expect(ready).toBe('Unknown');
  });
});

/** Whether a process still runs: a zombie, dead but not yet reaped by its parent, does not. */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
