/**
 * The `volume` method for a StatefulSet member on a real control plane
 * (`KubeVolumeDriver`, as src/main.ts wires it): a Migration of `cache-0`,
 * whose claim `data-cache-0` is a zonal volume,
 *
 * - within the volume's zone: the member is held, its volume detaches, the
 *   StatefulSet recreates it on the target (pinned by the placement webhook)
 *   with the same claim, never attached to two nodes at once; no snapshot;
 * - across zones: a snapshot while it serves, the member held, a final
 *   snapshot once the volume is detached, the claim replaced by one of the
 *   same name restored in the target zone, the recreated member on the target
 *   mounting it, the snapshots deleted after; at no moment is the claim gone
 *   without a ready snapshot of it, and the StatefulSet never creates an
 *   empty claim;
 * - with no VolumeSnapshotClass for the claim's CSI driver: rolled back with
 *   a message that says so, the member and its claim untouched;
 * - across zones again, and once with the operator stopped as the claim is
 *   replaced: the next leader finishes the move with the data.
 *
 * There is no CSI driver on kwok: `FakeCsiDriver` (fakeCsi.ts) plays the
 * driver, its provisioner, its attacher and the snapshot controller, over
 * minimal snapshot.storage.k8s.io CRDs (the real ones come from
 * kubernetes-csi/external-snapshotter); the StatefulSet controller, the PV
 * controller, the PVC protection controller and the scheduler are the real
 * ones.
 */
import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { FERRY_API_VERSION, Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { KubeVolumeDriver } from '../../src/kube/runtimes/volume/KubeVolumeDriver';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { MIGRATIONS, SPOT_POLICIES } from '../../src/kube/client/resources';
import {
  createFakeStorageClasses,
  createFakeSnapshotClass,
  FAKE_STORAGE_CLASS,
  FakeCsiDriver,
  installSnapshotCrds,
  mounting,
} from './fakeCsi';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { registerFerryWebhooks } from './ferryWebhooks';
import { LocalControlPlane } from './LocalControlPlane';
import { isReady } from '../../src/kube/state/workloadViews';
import {
  RESTORED_BY_ANNOTATION,
  RESTORED_FROM_ANNOTATION,
  VOLUME_MOVE_FINALIZER,
} from '../../src/kube/client/ferryKeys';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(120_000);

const NAMESPACE = 'shop';
const MEMBER = 'cache-0';
const CLAIM = 'data-cache-0';
const CLAIM_SIZE = '1Gi';
const SNAPSHOTS = `/apis/snapshot.storage.k8s.io/v1/namespaces/${NAMESPACE}/volumesnapshots`;

/** Two spot nodes and one on-demand node in each of three zones. */
const FLEET: FakeNodeSpec[] = zonalFleet();

function zoneOf(node: string): string {
  return FLEET.find(n => n.name === node)!.zone;
}

interface VolumeAttachment {
  spec: { nodeName: string; source: { persistentVolumeName?: string } };
  status?: { attached?: boolean };
}

interface ClaimObject {
  metadata: {
    uid: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: { volumeName?: string };
  status?: { phase?: string };
}

describe('the volume method for a StatefulSet member, on a real control plane', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let operator: KubeOperator;
  let csi: FakeCsiDriver;
  const warnings: string[] = [];

  const kc = () => cluster.kubeConfig();

  async function member(): Promise<V1Pod | undefined> {
    try {
      return await core.readNamespacedPod({
        namespace: NAMESPACE,
        name: MEMBER,
      });
    } catch {
      return undefined;
    }
  }

  async function claim(): Promise<ClaimObject | undefined> {
    try {
      return await apiRequest<ClaimObject>(
        kc(),
        'GET',
        `/api/v1/namespaces/${NAMESPACE}/persistentvolumeclaims/${CLAIM}`,
      );
    } catch {
      return undefined;
    }
  }

  async function snapshots(): Promise<
    { metadata: { name: string }; status?: { readyToUse?: boolean } }[]
  > {
    return (await apiRequest(kc(), 'GET', SNAPSHOTS)).items;
  }

  async function volumeZone(name: string): Promise<string | undefined> {
    const volume = await apiRequest(
      kc(),
      'GET',
      `/api/v1/persistentvolumes/${name}`,
    );
    return volume.spec.nodeAffinity.required.nodeSelectorTerms[0]
      .matchExpressions[0].values[0];
  }

  async function state(): Promise<string> {
    const pods = (await core.listNamespacedPod({ namespace: NAMESPACE })).items;
    return JSON.stringify({
      member: pods.map(
        p => `${p.metadata?.name}@${p.spec?.nodeName} ${p.status?.phase}`,
      ),
      mounting: mounting(pods, CLAIM),
      claim: await claim(),
      snapshots: await snapshots(),
      csi: csi.errors.slice(-3),
      warnings: warnings.slice(-3),
    });
  }

  /** Creates the Migration of the member to the target node and waits until it finished. */
  async function migrate(
    name: string,
    targetNode: string,
    meanwhile: () => Promise<void> = async () => {},
  ): Promise<Migration> {
    const source = (await member())!.spec!.nodeName!;
    await apiRequest(kc(), 'POST', collectionPath(MIGRATIONS, NAMESPACE), {
      body: {
        apiVersion: FERRY_API_VERSION,
        kind: 'Migration',
        metadata: { name },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'cache' },
          pod: MEMBER,
          sourceNode: source,
          targetNode,
          reason: 'drain',
          driver: 'volume',
        },
      },
    });
    await meanwhile();
    return until(
      `Migration ${name} to finish`,
      async () => {
        const found = await apiRequest<Migration>(
          kc(),
          'GET',
          `${collectionPath(MIGRATIONS, NAMESPACE)}/${name}`,
        );
        return ['Succeeded', 'RolledBack', 'Failed'].includes(
          found.status?.phase ?? '',
        )
          ? found
          : undefined;
      },
      { detail: state, timeoutMs: 90_000 },
    );
  }

  /** The nodes the volume is attached to. */
  async function attachedNodes(volume: string): Promise<string[]> {
    const attachments = await apiRequest(
      kc(),
      'GET',
      '/apis/storage.k8s.io/v1/volumeattachments',
    );
    return attachments.items
      .filter(
        (a: VolumeAttachment) =>
          a.spec.source.persistentVolumeName === volume && a.status?.attached,
      )
      .map((a: VolumeAttachment) => a.spec.nodeName);
  }

  /** Runs `sample` every 50 ms until stopped. */
  function watchWhile(sample: () => Promise<void>): {
    stop(): Promise<void>;
  } {
    let watching = true;
    const loop = (async () => {
      while (watching) {
        await sample();
        await new Promise(resolve => setTimeout(resolve, 50));
      }
    })();
    return {
      async stop() {
        watching = false;
        await loop;
      },
    };
  }

  async function readyOn(node: string): Promise<V1Pod> {
    return until(
      `${MEMBER} ready on ${node}`,
      async () => {
        const pod = await member();
        return pod &&
          !pod.metadata?.deletionTimestamp &&
          pod.spec?.nodeName === node &&
          isReady(pod)
          ? pod
          : undefined;
      },
      { detail: state, timeoutMs: 90_000 },
    );
  }

  /**
   * An operator replica as src/main.ts wires the volume method, with its
   * webhooks registered (replacing an earlier replica's).
   */
  async function startOperator(identity: string): Promise<KubeOperator> {
    const started = new KubeOperator({
      kubeConfig: kc(),
      identity,
      lease: { namespace: 'ferry-system', name: 'ferry-leader' },
      drivers: [
        new KubeVolumeDriver({
          kubeConfig: kc(),
          clock: systemClock,
          pollMs: 200,
        }),
      ],
      pools: async () => poolsOf(FLEET),
      metrics: new OperatorMetrics({ processMetrics: false }),
      webhook: {
        tls: cluster.issueServingCertificate('webhook'),
        host: '127.0.0.1',
        port: 0,
      },
      log: { info: () => {}, warn: message => warnings.push(message) },
    });
    await started.start();
    for (const kind of [
      'mutatingwebhookconfigurations',
      'validatingwebhookconfigurations',
    ]) {
      await apiRequest(
        kc(),
        'DELETE',
        `/apis/admissionregistration.k8s.io/v1/${kind}/ferry`,
      ).catch(() => undefined);
    }
    await registerFerryWebhooks(kc(), started.webhookPort!, cluster.caPem);
    return started;
  }

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    core = kc().makeApiClient(CoreV1Api);
    await installFerryCrds(kc());
    await installSnapshotCrds(kc());
    await createFakeStorageClasses(kc(), { snapshotClass: true });
    await createFakeNodes(kc(), FLEET);
    for (const name of [NAMESPACE, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    csi = new FakeCsiDriver(kc(), NAMESPACE);
    csi.start();
    operator = await startOperator('operator-0');

    await apiRequest(kc(), 'POST', collectionPath(SPOT_POLICIES, NAMESPACE), {
      body: {
        apiVersion: FERRY_API_VERSION,
        kind: 'SpotPolicy',
        metadata: { name: 'cache' },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'cache' },
          migration: 'volume',
        },
      },
    });
    await kc()
      .makeApiClient(AppsV1Api)
      .createNamespacedStatefulSet({
        namespace: NAMESPACE,
        body: {
          metadata: { name: 'cache' },
          spec: {
            replicas: 1,
            serviceName: 'cache',
            selector: { matchLabels: { app: 'cache' } },
            template: {
              metadata: { labels: { app: 'cache' } },
              spec: {
                containers: [
                  {
                    name: 'valkey',
                    image: 'valkey/valkey:8',
                    resources: { requests: { cpu: '100m', memory: '256Mi' } },
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
                  storageClassName: FAKE_STORAGE_CLASS,
                  resources: { requests: { storage: CLAIM_SIZE } },
                },
              },
            ],
          },
        },
      });
    await until(
      "the opted-in StatefulSet in the operator's state",
      () => operator.state.workloads().length === 1,
      { timeoutMs: 90_000 },
    );
    await until(
      `${MEMBER} running on its claim`,
      async () => {
        const pod = await member();
        return (
          pod && isReady(pod) && (await claim())?.status?.phase === 'Bound'
        );
      },
      { detail: state, timeoutMs: 90_000 },
    );
  }, 240_000);

  afterAll(async () => {
    await operator?.stop();
    await csi?.stop();
    await cluster?.stop();
  });

  it("moves the member within its volume's zone by re-attaching the claim: no snapshot", async () => {
    const before = (await member())!;
    const source = before.spec!.nodeName!;
    const target = FLEET.find(
      n => n.zone === zoneOf(source) && n.name !== source,
    )!.name;
    const claimBefore = (await claim())!;
    const data = await csi.dataOf(CLAIM);

    // ReadWriteOnce: the volume is never attached to two nodes at once.
    const doublyAttached: string[][] = [];
    const watch = watchWhile(async () => {
      const nodes = await attachedNodes(claimBefore.spec.volumeName!);
      if (nodes.length > 1) doublyAttached.push(nodes);
    });
    const done = await migrate('cache-0-within-zone', target);
    await watch.stop();

    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    expect(done.status?.driverState?.mode).toBe('reattach');
    expect(done.status?.bytesMoved).toBe(0);
    const after = await readyOn(target);
    expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
    expect(after.metadata!.finalizers ?? []).not.toContain(
      VOLUME_MOVE_FINALIZER,
    );
    // The same claim and volume, the same data; no snapshot was taken.
    expect((await claim())!.metadata.uid).toBe(claimBefore.metadata.uid);
    expect(await csi.dataOf(CLAIM)).toBe(data);
    expect(await snapshots()).toEqual([]);
    expect(doublyAttached).toEqual([]);
    expect(await attachedNodes(claimBefore.spec.volumeName!)).toEqual([target]);
  });

  it('moves the member across zones: snapshot, a claim of the same name restored in the target zone, the snapshots deleted after', async () => {
    const before = (await member())!;
    const source = before.spec!.nodeName!;
    const target = FLEET.find(
      n => n.zone !== zoneOf(source) && n.capacityType === 'spot',
    )!;
    const claimBefore = (await claim())!;
    const data = await csi.dataOf(CLAIM);
    expect(data).toBeDefined();

    // Watches the claim while the move runs: the data's only copy between the
    // old claim's deletion and the restore is the final snapshot.
    const unsafe: string[] = [];
    const strangers: string[] = [];
    // The final snapshot is taken of a volume no node has attached any more.
    const snapshotWhileAttached: string[][] = [];
    const watch = watchWhile(async () => {
      const current = await claim();
      const taken = await snapshots();
      const ready = taken.filter(s => s.status?.readyToUse);
      if (!current && ready.length === 0) {
        unsafe.push('claim gone with no ready snapshot');
      }
      if (
        current &&
        current.metadata.uid !== claimBefore.metadata.uid &&
        !current.metadata.annotations?.[RESTORED_FROM_ANNOTATION]
      ) {
        strangers.push(current.metadata.uid);
      }
      const attached = await attachedNodes(claimBefore.spec.volumeName!);
      if (
        attached.length > 0 &&
        taken.some(s => s.metadata.name === `${CLAIM}-ferry-final`)
      ) {
        snapshotWhileAttached.push(attached);
      }
    });
    const done = await migrate('cache-0-across-zones', target.name);
    await watch.stop();

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
    expect(done.status?.driverState).toMatchObject({
      mode: 'snapshot',
      targetZone: target.zone,
      preSnapshot: `${CLAIM}-ferry-pre`,
      finalSnapshot: `${CLAIM}-ferry-final`,
    });
    expect(done.status?.bytesMoved).toBe(2 ** 30);

    // The recreated member runs on the target and mounts a claim of the same
    // name, restored from the final snapshot into a volume in the target zone,
    // holding the data the old volume held.
    const after = await readyOn(target.name);
    expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
    const restored = (await claim())!;
    expect(restored.metadata.uid).not.toBe(claimBefore.metadata.uid);
    expect(restored.metadata.annotations).toMatchObject({
      [RESTORED_FROM_ANNOTATION]: `${CLAIM}-ferry-final`,
      [RESTORED_BY_ANNOTATION]: 'cache-0-across-zones',
    });
    expect(await volumeZone(restored.spec.volumeName!)).toBe(target.zone);
    expect(await csi.dataOf(CLAIM)).toBe(data);
    // The old volume is released and deleted; the snapshots are gone.
    await until(
      'the old volume to be deleted',
      async () => {
        try {
          await apiRequest(
            kc(),
            'GET',
            `/api/v1/persistentvolumes/${claimBefore.spec.volumeName}`,
          );
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 90_000 },
    );
    expect(await snapshots()).toEqual([]);
    expect({ unsafe, strangers, snapshotWhileAttached }).toEqual({
      unsafe: [],
      strangers: [],
      snapshotWhileAttached: [],
    });
  });

  it("rolls back with no VolumeSnapshotClass for the claim's CSI driver, the member and its claim untouched", async () => {
    await apiRequest(
      kc(),
      'DELETE',
      '/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses/fake-snapshots',
    );
    const before = (await member())!;
    const source = before.spec!.nodeName!;
    const target = FLEET.find(
      n => n.zone !== zoneOf(source) && n.capacityType === 'spot',
    )!;
    const claimBefore = (await claim())!;
    const data = await csi.dataOf(CLAIM);

    const done = await migrate('cache-0-no-snapshot-class', target.name);

    expect(done.status?.phase).toBe('RolledBack');
    expect(done.status?.failedPhase).toBe('PreparingTarget');
    expect(done.status?.message).toContain(
      'no VolumeSnapshotClass for CSI driver csi.ferry.test',
    );
    const after = (await member())!;
    expect({
      uid: after.metadata!.uid,
      node: after.spec!.nodeName,
      deleting: Boolean(after.metadata!.deletionTimestamp),
      finalizers: after.metadata!.finalizers ?? [],
    }).toEqual({
      uid: before.metadata!.uid,
      node: source,
      deleting: false,
      finalizers: [],
    });
    expect((await claim())!.metadata.uid).toBe(claimBefore.metadata.uid);
    expect(await csi.dataOf(CLAIM)).toBe(data);
    expect(await snapshots()).toEqual([]);
  });

  it("moves the same member across zones again, with the class back: its earlier restore is this move's original", async () => {
    await createFakeSnapshotClass(kc());
    const source = (await member())!.spec!.nodeName!;
    const target = FLEET.find(
      n => n.zone !== zoneOf(source) && n.capacityType === 'spot',
    )!;
    const claimBefore = (await claim())!;
    const data = await csi.dataOf(CLAIM);

    const done = await migrate('cache-0-across-zones-again', target.name);

    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    await readyOn(target.name);
    const restored = (await claim())!;
    expect(restored.metadata.uid).not.toBe(claimBefore.metadata.uid);
    expect(restored.metadata.annotations?.[RESTORED_BY_ANNOTATION]).toBe(
      'cache-0-across-zones-again',
    );
    expect(await volumeZone(restored.spec.volumeName!)).toBe(target.zone);
    expect(await csi.dataOf(CLAIM)).toBe(data);
    expect(await snapshots()).toEqual([]);
  });

  it('finishes a move across zones in the next leader when the operator stops as the old claim is deleted', async () => {
    const source = (await member())!.spec!.nodeName!;
    const target = FLEET.find(
      n => n.zone !== zoneOf(source) && n.capacityType === 'spot',
    )!;
    const claimBefore = (await claim())!;
    const data = await csi.dataOf(CLAIM);

    // Wherever in the claim's replacement the stop lands (the old claim being
    // deleted, gone, or the restored one just made), the next leader resumes.
    let stoppedAt = '';
    const done = await migrate('cache-0-resumed', target.name, async () => {
      for (;;) {
        const current = await claim();
        if (!current) stoppedAt = 'the claim gone';
        else if (current.metadata.deletionTimestamp)
          stoppedAt = 'the claim being deleted';
        else if (current.metadata.uid !== claimBefore.metadata.uid)
          stoppedAt = 'the claim restored';
        if (stoppedAt) break;
        await new Promise(resolve => setTimeout(resolve, 10));
      }
      await operator.stop();
      operator = await startOperator('operator-1');
    });

    expect(stoppedAt).not.toBe('');
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    await readyOn(target.name);
    const restored = (await claim())!;
    expect(restored.metadata.annotations?.[RESTORED_BY_ANNOTATION]).toBe(
      'cache-0-resumed',
    );
    expect(await volumeZone(restored.spec.volumeName!)).toBe(target.zone);
    expect(await csi.dataOf(CLAIM)).toBe(data);
    expect(await snapshots()).toEqual([]);
  });
});
