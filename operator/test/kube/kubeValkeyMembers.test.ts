/**
 * The valkey driver's pods on a real cluster (`KubeValkeyMembers`,
 * `ReplicaSetHandoff`): the new member is a bare pod cloned from the member's
 * ReplicaSet template, outside the selector and pinned to the target node; the
 * hand-off makes the ReplicaSet adopt it and remove the old member; a rollback
 * leaves the old member where it was. kwok's pods run no server, so the driver's
 * Valkey commands are not part of this suite.
 */
import { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import {
  CHEAPEST_DELETION_COST,
  HANDOFF_OF_LABEL,
  HELD_BACK_LABEL_ANNOTATION,
  KubeValkeyMembers,
  POD_DELETION_COST_ANNOTATION,
  ReplicaSetHandoff,
} from '../../src/kube/KubeValkeyMembers';
import { PermanentMigrationError } from '../../src/migration/MigrationDriver';
import { createFakeNodes, FakeNodeSpec, NODE_LABELS } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

const FLEET: FakeNodeSpec[] = ['a', 'b', 'c'].flatMap(zone => [
  {
    name: `spot-${zone}`,
    capacityType: 'spot' as const,
    instanceType: 'm5.large' as const,
    zone: `us-east-1${zone}`,
  },
  {
    name: `on-demand-${zone}`,
    capacityType: 'on-demand' as const,
    instanceType: 'm5.large' as const,
    zone: `us-east-1${zone}`,
  },
]);

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 100));
  }
}

describe('valkey members as pods on a real cluster', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await createOptedInSessions(kc, NAMESPACE, { migration: 'valkey' });
    await until('three running members', async () => {
      const members = await selected();
      return members.length === 3 && members.every(isReady) && members;
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  function isReady(pod: V1Pod): boolean {
    return Boolean(
      pod.status?.conditions?.some(
        c => c.type === 'Ready' && c.status === 'True',
      ),
    );
  }

  /** The pods the Deployment's selector (and so its Service) picks, not being deleted. */
  async function selected(): Promise<V1Pod[]> {
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: 'app=sessions',
    });
    return pods.items.filter(pod => !pod.metadata?.deletionTimestamp);
  }

  const read = (name: string) =>
    core.readNamespacedPod({ namespace: NAMESPACE, name });

  const bound = (sourcePod: string) => ({
    kubeConfig: cluster.kubeConfig(),
    namespace: NAMESPACE,
    sourcePod,
  });

  it('starts the new member outside the selector, pinned to the target node, once however often asked, and hands clients to it as the ReplicaSet agrees', async () => {
    const before = await selected();
    const source = before[0];
    const sourceName = source.metadata!.name!;
    const members = new KubeValkeyMembers(bound(sourceName));
    const handoff = new ReplicaSetHandoff(bound(sourceName));

    const from = await members.resolveMember(
      sourceName,
      source.spec!.nodeName!,
    );
    expect(from).toEqual({
      name: sourceName,
      node: source.spec!.nodeName,
      host: source.status!.podIP,
      port: 6379,
    });

    const targetName = `${sourceName}-ferry-t1`;
    const to = await members.startMember(targetName, 'on-demand-b');
    const again = await members.startMember(targetName, 'on-demand-b');
    expect(again).toEqual(to);
    const target = await read(targetName);
    expect(to).toEqual({
      name: targetName,
      node: 'on-demand-b',
      host: target.status!.podIP,
      port: 6379,
    });
    expect(isReady(target)).toBe(true);
    expect(target.spec!.nodeName).toBe('on-demand-b');
    expect(
      target.spec!.nodeSelector?.[NODE_LABELS.karpenterCapacityType],
    ).toBeUndefined();
    // Outside the selector: the ReplicaSet neither adopts nor counts it, the Service skips it.
    expect(target.metadata!.ownerReferences).toBeUndefined();
    expect(target.metadata!.labels).toEqual(
      expect.objectContaining({
        'pod-template-hash': source.metadata!.labels!['pod-template-hash'],
        [HANDOFF_OF_LABEL]: sourceName,
      }),
    );
    expect(target.metadata!.labels!.app).toBeUndefined();
    expect(target.metadata!.annotations?.[HELD_BACK_LABEL_ANNOTATION]).toBe(
      'app=sessions',
    );
    expect(
      (
        await core.listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: `${HANDOFF_OF_LABEL}=${sourceName}`,
        })
      ).items,
    ).toHaveLength(1);
    // (State moves here.) The ReplicaSet still has exactly its three pods.
    await new Promise(resolve => setTimeout(resolve, 1_000));
    expect((await selected()).map(p => p.metadata!.name).sort()).toEqual(
      before.map(p => p.metadata!.name).sort(),
    );
    expect(await handoff.current()).toBe(sourceName);

    // Before the switch: the old member becomes the one a ReplicaSet removes first.
    await handoff.prepare(to);
    expect(
      (await read(sourceName)).metadata!.annotations?.[
        POD_DELETION_COST_ANNOTATION
      ],
    ).toBe(CHEAPEST_DELETION_COST);
    expect(await handoff.current()).toBe(sourceName);

    // The switch: the new member joins; the ReplicaSet adopts it and removes the old one.
    await handoff.pointTo(to);
    expect(await handoff.current()).toBe(targetName);
    const after = await until(
      'the ReplicaSet to remove the old member',
      async () => {
        const pods = await selected();
        const names = pods.map(p => p.metadata!.name);
        return pods.length === 3 && !names.includes(sourceName) && pods;
      },
    );
    expect(after.map(p => p.metadata!.name).sort()).toEqual(
      [...before.slice(1).map(p => p.metadata!.name!), targetName].sort(),
    );
    const adopted = await read(targetName);
    expect(adopted.metadata!.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'ReplicaSet',
        uid: source.metadata!.ownerReferences![0].uid,
        controller: true,
      }),
    ]);
    expect(adopted.spec!.nodeName).toBe('on-demand-b');
    // Cleanup retires a source that is already gone without complaint.
    await members.stopMember(from);
  });

  it('rolls back before the switch: the old member keeps its clients and its rank, the new one goes', async () => {
    const before = await selected();
    const source = before[0];
    const sourceName = source.metadata!.name!;
    const members = new KubeValkeyMembers(bound(sourceName));
    const handoff = new ReplicaSetHandoff(bound(sourceName));
    const from = await members.resolveMember(
      sourceName,
      source.spec!.nodeName!,
    );
    const to = await members.startMember(
      `${sourceName}-ferry-t2`,
      'on-demand-c',
    );
    await handoff.prepare(to);

    await handoff.pointTo(from);
    await members.stopMember(to);

    const kept = await read(sourceName);
    expect(kept.metadata!.annotations?.[POD_DELETION_COST_ANNOTATION]).toBe(
      undefined,
    );
    expect(kept.metadata!.deletionTimestamp).toBeUndefined();
    expect(await handoff.current()).toBe(sourceName);
    await until('the new member to be gone', async () =>
      read(to.name).then(
        () => false,
        () => true,
      ),
    );
    expect((await selected()).map(p => p.metadata!.name).sort()).toEqual(
      before.map(p => p.metadata!.name).sort(),
    );
  });

  it('fences a member at once, without a grace period', async () => {
    const [source] = await selected();
    const sourceName = source.metadata!.name!;
    const members = new KubeValkeyMembers(bound(sourceName));
    const to = await members.startMember(`${sourceName}-ferry-t3`, 'spot-a');
    await members.fenceMember(to);
    await expect(read(to.name)).rejects.toMatchObject({ code: 404 });
    await members.fenceMember(to);
  });

  it('refuses a member no ReplicaSet or StatefulSet owns, saying what to do instead', async () => {
    await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'lonely', labels: { app: 'lonely' } },
        spec: {
          nodeName: 'spot-b',
          containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
        },
      },
    });
    const members = new KubeValkeyMembers(bound('lonely'));
    const attempt = members.startMember('lonely-ferry-t4', 'on-demand-a');
    await expect(attempt).rejects.toThrow(PermanentMigrationError);
    await expect(attempt).rejects.toThrow(
      /lonely is a bare pod: .*Deployments and StatefulSets only.*set the SpotPolicy's migration to reschedule/,
    );
    await expect(read('lonely-ferry-t4')).rejects.toMatchObject({ code: 404 });
  });
});
