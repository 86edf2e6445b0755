/**
 * The CSI side of a cluster's storage, for the local control plane, which has
 * none: kwok runs no kubelet, no CSI driver, no external-provisioner and no
 * snapshot controller. Two parts:
 *
 * - `installSnapshotCrds`: minimal `snapshot.storage.k8s.io/v1` CRDs
 *   (VolumeSnapshot, VolumeSnapshotContent, VolumeSnapshotClass), structural
 *   schemas with only the fields used here. A real cluster gets the full ones
 *   from kubernetes-csi/external-snapshotter (`client/config/crd`), installed
 *   with its snapshot controller.
 * - `FakeCsiDriver`: a test-only stand-in for the driver, its provisioner and
 *   the snapshot controller. It provisions a claim of its StorageClass once a
 *   node is selected for it (by the scheduler, or by whoever restores it) as a
 *   volume in that node's zone, pre-bound to the claim (the PV controller
 *   finishes the binding); it marks a VolumeSnapshot ready with a
 *   VolumeSnapshotContent; it deletes Released volumes and the contents of
 *   deleted snapshots. A volume's "data" is a token in an annotation: a fresh
 *   volume gets a new one, a snapshot copies its volume's, a claim restored
 *   from a snapshot gets the snapshot's, so a test can tell which data a claim
 *   holds. It also plays the attach-detach controller and the
 *   external-attacher (the fake nodes are not attach-detach managed): a
 *   VolumeAttachment, attached, for every volume a running pod mounts, deleted
 *   a second after the last such pod was shut down.
 */
import type { KubeConfig, V1Node, V1Pod } from '@kubernetes/client-node';
import { apiRequest, KubeApiError } from '../../src/kube/client/apiRequest';
import { until } from './until';

/** The fake CSI driver's name. */
export const FAKE_CSI_DRIVER = 'csi.ferry.test';
/** The StorageClass whose claims the fake driver provisions. */
export const FAKE_STORAGE_CLASS = 'fake-zonal-ssd';
/** The volume's data, as far as the tests are concerned. */
export const DATA_ANNOTATION = 'test.ferry.dev/data';

const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
const SNAPSHOT_API = `/apis/${SNAPSHOT_GROUP}/v1`;
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const POLL_MS = 100;
/** How long a volume takes to detach once no pod uses it. */
export const DETACH_DELAY_MS = 1_000;

const anyObject = {
  type: 'object',
  'x-kubernetes-preserve-unknown-fields': true,
};

function crd(
  kind: string,
  plural: string,
  scope: 'Namespaced' | 'Cluster',
  properties: Record<string, unknown>,
  status: boolean,
) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${SNAPSHOT_GROUP}`,
      // *.k8s.io groups are reserved for approved APIs; the real CRDs carry the approval.
      annotations: {
        'api-approved.kubernetes.io':
          'https://github.com/kubernetes-csi/external-snapshotter/pull/814',
      },
    },
    spec: {
      group: SNAPSHOT_GROUP,
      scope,
      names: {
        kind,
        plural,
        singular: kind.toLowerCase(),
        listKind: `${kind}List`,
      },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: status ? { status: {} } : undefined,
          schema: {
            openAPIV3Schema: { type: 'object', properties },
          },
        },
      ],
    },
  };
}

/** Installs the minimal snapshot CRDs and waits until the API server serves them. */
export async function installSnapshotCrds(kc: KubeConfig): Promise<void> {
  const crds = [
    crd(
      'VolumeSnapshot',
      'volumesnapshots',
      'Namespaced',
      {
        spec: {
          type: 'object',
          required: ['source'],
          properties: {
            volumeSnapshotClassName: { type: 'string' },
            source: {
              type: 'object',
              properties: {
                persistentVolumeClaimName: { type: 'string' },
                volumeSnapshotContentName: { type: 'string' },
              },
            },
          },
        },
        status: anyObject,
      },
      true,
    ),
    crd(
      'VolumeSnapshotContent',
      'volumesnapshotcontents',
      'Cluster',
      { spec: anyObject, status: anyObject },
      true,
    ),
    crd(
      'VolumeSnapshotClass',
      'volumesnapshotclasses',
      'Cluster',
      {
        driver: { type: 'string' },
        deletionPolicy: { type: 'string', enum: ['Delete', 'Retain'] },
        parameters: {
          type: 'object',
          additionalProperties: { type: 'string' },
        },
      },
      false,
    ),
  ];
  for (const body of crds) {
    await apiRequest(
      kc,
      'POST',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      { body },
    );
  }
  for (const body of crds) {
    await until(
      `the CRD ${body.metadata.name} to be established`,
      async () => {
        const live = await apiRequest<{
          status?: { conditions?: { type: string; status: string }[] };
        }>(
          kc,
          'GET',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${body.metadata.name}`,
        );
        return live.status?.conditions?.some(
          c => c.type === 'Established' && c.status === 'True',
        );
      },
      { intervalMs: POLL_MS },
    );
  }
}

/** The fake driver's StorageClass (zonal, bound when a pod is scheduled) and a VolumeSnapshotClass for it. */
export async function createFakeStorageClasses(
  kc: KubeConfig,
  options: { snapshotClass: boolean },
): Promise<void> {
  await apiRequest(kc, 'POST', '/apis/storage.k8s.io/v1/storageclasses', {
    body: {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: FAKE_STORAGE_CLASS },
      provisioner: FAKE_CSI_DRIVER,
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    },
  });
  if (options.snapshotClass) await createFakeSnapshotClass(kc);
}

/** The VolumeSnapshotClass of the fake driver. */
export async function createFakeSnapshotClass(kc: KubeConfig): Promise<void> {
  await apiRequest(kc, 'POST', `${SNAPSHOT_API}/volumesnapshotclasses`, {
    body: {
      apiVersion: `${SNAPSHOT_GROUP}/v1`,
      kind: 'VolumeSnapshotClass',
      metadata: { name: 'fake-snapshots' },
      driver: FAKE_CSI_DRIVER,
      deletionPolicy: 'Delete',
    },
  });
}

interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
}

interface Claim {
  metadata: Meta;
  spec: {
    storageClassName?: string;
    volumeName?: string;
    accessModes?: string[];
    resources?: { requests?: Record<string, string> };
    dataSource?: { kind: string; name: string };
  };
  status?: { phase?: string };
}

interface Volume {
  metadata: Meta;
  spec: { csi?: { driver: string; volumeHandle: string } };
  status?: { phase?: string };
}

interface Snapshot {
  metadata: Meta;
  spec: { source: { persistentVolumeClaimName?: string } };
  status?: { readyToUse?: boolean };
}

interface Attachment {
  metadata: Meta;
  spec: { attacher: string; nodeName: string };
}

interface Content {
  metadata: Meta;
  spec: { volumeSnapshotRef: { namespace: string; name: string; uid: string } };
}

/** Plays the CSI driver, its provisioner and the snapshot controller for one namespace. */
export class FakeCsiDriver {
  private stopped = false;
  /** When each attachment's last pod was gone. */
  private readonly unusedSince = new Map<string, number>();
  private loop?: Promise<void>;
  private tokens = 0;
  /** What went wrong in a pass, for a failing test's message. */
  readonly errors: string[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.pass();
        } catch (error) {
          this.errors.push(String(error));
        }
        await new Promise(resolve => setTimeout(resolve, POLL_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The data token of the volume a claim is bound to. */
  async dataOf(claim: string): Promise<string | undefined> {
    const found = await this.get<Claim>(this.claimsPath(claim));
    if (!found?.spec.volumeName || found.status?.phase !== 'Bound')
      return undefined;
    const volume = await this.get<Volume>(
      `/api/v1/persistentvolumes/${found.spec.volumeName}`,
    );
    return volume?.metadata.annotations?.[DATA_ANNOTATION];
  }

  private claimsPath(name = ''): string {
    return `/api/v1/namespaces/${this.namespace}/persistentvolumeclaims${
      name ? `/${name}` : ''
    }`;
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      return await apiRequest<T>(this.kc, 'GET', path);
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 404) return undefined;
      throw error;
    }
  }

  private async pass(): Promise<void> {
    const claims = (
      await apiRequest<{ items: Claim[] }>(this.kc, 'GET', this.claimsPath())
    ).items;
    const volumes = (
      await apiRequest<{ items: Volume[] }>(
        this.kc,
        'GET',
        '/api/v1/persistentvolumes',
      )
    ).items.filter(v => v.spec.csi?.driver === FAKE_CSI_DRIVER);
    const snapshots = (
      await apiRequest<{ items: Snapshot[] }>(
        this.kc,
        'GET',
        `${SNAPSHOT_API}/namespaces/${this.namespace}/volumesnapshots`,
      )
    ).items;
    const contents = (
      await apiRequest<{ items: Content[] }>(
        this.kc,
        'GET',
        `${SNAPSHOT_API}/volumesnapshotcontents`,
      )
    ).items;

    for (const claim of claims) {
      if (claim.spec.storageClassName !== FAKE_STORAGE_CLASS) continue;
      if (claim.spec.volumeName || claim.metadata.deletionTimestamp) continue;
      const node = claim.metadata.annotations?.[SELECTED_NODE];
      if (!node) continue;
      if (volumes.some(v => v.metadata.name === `pvc-${claim.metadata.uid}`))
        continue;
      await this.provision(claim, node, contents);
    }

    await this.attach(claims);

    for (const snapshot of snapshots) {
      if (snapshot.status?.readyToUse || snapshot.metadata.deletionTimestamp)
        continue;
      await this.takeSnapshot(snapshot, claims, volumes);
    }

    // The external-provisioner deletes a Released volume of reclaim policy Delete.
    for (const volume of volumes) {
      if (volume.status?.phase === 'Released') {
        await this.delete(`/api/v1/persistentvolumes/${volume.metadata.name}`);
      }
    }
    // The snapshot controller deletes the content of a deleted snapshot (deletionPolicy Delete).
    for (const content of contents) {
      const ref = content.spec.volumeSnapshotRef;
      const live = snapshots.find(
        s => s.metadata.name === ref.name && s.metadata.uid === ref.uid,
      );
      if (ref.namespace === this.namespace && !live) {
        await this.delete(
          `${SNAPSHOT_API}/volumesnapshotcontents/${content.metadata.name}`,
        );
      }
    }
  }

  /**
   * Plays the attach-detach controller and the external-attacher: a volume is
   * attached to the node of every scheduled pod that mounts its claim and has
   * not been shut down by its kubelet, and detached `DETACH_DELAY_MS` after the
   * last such pod is gone, as a cloud disk takes a while to detach.
   */
  private async attach(claims: Claim[]): Promise<void> {
    const pods = (
      await apiRequest<{ items: V1Pod[] }>(
        this.kc,
        'GET',
        `/api/v1/namespaces/${this.namespace}/pods`,
      )
    ).items;
    const attachments = (
      await apiRequest<{ items: Attachment[] }>(
        this.kc,
        'GET',
        '/apis/storage.k8s.io/v1/volumeattachments',
      )
    ).items.filter(a => a.spec.attacher === FAKE_CSI_DRIVER);
    const wanted = new Map<string, { volume: string; node: string }>();
    for (const pod of pods) {
      const shutDown =
        pod.metadata?.deletionTimestamp &&
        pod.metadata.deletionGracePeriodSeconds === 0;
      if (!pod.spec?.nodeName || shutDown) continue;
      for (const volume of pod.spec.volumes ?? []) {
        const claim = claims.find(
          c => c.metadata.name === volume.persistentVolumeClaim?.claimName,
        );
        if (!claim?.spec.volumeName) continue;
        const name = `csi-${claim.spec.volumeName}-${pod.spec.nodeName}`;
        wanted.set(name, {
          volume: claim.spec.volumeName,
          node: pod.spec.nodeName,
        });
      }
    }
    for (const [name, { volume, node }] of wanted) {
      this.unusedSince.delete(name);
      if (attachments.some(a => a.metadata.name === name)) continue;
      await apiRequest(
        this.kc,
        'POST',
        '/apis/storage.k8s.io/v1/volumeattachments',
        {
          body: {
            apiVersion: 'storage.k8s.io/v1',
            kind: 'VolumeAttachment',
            metadata: { name },
            spec: {
              attacher: FAKE_CSI_DRIVER,
              nodeName: node,
              source: { persistentVolumeName: volume },
            },
          },
        },
      );
      await apiRequest(
        this.kc,
        'PATCH',
        `/apis/storage.k8s.io/v1/volumeattachments/${name}/status`,
        {
          contentType: 'application/merge-patch+json',
          body: { status: { attached: true } },
        },
      );
    }
    for (const attachment of attachments) {
      const name = attachment.metadata.name;
      if (wanted.has(name)) continue;
      const since = this.unusedSince.get(name) ?? Date.now();
      this.unusedSince.set(name, since);
      if (Date.now() - since >= DETACH_DELAY_MS) {
        await this.delete(`/apis/storage.k8s.io/v1/volumeattachments/${name}`);
        this.unusedSince.delete(name);
      }
    }
  }

  private async provision(
    claim: Claim,
    nodeName: string,
    contents: Content[],
  ): Promise<void> {
    let data = `data-${++this.tokens}-of-${claim.metadata.name}`;
    const source = claim.spec.dataSource;
    if (source?.kind === 'VolumeSnapshot') {
      const content = contents.find(
        c =>
          c.spec.volumeSnapshotRef.namespace === this.namespace &&
          c.spec.volumeSnapshotRef.name === source.name,
      );
      // Not ready yet: the provisioner waits for the snapshot.
      if (!content) return;
      data = content.metadata.annotations![DATA_ANNOTATION];
    }
    const node = await apiRequest<V1Node>(
      this.kc,
      'GET',
      `/api/v1/nodes/${nodeName}`,
    );
    const zone = node.metadata!.labels!['topology.kubernetes.io/zone'];
    await apiRequest(this.kc, 'POST', '/api/v1/persistentvolumes', {
      body: {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: {
          name: `pvc-${claim.metadata.uid}`,
          annotations: {
            'pv.kubernetes.io/provisioned-by': FAKE_CSI_DRIVER,
            [DATA_ANNOTATION]: data,
          },
        },
        spec: {
          capacity: {
            storage: claim.spec.resources?.requests?.storage ?? '1Gi',
          },
          accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: FAKE_STORAGE_CLASS,
          claimRef: {
            namespace: this.namespace,
            name: claim.metadata.name,
            uid: claim.metadata.uid,
          },
          csi: {
            driver: FAKE_CSI_DRIVER,
            volumeHandle: `vol-${claim.metadata.uid}`,
          },
          nodeAffinity: {
            required: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    {
                      key: 'topology.kubernetes.io/zone',
                      operator: 'In',
                      values: [zone],
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

  private async takeSnapshot(
    snapshot: Snapshot,
    claims: Claim[],
    volumes: Volume[],
  ): Promise<void> {
    const claim = claims.find(
      c => c.metadata.name === snapshot.spec.source.persistentVolumeClaimName,
    );
    const volume = volumes.find(
      v => v.metadata.name === claim?.spec.volumeName,
    );
    if (!claim || !volume) return;
    const name = `snapcontent-${snapshot.metadata.uid}`;
    const existing = await this.get(
      `${SNAPSHOT_API}/volumesnapshotcontents/${name}`,
    );
    if (!existing) {
      await apiRequest(
        this.kc,
        'POST',
        `${SNAPSHOT_API}/volumesnapshotcontents`,
        {
          body: {
            apiVersion: `${SNAPSHOT_GROUP}/v1`,
            kind: 'VolumeSnapshotContent',
            metadata: {
              name,
              annotations: {
                [DATA_ANNOTATION]:
                  volume.metadata.annotations?.[DATA_ANNOTATION] ?? '',
              },
            },
            spec: {
              driver: FAKE_CSI_DRIVER,
              deletionPolicy: 'Delete',
              source: { volumeHandle: volume.spec.csi!.volumeHandle },
              volumeSnapshotRef: {
                namespace: this.namespace,
                name: snapshot.metadata.name,
                uid: snapshot.metadata.uid,
              },
            },
          },
        },
      );
    }
    await apiRequest(
      this.kc,
      'PATCH',
      `${SNAPSHOT_API}/namespaces/${this.namespace}/volumesnapshots/${snapshot.metadata.name}/status`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          status: {
            readyToUse: true,
            boundVolumeSnapshotContentName: name,
            restoreSize: claim.spec.resources?.requests?.storage,
            creationTime: new Date().toISOString(),
          },
        },
      },
    );
  }

  private async delete(path: string): Promise<void> {
    try {
      await apiRequest(this.kc, 'DELETE', path);
    } catch (error) {
      if (!(error instanceof KubeApiError && error.code === 404)) throw error;
    }
  }
}

/** Pods of the namespace that mount the claim, for a failing test's message. */
export function mounting(pods: V1Pod[], claim: string): string[] {
  return pods
    .filter(p =>
      p.spec?.volumes?.some(v => v.persistentVolumeClaim?.claimName === claim),
    )
    .map(
      p =>
        `${p.metadata?.name}@${p.spec?.nodeName ?? '-'}${
          p.metadata?.deletionTimestamp ? ' (terminating)' : ''
        }`,
    );
}
