/**
 * The volume driver on a cluster: `KubeVolumes` is its `VolumeRuntime` over
 * PersistentVolumeClaims, PersistentVolumes, VolumeAttachments and CSI
 * VolumeSnapshots (`snapshot.storage.k8s.io/v1`), for the members of a
 * StatefulSet; `KubeVolumeDriver` binds one to each Migration.
 *
 * A StatefulSet member's claim (`data-cache-1`) has a name the StatefulSet
 * recreates its pod with, so the data cannot move to a claim of another name:
 * across zones the runtime replaces the claim by one of the same name restored
 * from the final snapshot. Two things keep the StatefulSet controller out of
 * the way while it does:
 *
 * - **The old incarnation is held.** `stopPod` puts the finalizer
 *   `ferry.dev/volume-move` on the member, then deletes it. Its containers stop
 *   and its volume detaches, but the object stays (terminating): the controller
 *   neither recreates the member nor creates an empty claim for it until
 *   `startPod` lets it go. Released earlier, the recreation would be pinned to
 *   the target by the placement webhook and, its claim gone for a moment, the
 *   controller would create an empty `data-cache-1` before the restore could.
 * - **The snapshot is kept** until the restored claim is bound and the member
 *   is ready on it (the driver deletes snapshots only in CleaningUp): from the
 *   old claim's deletion on, the final snapshot is the data's only copy.
 *
 * The driver names the restored claim `<claim>-<zone>`; here that name stands
 * for "the member's claim, restored" and the object is `<claim>`, annotated
 * with the snapshot it came from and the Migration that restored it, which is
 * how every step tells the restored claim from the original after a restart.
 */
import type {
  KubeConfig,
  V1PersistentVolume,
  V1Pod,
} from '@kubernetes/client-node';
import type { Migration } from '../../../api/v1alpha1';
import { NODE_LABELS } from '../../../cloud/nodeLabels';
import type { Clock } from '../../../core/clock';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  sleep,
} from '../../../migration/MigrationDriver';
import {
  ClaimInfo,
  VOLUME_POLL_MS,
  VOLUME_WAIT_TIMEOUT_MS,
  VolumeDriver,
  VolumeRuntime,
} from '../../../migration/volume/VolumeDriver';
import { apiRequest, isNotFound, KubeApiError } from '../../client/apiRequest';
import { isReady } from '../../state/workloadViews';
import { memoryMiBOf } from '../../state/nodeViews';
import {
  RESTORED_BY_ANNOTATION,
  RESTORED_FROM_ANNOTATION,
  SNAPSHOT_MIGRATION_ANNOTATION,
  VOLUME_MOVE_FINALIZER,
} from '../../client/ferryKeys';

/** The annotation a VolumeSnapshotClass is the default for its driver with. */
const DEFAULT_SNAPSHOT_CLASS_ANNOTATION =
  'snapshot.storage.kubernetes.io/is-default-class';
/**
 * The node the provisioner creates a claim's volume for (the scheduler's own
 * annotation for WaitForFirstConsumer classes): the restored volume lands in
 * that node's zone.
 */
const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node';
/** The PVC protection controller's finalizer on every claim. */
const PVC_PROTECTION_FINALIZER = 'kubernetes.io/pvc-protection';
/** A node's zone label before `topology.kubernetes.io/zone` existed. */
const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone';
const SNAPSHOT_GROUP_VERSION = 'snapshot.storage.k8s.io/v1';
const SNAPSHOT_API = `/apis/${SNAPSHOT_GROUP_VERSION}`;

interface ObjectMeta {
  name?: string;
  uid?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  creationTimestamp?: string;
}

interface Claim {
  metadata: ObjectMeta;
  spec: {
    volumeName?: string;
    storageClassName?: string;
    accessModes?: string[];
    volumeMode?: string;
    resources?: { requests?: Record<string, string> };
  };
  status?: { phase?: string; capacity?: Record<string, string> };
}

interface VolumeSnapshot {
  metadata: ObjectMeta;
  spec: { source: { persistentVolumeClaimName?: string } };
  status?: {
    readyToUse?: boolean;
    restoreSize?: string;
    error?: { message?: string };
  };
}

interface VolumeSnapshotClass {
  metadata: ObjectMeta;
  driver: string;
}

interface VolumeAttachment {
  spec: { source: { persistentVolumeName?: string }; nodeName: string };
  status?: { attached?: boolean };
}

async function orUndefined<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * The zone a volume lives in, from its node affinity: `topology.kubernetes.io/zone`
 * or a CSI driver's own zone key (`topology.ebs.csi.aws.com/zone`,
 * `topology.gke.io/zone`); undefined for a volume every zone reaches, or one
 * several zones reach (a regional disk).
 */
export function zoneOfVolume(
  volume: Pick<V1PersistentVolume, 'spec'>,
): string | undefined {
  const terms = volume.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
  const zones = new Set<string>();
  for (const term of terms) {
    for (const expression of term.matchExpressions ?? []) {
      // The well-known label, its legacy form and CSI drivers' own keys all end so.
      const zonal = expression.key.endsWith('/zone');
      if (zonal && expression.operator === 'In') {
        for (const value of expression.values ?? []) zones.add(value);
      }
    }
  }
  return zones.size === 1 ? [...zones][0] : undefined;
}

/** A pod that still runs, or may: scheduled, not finished, and not shut down by its kubelet. */
function mayRun(pod: V1Pod): boolean {
  if (!pod.spec?.nodeName) return false;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
    return false;
  }
  // The kubelet deletes a pod with grace 0 once its containers stopped and its
  // volumes are unmounted (the PVC protection controller reads it the same way).
  return !(
    pod.metadata?.deletionTimestamp &&
    pod.metadata.deletionGracePeriodSeconds === 0
  );
}

function claimNamesOf(pod: V1Pod): string[] {
  return (pod.spec?.volumes ?? [])
    .map(v => v.persistentVolumeClaim?.claimName)
    .filter((name): name is string => Boolean(name));
}

/** What one member's runtime is bound to. */
export interface KubeVolumesOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The Migration's name: the runtime's snapshots carry it. */
  migration: string;
  sourceNode: string;
  targetNode: string;
  /** The member: a StatefulSet's pod (`cache-1`). */
  member: string;
  /** The member's StatefulSet, whose claim template a restored claim follows. */
  statefulSet: string;
  /** The uid of the member's incarnation being moved: only it is ever stopped. */
  sourcePodUid: string;
  /** The member's claim (a StatefulSet claim, named after the member). */
  claim: string;
  /** Poll interval of the runtime's own waits; tests shorten it. */
  pollMs?: number;
}

/**
 * `VolumeRuntime` for one StatefulSet member, bound to one Migration. Every
 * method looks at the objects before it acts, so it may be called again.
 */
export class KubeVolumes implements VolumeRuntime {
  private readonly pollMs: number;

  constructor(private readonly options: KubeVolumesOptions) {
    this.pollMs = options.pollMs ?? VOLUME_POLL_MS;
  }

  private get kc(): KubeConfig {
    return this.options.kubeConfig;
  }

  private podPath(pod: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(
      this.options.namespace,
    )}/pods/${encodeURIComponent(pod)}`;
  }

  private claimPath(claim?: string): string {
    const collection = `/api/v1/namespaces/${encodeURIComponent(
      this.options.namespace,
    )}/persistentvolumeclaims`;
    return claim ? `${collection}/${encodeURIComponent(claim)}` : collection;
  }

  private snapshotPath(name?: string): string {
    const collection = `${SNAPSHOT_API}/namespaces/${encodeURIComponent(
      this.options.namespace,
    )}/volumesnapshots`;
    return name ? `${collection}/${encodeURIComponent(name)}` : collection;
  }

  /**
   * The object behind a claim name of the driver's: its restored claim
   * (`<claim>-<zone>`) is the member's claim too, restored.
   */
  private objectOf(claim: string): string {
    const member = this.options.claim;
    if (claim !== member && !claim.startsWith(`${member}-`)) {
      throw new Error(
        `claim ${claim} is not ${member}'s: this runtime moves only ${member}`,
      );
    }
    return member;
  }

  private readClaim(claim: string): Promise<Claim | undefined> {
    return orUndefined(
      apiRequest<Claim>(this.kc, 'GET', this.claimPath(claim)),
    );
  }

  private readPod(pod: string): Promise<V1Pod | undefined> {
    return orUndefined(apiRequest<V1Pod>(this.kc, 'GET', this.podPath(pod)));
  }

  private async volumeOf(claim: Claim): Promise<V1PersistentVolume> {
    const name = claim.spec.volumeName;
    if (!name || claim.status?.phase !== 'Bound') {
      throw new Error(
        `claim ${this.options.namespace}/${
          claim.metadata.name
        } is not bound to a volume (phase ${claim.status?.phase ?? 'unknown'})`,
      );
    }
    return apiRequest<V1PersistentVolume>(
      this.kc,
      'GET',
      `/api/v1/persistentvolumes/${encodeURIComponent(name)}`,
    );
  }

  async claimOf(pod: string): Promise<ClaimInfo> {
    const name = this.options.claim;
    const claim = await this.readClaim(name);
    if (!claim) {
      throw new PermanentMigrationError(
        `pod ${this.options.namespace}/${pod} mounts claim ${name}, which does not exist`,
      );
    }
    const volume = await this.volumeOf(claim);
    const capacity =
      claim.status?.capacity?.storage ??
      claim.spec.resources?.requests?.storage;
    return {
      claim: name,
      zone: zoneOfVolume(volume),
      // Storage quantities have memory's suffixes.
      sizeBytes: memoryMiBOf(capacity) * 2 ** 20,
    };
  }

  async zoneOf(node: string): Promise<string> {
    const found = await apiRequest<{ metadata: ObjectMeta }>(
      this.kc,
      'GET',
      `/api/v1/nodes/${encodeURIComponent(node)}`,
    );
    const zone =
      found.metadata.labels?.[NODE_LABELS.zone] ??
      found.metadata.labels?.[LEGACY_ZONE_LABEL];
    if (!zone) {
      throw new PermanentMigrationError(
        `node ${node} has no ${NODE_LABELS.zone} label, so the volume method cannot tell whether its volume reaches it`,
      );
    }
    return zone;
  }

  /**
   * Holds the member's old incarnation with a finalizer and deletes it; nothing
   * for a recreation (another uid) or a member already gone.
   */
  async stopPod(pod: string): Promise<void> {
    const found = await this.readPod(pod);
    if (!found || found.metadata?.uid !== this.options.sourcePodUid) return;
    const finalizers = found.metadata.finalizers ?? [];
    if (!finalizers.includes(VOLUME_MOVE_FINALIZER)) {
      await apiRequest(this.kc, 'PATCH', this.podPath(pod), {
        contentType: 'application/json-patch+json',
        body: [
          {
            op: 'test',
            path: '/metadata/uid',
            value: this.options.sourcePodUid,
          },
          finalizers.length
            ? {
                op: 'add',
                path: '/metadata/finalizers/-',
                value: VOLUME_MOVE_FINALIZER,
              }
            : {
                op: 'add',
                path: '/metadata/finalizers',
                value: [VOLUME_MOVE_FINALIZER],
              },
        ],
      });
    }
    if (!found.metadata.deletionTimestamp) {
      await orUndefined(
        apiRequest(this.kc, 'DELETE', this.podPath(pod), {
          body: { preconditions: { uid: this.options.sourcePodUid } },
        }),
      );
    }
  }

  async isDetached(claim: string): Promise<boolean> {
    const found = await this.readClaim(this.objectOf(claim));
    if (!found) return true;
    const volumeName = found.spec.volumeName;
    if (volumeName) {
      const attachments = await apiRequest<{ items: VolumeAttachment[] }>(
        this.kc,
        'GET',
        '/apis/storage.k8s.io/v1/volumeattachments',
      );
      const attached = attachments.items.some(
        a =>
          a.spec.source.persistentVolumeName === volumeName &&
          a.status?.attached,
      );
      if (attached) return false;
    }
    const pods = await apiRequest<{ items: V1Pod[] }>(
      this.kc,
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(this.options.namespace)}/pods`,
    );
    return !pods.items.some(
      pod => mayRun(pod) && claimNamesOf(pod).includes(found.metadata.name!),
    );
  }

  /**
   * The VolumeSnapshotClass for a CSI driver: the one marked default for it,
   * else the only one; a clear refusal when there is none or the choice is open.
   */
  async snapshotClassFor(claim: string): Promise<string> {
    const found = await this.readClaim(claim);
    if (!found) {
      throw new PermanentMigrationError(
        `claim ${this.options.namespace}/${claim} does not exist, so it cannot be snapshotted`,
      );
    }
    const volume = await this.volumeOf(found);
    const driver = volume.spec?.csi?.driver;
    if (!driver) {
      throw new PermanentMigrationError(
        `claim ${this.options.namespace}/${claim} is bound to volume ${volume.metadata?.name}, which is not a CSI volume: only CSI volumes can be snapshotted, so its data cannot move to another zone; the member was not moved`,
      );
    }
    let classes: VolumeSnapshotClass[];
    try {
      classes = (
        await apiRequest<{ items: VolumeSnapshotClass[] }>(
          this.kc,
          'GET',
          `${SNAPSHOT_API}/volumesnapshotclasses`,
        )
      ).items.filter(c => c.driver === driver);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new PermanentMigrationError(
        `the cluster does not serve ${SNAPSHOT_GROUP_VERSION} (install the CSI snapshot CRDs and controller, kubernetes-csi/external-snapshotter), so the data of claim ${claim} cannot move to another zone; the member was not moved`,
      );
    }
    const defaults = classes.filter(
      c =>
        c.metadata.annotations?.[DEFAULT_SNAPSHOT_CLASS_ANNOTATION] === 'true',
    );
    const chosen = defaults.length === 1 ? defaults : classes;
    if (chosen.length === 1) return chosen[0].metadata.name!;
    if (chosen.length === 0) {
      throw new PermanentMigrationError(
        `no VolumeSnapshotClass for CSI driver ${driver} (claim ${this.options.namespace}/${claim}): create one with driver: ${driver} so the volume's data can move to another zone; the member was not moved`,
      );
    }
    const names = chosen.map(c => c.metadata.name).join(', ');
    throw new PermanentMigrationError(
      `VolumeSnapshotClasses ${names} all serve CSI driver ${driver} and none is marked default: annotate one with ${DEFAULT_SNAPSHOT_CLASS_ANNOTATION}: "true"; the member was not moved`,
    );
  }

  async snapshot(claim: string, name: string): Promise<void> {
    const existing = await orUndefined(
      apiRequest<VolumeSnapshot>(this.kc, 'GET', this.snapshotPath(name)),
    );
    if (existing) {
      const owner =
        existing.metadata.annotations?.[SNAPSHOT_MIGRATION_ANNOTATION];
      if (
        existing.spec.source.persistentVolumeClaimName !== claim ||
        owner !== this.options.migration
      ) {
        // Another move's copy is older data: restoring from it would lose writes.
        throw new PermanentMigrationError(
          `VolumeSnapshot ${this.options.namespace}/${name} exists, of claim ${
            existing.spec.source.persistentVolumeClaimName
          }, taken by ${
            owner ? `Migration ${owner}` : 'someone else'
          }: delete it once no claim needs it, and move the member again`,
        );
      }
      return;
    }
    if (this.restoredHere(await this.readClaim(claim))) {
      // The original was replaced; a snapshot of the restored claim is not the one asked for.
      throw new PermanentMigrationError(
        `claim ${claim} was already replaced by this move's restore; snapshot ${name} can no longer be taken of the original`,
      );
    }
    const volumeSnapshotClassName = await this.snapshotClassFor(claim);
    try {
      await apiRequest(this.kc, 'POST', this.snapshotPath(), {
        body: {
          apiVersion: SNAPSHOT_GROUP_VERSION,
          kind: 'VolumeSnapshot',
          metadata: {
            name,
            annotations: {
              [SNAPSHOT_MIGRATION_ANNOTATION]: this.options.migration,
            },
          },
          spec: {
            volumeSnapshotClassName,
            source: { persistentVolumeClaimName: claim },
          },
        },
      });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.code === 409)) throw error;
    }
  }

  async snapshotReady(name: string): Promise<boolean> {
    const found = await orUndefined(
      apiRequest<VolumeSnapshot>(this.kc, 'GET', this.snapshotPath(name)),
    );
    if (!found) {
      throw new Error(
        `VolumeSnapshot ${this.options.namespace}/${name} is gone`,
      );
    }
    if (found.status?.error?.message && !found.status.readyToUse) {
      throw new Error(
        `VolumeSnapshot ${this.options.namespace}/${name} failed: ${found.status.error.message}`,
      );
    }
    return found.status?.readyToUse === true;
  }

  async deleteSnapshot(name: string): Promise<void> {
    await orUndefined(apiRequest(this.kc, 'DELETE', this.snapshotPath(name)));
  }

  /**
   * Replaces the member's claim by one of the same name restored from
   * `snapshot` in `zone`. The original is deleted only once the snapshot is
   * ready and no running pod mounts it; a repeat finds the restored claim.
   */
  async restoreClaim(
    snapshot: string,
    claim: string,
    zone: string,
  ): Promise<void> {
    const name = this.objectOf(claim);
    const node = await this.nodeIn(zone);
    let found = await this.readClaim(name);
    if (this.restoredHere(found)) return;
    if (found) {
      // From here the snapshot is the data's only copy: it must be whole, and
      // the volume must be out of use, or the copy would miss the last writes.
      if (!(await this.snapshotReady(snapshot))) {
        throw new Error(
          `snapshot ${snapshot} is not ready; claim ${name} is kept`,
        );
      }
      if (!(await this.isDetached(name))) {
        throw new Error(`claim ${name} is still in use; it is kept`);
      }
      await orUndefined(
        apiRequest(this.kc, 'DELETE', this.claimPath(name), {
          body: { preconditions: { uid: found.metadata.uid } },
        }),
      );
      await this.releaseProtection(name);
      found = await this.waitUntilSettled(name);
      if (found) {
        throw new Error(`claim ${name} is still there after its deletion`);
      }
    }
    await this.createRestoredClaim(name, snapshot, node);
  }

  /**
   * Takes the PVC protection finalizer off the deleted claim. The protection
   * controller keeps a claim while any scheduled pod names it, the held old
   * incarnation included, which is only let go once the restored claim exists:
   * each would wait for the other. Only when no pod that may run mounts it and
   * no node has it attached.
   */
  private async releaseProtection(name: string): Promise<void> {
    const found = await this.readClaim(name);
    const index = (found?.metadata.finalizers ?? []).indexOf(
      PVC_PROTECTION_FINALIZER,
    );
    if (!found?.metadata.deletionTimestamp || index < 0) return;
    if (!(await this.isDetached(name))) {
      throw new Error(`claim ${name} is in use again; it is kept`);
    }
    await apiRequest(this.kc, 'PATCH', this.claimPath(name), {
      contentType: 'application/json-patch+json',
      body: [
        { op: 'test', path: '/metadata/uid', value: found.metadata.uid },
        {
          op: 'test',
          path: `/metadata/finalizers/${index}`,
          value: PVC_PROTECTION_FINALIZER,
        },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ],
    });
  }

  /** The claim once it is not being deleted; undefined once it is gone. */
  private async waitUntilSettled(name: string): Promise<Claim | undefined> {
    const limit = Date.now() + VOLUME_WAIT_TIMEOUT_MS;
    for (;;) {
      const found = await this.readClaim(name);
      if (!found?.metadata.deletionTimestamp) return found;
      if (Date.now() > limit) {
        throw new Error(
          `claim ${name} was deleted but is still there (finalizers ${(
            found.metadata.finalizers ?? []
          ).join(', ')})`,
        );
      }
      await sleep(this.pollMs);
    }
  }

  private async createRestoredClaim(
    name: string,
    snapshot: string,
    node: string,
  ): Promise<void> {
    const source = await apiRequest<VolumeSnapshot>(
      this.kc,
      'GET',
      this.snapshotPath(snapshot),
    );
    const template = await this.claimTemplate();
    try {
      await apiRequest(this.kc, 'POST', this.claimPath(), {
        body: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: {
            name,
            labels: template.metadata?.labels,
            annotations: {
              [RESTORED_FROM_ANNOTATION]: snapshot,
              [RESTORED_BY_ANNOTATION]: this.options.migration,
              [SELECTED_NODE_ANNOTATION]: node,
            },
          },
          spec: {
            ...template.spec,
            resources: {
              ...template.spec?.resources,
              requests: {
                ...template.spec?.resources?.requests,
                ...(source.status?.restoreSize
                  ? { storage: source.status.restoreSize }
                  : {}),
              },
            },
            // The template's own data source, if any, is not where the data is now.
            dataSourceRef: undefined,
            dataSource: {
              apiGroup: 'snapshot.storage.k8s.io',
              kind: 'VolumeSnapshot',
              name: snapshot,
            },
          },
        },
      });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.code === 409)) throw error;
      if (!this.restoredHere(await this.readClaim(name))) {
        throw new PermanentMigrationError(
          `claim ${name} was created by someone else (the StatefulSet controller?) before the restore from ${snapshot}; the data is in ${snapshot}, kept: delete ${name} and its pod, or restore by hand`,
        );
      }
    }
  }

  /** The StatefulSet's claim template for the member's claim. */
  private async claimTemplate(): Promise<{
    metadata?: ObjectMeta;
    spec?: Claim['spec'];
  }> {
    const owner = this.options.statefulSet;
    const set = await apiRequest<{
      spec: {
        volumeClaimTemplates?: {
          metadata?: ObjectMeta;
          spec?: Claim['spec'];
        }[];
      };
    }>(
      this.kc,
      'GET',
      `/apis/apps/v1/namespaces/${encodeURIComponent(
        this.options.namespace,
      )}/statefulsets/${encodeURIComponent(owner)}`,
    );
    const template = set.spec.volumeClaimTemplates?.find(
      t => `${t.metadata?.name}-${this.options.member}` === this.options.claim,
    );
    if (!template) {
      throw new PermanentMigrationError(
        `StatefulSet ${owner} has no claim template for ${this.options.claim}`,
      );
    }
    return template;
  }

  private async nodeIn(zone: string): Promise<string> {
    for (const node of [this.options.targetNode, this.options.sourceNode]) {
      if ((await this.zoneOf(node)) === zone) return node;
    }
    throw new PermanentMigrationError(
      `neither ${this.options.targetNode} nor ${this.options.sourceNode} is in zone ${zone}`,
    );
  }

  /**
   * Lets the held old incarnation go, after making sure the member's claim
   * exists (restored from this Migration's newest ready snapshot in `node`'s
   * zone if a restart came between the old claim's deletion and the restore).
   * The StatefulSet then recreates the member; while the Migration is open the
   * placement webhook pins it to the Migration's target.
   */
  async startPod(pod: string, node: string, claim: string): Promise<void> {
    const name = this.objectOf(claim);
    // Released while its claim is being deleted, the member would be recreated
    // with an empty claim the StatefulSet controller makes.
    const existing = await this.waitUntilSettled(name);
    if (!existing) {
      const snapshot = await this.newestReadySnapshot();
      if (!snapshot) {
        throw new PermanentMigrationError(
          `claim ${name} is gone and Migration ${this.options.migration} has no ready snapshot of it to restore`,
        );
      }
      await this.createRestoredClaim(name, snapshot, node);
    }
    const found = await this.readPod(pod);
    if (!found || found.metadata?.uid !== this.options.sourcePodUid) return;
    const index = (found.metadata.finalizers ?? []).indexOf(
      VOLUME_MOVE_FINALIZER,
    );
    if (index < 0) return;
    await apiRequest(this.kc, 'PATCH', this.podPath(pod), {
      contentType: 'application/json-patch+json',
      body: [
        {
          op: 'test',
          path: `/metadata/finalizers/${index}`,
          value: VOLUME_MOVE_FINALIZER,
        },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ],
    });
  }

  /** This Migration's snapshots, by name. */
  async snapshotsTaken(): Promise<string[]> {
    return (await this.snapshotsOfMigration()).map(s => s.metadata.name!);
  }

  private async newestReadySnapshot(): Promise<string | undefined> {
    return (await this.snapshotsOfMigration())
      .filter(s => s.status?.readyToUse)
      .sort((a, b) =>
        (b.metadata.creationTimestamp ?? '').localeCompare(
          a.metadata.creationTimestamp ?? '',
        ),
      )[0]?.metadata.name;
  }

  private async snapshotsOfMigration(): Promise<VolumeSnapshot[]> {
    const snapshots = await apiRequest<{ items: VolumeSnapshot[] }>(
      this.kc,
      'GET',
      this.snapshotPath(),
    );
    return snapshots.items.filter(
      s =>
        s.metadata.annotations?.[SNAPSHOT_MIGRATION_ANNOTATION] ===
          this.options.migration &&
        s.spec.source.persistentVolumeClaimName === this.options.claim,
    );
  }

  /** Whether the claim is the one this Migration restored. */
  private restoredHere(claim: Claim | undefined): boolean {
    return (
      claim?.metadata.annotations?.[RESTORED_BY_ANNOTATION] ===
      this.options.migration
    );
  }

  async podNode(pod: string): Promise<string | undefined> {
    const found = await this.readPod(pod);
    if (!found || found.metadata?.deletionTimestamp) return undefined;
    return found.spec?.nodeName || undefined;
  }

  async podReady(pod: string, node: string): Promise<boolean> {
    const found = await this.readPod(pod);
    return Boolean(
      found &&
        !found.metadata?.deletionTimestamp &&
        found.spec?.nodeName === node &&
        isReady(found),
    );
  }

  /**
   * The member's source claim is deleted only while it is the original and
   * nothing runs on it (after a move it was already replaced); the driver's
   * restored claim only while it is the restored one and nothing runs on it.
   */
  async deleteClaim(claim: string): Promise<void> {
    const name = this.objectOf(claim);
    const found = await this.readClaim(name);
    if (!found) return;
    const restored = this.restoredHere(found);
    const wanted = claim === this.options.claim ? !restored : restored;
    if (!wanted) return;
    if (!(await this.isDetached(name))) {
      throw new Error(`claim ${name} is in use by a running pod; it is kept`);
    }
    await orUndefined(
      apiRequest(this.kc, 'DELETE', this.claimPath(name), {
        body: { preconditions: { uid: found.metadata.uid } },
      }),
    );
  }
}

/** What the volume driver on a cluster needs. */
export interface KubeVolumeDriverOptions {
  kubeConfig: KubeConfig;
  clock: Clock;
  /** Poll interval of the driver's and the runtime's waits; tests shorten it. */
  pollMs?: number;
}

interface BoundDriver {
  driver: VolumeDriver;
  runtime: KubeVolumes;
}

/**
 * The `volume` method on a cluster: a `VolumeDriver` over a `KubeVolumes` bound
 * to each Migration's member. Before anything is touched it refuses a member it
 * cannot move (not a StatefulSet's, or not one claim) and, across zones, a
 * claim whose CSI driver has no VolumeSnapshotClass.
 */
export class KubeVolumeDriver implements MigrationDriver {
  readonly method = 'volume' as const;
  private readonly running = new Map<string, BoundDriver>();

  constructor(private readonly options: KubeVolumeDriverOptions) {}

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    const { driver, runtime } = await this.driverOf(ctx);
    await driver.prepareTarget(ctx);
    if (ctx.state.mode === 'snapshot') {
      await runtime.snapshotClassFor(ctx.state.sourceClaim);
    }
  }
  async transfer(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).driver.transfer(ctx);
  }
  async switchOver(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).driver.switchOver(ctx);
  }
  async verify(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).driver.verify(ctx);
  }
  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    await (await this.driverOf(ctx)).driver.cleanUp(ctx);
    this.running.delete(keyOf(ctx.migration));
  }
  async rollBack(ctx: MigrationStepContext): Promise<void> {
    // Refused before the member was looked at: nothing to undo.
    if (!ctx.state.memberUid) return;
    const { driver, runtime } = await this.driverOf(ctx);
    await driver.rollBack(ctx);
    // The member serves again from a claim, so the snapshots are no longer the
    // data's only copy; left, a later move would find them stale by name.
    for (const name of await runtime.snapshotsTaken()) {
      await runtime.deleteSnapshot(name);
    }
    this.running.delete(keyOf(ctx.migration));
  }

  private async driverOf(ctx: MigrationStepContext): Promise<BoundDriver> {
    const key = keyOf(ctx.migration);
    const known = this.running.get(key);
    if (known) return known;
    const { spec, metadata } = ctx.migration;
    const namespace = metadata.namespace!;
    if (!spec.targetNode) {
      throw new PermanentMigrationError('a volume move needs spec.targetNode');
    }
    if (!ctx.state.memberUid) {
      const member = await this.memberOf(ctx.migration);
      ctx.state.memberUid = member.uid;
      ctx.state.memberClaim = member.claim;
    }
    const runtime = new KubeVolumes({
      kubeConfig: this.options.kubeConfig,
      namespace,
      migration: metadata.name!,
      sourceNode: spec.sourceNode,
      targetNode: spec.targetNode,
      member: spec.pod,
      statefulSet: spec.workloadRef.name,
      sourcePodUid: ctx.state.memberUid,
      claim: ctx.state.memberClaim,
      pollMs: this.options.pollMs,
    });
    const bound = {
      runtime,
      driver: new VolumeDriver({
        runtime,
        clock: this.options.clock,
        pollMs: this.options.pollMs,
      }),
    };
    this.running.set(key, bound);
    return bound;
  }

  /** The member's incarnation and its one claim; refuses members this driver cannot move. */
  private async memberOf(
    migration: Migration,
  ): Promise<{ uid: string; claim: string }> {
    const namespace = migration.metadata.namespace!;
    const name = migration.spec.pod;
    const pod = await orUndefined(
      apiRequest<V1Pod>(
        this.options.kubeConfig,
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(
          namespace,
        )}/pods/${encodeURIComponent(name)}`,
      ),
    );
    if (!pod) {
      throw new PermanentMigrationError(
        `pod ${namespace}/${name} is gone; there is nothing to move`,
      );
    }
    const owner = pod.metadata?.ownerReferences?.find(o => o.controller);
    const claims = claimNamesOf(pod);
    if (owner?.kind !== 'StatefulSet') {
      // A Deployment's replacement pod has another name and mounts the same
      // claim: with ReadWriteOnce it starts only once this pod is gone, which is
      // what reschedule does (the claim re-attaches within its zone).
      throw new PermanentMigrationError(
        `the volume method moves StatefulSet members, and ${namespace}/${name} is ${
          owner ? `a ${owner.kind}'s (${owner.name})` : 'a bare pod'
        }: its replacement would get another name and share claim ${
          claims.join(', ') || '(none)'
        }; use the reschedule method (the claim re-attaches to the replacement within its zone) or run it as a StatefulSet; the member was not moved`,
      );
    }
    if (owner.name !== migration.spec.workloadRef.name) {
      throw new PermanentMigrationError(
        `${namespace}/${name} belongs to StatefulSet ${owner.name}, not to the Migration's ${migration.spec.workloadRef.name}; the member was not moved`,
      );
    }
    const own = claims.filter(c => c.endsWith(`-${name}`));
    if (own.length !== 1) {
      throw new PermanentMigrationError(
        `the volume method moves a member with one claim of its own, and ${namespace}/${name} has ${
          own.length
        } (${own.join(', ') || 'none'}); the member was not moved`,
      );
    }
    return { uid: pod.metadata!.uid!, claim: own[0] };
  }
}

function keyOf(migration: Migration): string {
  return `${migration.metadata.namespace}/${migration.metadata.name}`;
}
