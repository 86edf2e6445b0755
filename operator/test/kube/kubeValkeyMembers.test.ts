/**
 * The valkey driver's pods on a real cluster (`KubeValkeyMembers`,
 * `ReplicaSetHandoff`): the new member is a bare pod cloned from the member's
 * ReplicaSet template, outside the selector and pinned to the target node; the
 * hand-off makes the ReplicaSet adopt it and remove the old member; a rollback
 * leaves the old member where it was. kwok's pods run no server, so the driver's
 * Valkey commands are not part of this suite.
 */
import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import {
  CHEAPEST_DELETION_COST,
  KubeValkeyMembers,
  POD_DELETION_COST_ANNOTATION,
  ReplicaSetHandoff,
} from '../../src/kube/runtimes/valkey/KubeValkeyMembers';
import type { Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { StatefulSetValkeyDriver } from '../../src/kube/runtimes/valkey/StatefulSetValkeyDriver';
import {
  MigrationStepContext,
  PermanentMigrationError,
} from '../../src/migration/MigrationDriver';
import {
  createFakeNodes,
  FakeNodeSpec,
  NODE_LABELS,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { isReady } from '../../src/kube/state/workloadViews';
import { until } from './until';
import {
  HANDOFF_OF_LABEL,
  HELD_BACK_LABEL_ANNOTATION,
} from '../../src/kube/client/ferryKeys';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

const FLEET: FakeNodeSpec[] = zonalFleet({ spot: 1 });

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
  describe('a StatefulSet member whose claims are bound to volumes in zone a', () => {
    beforeAll(async () => {
      // Statically provisioned volumes, each mountable only in us-east-1a.
      for (let i = 0; i < 2; i++) {
        await core.createPersistentVolume({
          body: {
            metadata: { name: `zonal-${i}` },
            spec: {
              capacity: { storage: '1Gi' },
              accessModes: ['ReadWriteOnce'],
              storageClassName: 'zonal',
              hostPath: { path: `/data/zonal-${i}` },
              nodeAffinity: {
                required: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [
                        {
                          key: 'topology.kubernetes.io/zone',
                          operator: 'In',
                          values: ['us-east-1a'],
                        },
                      ],
                    },
                  ],
                },
              },
            },
          },
        });
      }
      await cluster
        .kubeConfig()
        .makeApiClient(AppsV1Api)
        .createNamespacedStatefulSet({
          namespace: NAMESPACE,
          body: {
            metadata: { name: 'stored' },
            spec: {
              replicas: 1,
              serviceName: 'stored',
              selector: { matchLabels: { app: 'stored' } },
              template: {
                metadata: { labels: { app: 'stored' } },
                spec: {
                  containers: [
                    {
                      name: 'valkey',
                      image: 'valkey/valkey:8',
                      volumeMounts: [{ name: 'data', mountPath: '/data' }],
                    },
                  ],
                },
              },
              volumeClaimTemplates: [
                {
                  metadata: { name: 'data' },
                  spec: {
                    accessModes: ['ReadWriteOnce'],
                    storageClassName: 'zonal',
                    resources: { requests: { storage: '1Gi' } },
                  },
                },
              ],
            },
          },
        });
      await until('stored-0 running with its claim bound', async () => {
        const pod = await read('stored-0').catch(() => undefined);
        return pod && isReady(pod) && pod;
      });
    });

    /** A Migration of stored-0 to `targetNode`, as its first step sees it. */
    function stepTo(targetNode: string): MigrationStepContext {
      const migration: Migration = {
        apiVersion: 'ferry.dev/v1alpha1',
        kind: 'Migration',
        metadata: { namespace: NAMESPACE, name: 'stored-0-notice', uid: 'u1' },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'stored' },
          pod: 'stored-0',
          sourceNode: 'spot-a',
          targetNode,
          reason: 'notice',
          driver: 'valkey',
        },
      };
      return {
        migration,
        state: {},
        clock: systemClock,
        signal: new AbortController().signal,
        addBytesMoved: () => {},
        recordWritePause: () => {},
        recordAtRisk: () => {},
        note: () => {},
      };
    }

    it('refuses a target in another zone before starting anything, naming the claim and the volume', async () => {
      const driver = new StatefulSetValkeyDriver({
        kubeConfig: cluster.kubeConfig(),
        namespace: NAMESPACE,
        member: 'stored-0',
        access: {},
        clock: systemClock,
      });
      const attempt = driver.prepareTarget(stepTo('on-demand-b'));
      await expect(attempt).rejects.toThrow(PermanentMigrationError);
      const claim = await core.readNamespacedPersistentVolumeClaim({
        namespace: NAMESPACE,
        name: 'data-stored-0',
      });
      await expect(attempt).rejects.toThrow(
        `${NAMESPACE}/stored-0 keeps claim data-stored-0, bound to volume ${
          claim.spec!.volumeName
        }, which only nodes with topology.kubernetes.io/zone In us-east-1a can mount; the target on-demand-b is not one`,
      );
      const started = await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `${HANDOFF_OF_LABEL}=stored-0`,
      });
      expect(started.items).toEqual([]);
    });

    it('starts the temporary member with the claim templates as emptyDir volumes, outside the selector', async () => {
      const members = new KubeValkeyMembers(bound('stored-0'));
      await members.startMember('stored-0-ferry-t5', 'on-demand-a');
      const temporary = await read('stored-0-ferry-t5');
      expect(temporary.spec!.volumes).toEqual(
        expect.arrayContaining([{ name: 'data', emptyDir: {} }]),
      );
      expect(temporary.spec!.volumes!.some(v => v.persistentVolumeClaim)).toBe(
        false,
      );
      expect(temporary.metadata!.labels).toMatchObject({
        [HANDOFF_OF_LABEL]: 'stored-0',
      });
      expect(temporary.metadata!.labels?.app).toBeUndefined();
      expect(
        temporary.metadata!.annotations?.[HELD_BACK_LABEL_ANNOTATION],
      ).toBe('app=stored');
      expect(temporary.metadata!.ownerReferences).toBeUndefined();
      await members.stopMember({
        name: 'stored-0-ferry-t5',
        node: 'on-demand-a',
        host: temporary.status!.podIP!,
        port: 6379,
      });
    });
  });
  it('refuses a StatefulSet member whose template keeps members on separate hosts, before starting anything', async () => {
    await cluster
      .kubeConfig()
      .makeApiClient(AppsV1Api)
      .createNamespacedStatefulSet({
        namespace: NAMESPACE,
        body: {
          metadata: { name: 'apart' },
          spec: {
            replicas: 1,
            serviceName: 'apart',
            selector: { matchLabels: { app: 'apart' } },
            template: {
              metadata: { labels: { app: 'apart' } },
              spec: {
                affinity: {
                  podAntiAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: [
                      {
                        topologyKey: 'kubernetes.io/hostname',
                        labelSelector: { matchLabels: { app: 'apart' } },
                      },
                    ],
                  },
                },
                containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
              },
            },
          },
        },
      });
    await until('apart-0 running', async () => {
      const pod = await read('apart-0').catch(() => undefined);
      return pod && isReady(pod) && pod;
    });
    const driver = new StatefulSetValkeyDriver({
      kubeConfig: cluster.kubeConfig(),
      namespace: NAMESPACE,
      member: 'apart-0',
      access: {},
      clock: systemClock,
    });
    const attempt = driver.prepareTarget({
      migration: {
        apiVersion: 'ferry.dev/v1alpha1',
        kind: 'Migration',
        metadata: { namespace: NAMESPACE, name: 'apart-0-notice', uid: 'u2' },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'apart' },
          pod: 'apart-0',
          sourceNode: 'spot-a',
          targetNode: 'on-demand-c',
          reason: 'notice',
          driver: 'valkey',
        },
      },
      state: {},
      clock: systemClock,
      signal: new AbortController().signal,
      addBytesMoved: () => {},
      recordWritePause: () => {},
      recordAtRisk: () => {},
      note: () => {},
    });
    await expect(attempt).rejects.toThrow(PermanentMigrationError);
    await expect(attempt).rejects.toThrow(
      /StatefulSet shop\/apart requires pod anti-affinity by kubernetes.io\/hostname against its own members.*set the SpotPolicy's migration to reschedule/,
    );
    const started = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: `${HANDOFF_OF_LABEL}=apart-0`,
    });
    expect(started.items).toEqual([]);
  });
});
