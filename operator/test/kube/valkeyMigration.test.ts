/**
 * The `valkey` method on a real cluster, end to end, with real servers: each
 * running pod of the opted-in Deployment is a redis-server at the pod's IP
 * (`ProcessKubelet`). An AWS Node Termination Handler taint on a member's node
 * becomes a Migration; the operator starts the new member as a bare pod on the
 * target node, replicates into it, switches over with writes paused, and hands
 * it to the Deployment's ReplicaSet, which removes the old member. The data is
 * in the new member, which is the primary.
 */
import Valkey from 'iovalkey';
import { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { KubeValkeyDriver } from '../../src/kube/runtimes/valkey/KubeValkeyDriver';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { loopbackPodCidrs, ProcessKubelet } from './processKubelet';
import { HANDOFF_OF_LABEL } from '../../src/kube/client/ferryKeys';
import { until } from './until';
import { startOperator } from './startOperator';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** Keys written to the member before it moves. */
const KEYS = 2_000;

/** Two spot nodes and one on-demand node in each of three zones. */
const FLEET: FakeNodeSpec[] = zonalFleet();

function client(pod: V1Pod): Valkey {
  const port = pod.spec!.containers[0].ports![0].containerPort;
  const valkey = new Valkey({
    host: pod.status!.podIP,
    port,
    lazyConnect: true,
    connectTimeout: 1_000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  valkey.on('error', () => {});
  return valkey;
}

async function answers(pod: V1Pod): Promise<boolean> {
  const valkey = client(pod);
  try {
    await valkey.connect();
    return (await valkey.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    valkey.disconnect();
  }
}

describe('the valkey method on a real cluster, with real servers', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let operator: KubeOperator;
  let kubelet: ProcessKubelet;
  let warnings: string[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    await loopbackPodCidrs(
      kc,
      FLEET.map(node => node.name),
    );
    for (const name of [NAMESPACE, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    kubelet = new ProcessKubelet(kc, NAMESPACE);
    await kubelet.start();
    ({ operator, warnings } = await startOperator(
      cluster,
      {
        // As src/main.ts wires it: no credentials.
        drivers: [
          new KubeValkeyDriver({
            kubeConfig: kc,
            access: {},
            clock: systemClock,
          }),
        ],
        pools: async () => poolsOf(FLEET),
      },
      { webhooks: true },
    ));
    // A port of its own, so that no other server on the machine is in the way.
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await createOptedInSessions(kc, NAMESPACE, { migration: 'valkey' }, port);
    await until(
      'three members answering',
      async () => {
        const pods = await selected();
        return (
          pods.length === 3 &&
          (await Promise.all(pods.map(answers))).every(Boolean) &&
          operator.state
            .workloads()[0]
            ?.view.members.every(m => m.ready && m.node)
        );
      },
      {
        timeoutMs: 60_000,
        detail: () => `servers: ${kubelet.running.join(', ')}`,
      },
    );
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await kubelet?.stop();
    await cluster?.stop();
  });

  /** The pods the Deployment's selector (and a Service with it) picks, not being deleted. */
  async function selected(): Promise<V1Pod[]> {
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: 'app=sessions',
    });
    return pods.items.filter(
      pod => pod.status?.podIP && !pod.metadata?.deletionTimestamp,
    );
  }

  /** An AWS Node Termination Handler's spot interruption taint on the node. */
  async function taint(node: string): Promise<void> {
    await apiRequest(cluster.kubeConfig(), 'PATCH', `/api/v1/nodes/${node}`, {
      contentType: 'application/merge-patch+json',
      body: {
        spec: {
          taints: [
            {
              key: 'aws-node-termination-handler/spot-itn',
              value: 'evt-1',
              effect: 'NoSchedule',
            },
          ],
        },
      },
    });
  }

  /** The Migration of the pod, once in a final phase. */
  function finished(pod: string, timeoutMs = 90_000): Promise<Migration> {
    return until(
      `the migration of ${pod} to finish`,
      async () =>
        (await migrationsIn(cluster.kubeConfig(), NAMESPACE)).find(
          m =>
            m.spec.pod === pod &&
            ['Succeeded', 'RolledBack', 'Failed'].includes(
              m.status?.phase ?? '',
            ),
        ),
      { timeoutMs, detail: () => `operator warnings: ${warnings.join('; ')}` },
    );
  }

  it('moves a member with its data off a node with a spot interruption notice, and the ReplicaSet keeps the new member', async () => {
    const before = await selected();
    const source = before.find(pod => pod.spec!.nodeName!.startsWith('spot-'))!;
    const sourceName = source.metadata!.name!;
    const writer = client(source);
    await writer.connect();
    const pipeline = writer.pipeline();
    for (let i = 0; i < KEYS; i++) pipeline.set(`session:${i}`, `value-${i}`);
    await pipeline.exec();
    writer.disconnect();

    await taint(source.spec!.nodeName!);
    const done = await finished(sourceName);
    process.stdout.write(
      `valkey hand-off on the cluster: write pause ${done.status?.writePauseMs} ms, ${done.status?.bytesMoved} bytes\n`,
    );
    // The message says why, should it not have succeeded.
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    expect(done.status!.phases.map(t => t.phase)).toEqual([
      'Planned',
      'PreparingTarget',
      'Transferring',
      'SwitchingOver',
      'Verifying',
      'CleaningUp',
    ]);
    expect(done.status!.writePauseMs).toEqual(expect.any(Number));
    // The bytes the old member sent, read before the switch in case the
    // ReplicaSet has removed it by the time they are counted.
    expect(done.status!.bytesMoved).toBeGreaterThan(0);

    // The ReplicaSet kept the new member and removed the old one.
    const after = await until('three members again', async () => {
      const pods = await selected();
      return pods.length === 3 && pods;
    });
    const names = after.map(pod => pod.metadata!.name);
    expect(names).not.toContain(sourceName);
    const moved = after.find(
      pod => pod.metadata!.labels?.[HANDOFF_OF_LABEL] === sourceName,
    )!;
    expect(moved.metadata!.name).toBe(done.status!.driverState?.targetPod);
    expect(moved.spec!.nodeName).toBe(done.spec.targetNode);
    expect(moved.metadata!.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'ReplicaSet',
        uid: source.metadata!.ownerReferences![0].uid,
        controller: true,
      }),
    ]);
    expect(names.sort()).toEqual(
      [
        ...before.filter(pod => pod !== source).map(pod => pod.metadata!.name!),
        moved.metadata!.name!,
      ].sort(),
    );
    // The old member's server is gone with its pod.
    expect(kubelet.running).not.toContain(sourceName);

    // The new member is the primary and has every key.
    const reader = client(moved);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.dbsize()).toBe(KEYS);
      expect(await reader.get(`session:${KEYS - 1}`)).toBe(`value-${KEYS - 1}`);
      await reader.set('after-move', '1');
    } finally {
      reader.disconnect();
    }
  });
  it('rolls back when the new member never answers: the old member keeps serving its data, the new pod is removed, the ReplicaSet is untouched', async () => {
    kubelet.withhold = pod =>
      pod.metadata?.labels?.[HANDOFF_OF_LABEL] !== undefined;
    const before = await selected();
    const source = before.find(
      pod =>
        pod.spec!.nodeName!.startsWith('spot-') &&
        !pod.metadata!.labels?.[HANDOFF_OF_LABEL],
    )!;
    const sourceName = source.metadata!.name!;
    const writer = client(source);
    await writer.connect();
    await writer.set('kept', 'yes');
    writer.disconnect();
    await taint(source.spec!.nodeName!);

    const done = await finished(sourceName, 120_000);
    expect([done.status?.phase, done.status?.failedPhase]).toEqual([
      'RolledBack',
      'PreparingTarget',
    ]);
    expect(done.status?.message).toContain('never answered');
    const target = done.status!.driverState?.targetPod;
    expect(target).toEqual(expect.stringMatching(`^${sourceName}-ferry-`));
    await until('the new member to be removed', async () =>
      core.readNamespacedPod({ namespace: NAMESPACE, name: target! }).then(
        pod => Boolean(pod.metadata?.deletionTimestamp),
        () => true,
      ),
    );
    const kept = await core.readNamespacedPod({
      namespace: NAMESPACE,
      name: sourceName,
    });
    expect(kept.metadata!.deletionTimestamp).toBeUndefined();
    expect(
      kept.metadata!.annotations?.[
        'controller.kubernetes.io/pod-deletion-cost'
      ],
    ).toBeUndefined();
    expect((await selected()).map(pod => pod.metadata!.name).sort()).toEqual(
      before.map(pod => pod.metadata!.name).sort(),
    );
    const reader = client(kept);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.get('kept')).toBe('yes');
      await reader.set('still-writable', '1');
    } finally {
      reader.disconnect();
    }
  }, 150_000);
});
