import type { KubeConfig, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { SpotPolicy } from '../../api/v1alpha1';
import type { PlannedMove } from '../../core/migrationPlanner';
import type { AutoMethodFacts } from '../../migration/autoMethod';
import { apiRequest, isNotFound } from '../client/apiRequest';
import { FERRY_RUNTIME_CLASS } from '../admission/PodPlacer';
import { zoneOfVolume } from './volume/KubeVolumeDriver';
import { readValkeyAccess } from './valkey/readValkeyAccess';

/** The port a Valkey/Redis member serves on when its container names none. */
const VALKEY_PORT = 6379;
/** Container port names that say the container serves Valkey/Redis. */
const VALKEY_PORT_NAMES = /^(valkey|redis|tcp-redis|tcp-valkey)$/;
const ZONE_LABELS = ['topology.kubernetes.io/zone', 'failure-domain.beta.kubernetes.io/zone'];

/**
 * What `auto` reads from a cluster about one member: its pod's Valkey/Redis port
 * and the policy's credentials, whether it runs under the RuntimeClass `ferry`
 * (installed in the cluster), and the zone of its volume against the target's.
 */
export class KubeAutoMethodFacts implements AutoMethodFacts {
  constructor(
    private readonly kubeConfig: KubeConfig,
    /** Whether the cluster has the RuntimeClass `ferry` (FerryRuntimeClassPresence). */
    private readonly runtimeClassInstalled: () => boolean,
  ) {}

  async member(policy: SpotPolicy, move: PlannedMove) {
    const pod = await this.pod(policy, move);
    const host = pod?.status?.podIP;
    if (!pod || !host) return undefined;
    const ports = (pod.spec?.containers ?? []).flatMap(c => c.ports ?? []);
    const port =
      ports.find(p => p.name && VALKEY_PORT_NAMES.test(p.name)) ?? ports.find(p => p.containerPort === VALKEY_PORT);
    if (!port) return undefined; // Not a Valkey/Redis member: nothing to measure.
    const access = await readValkeyAccess(this.kubeConfig, policy.metadata.namespace, policy.spec.workloadRef);
    return {
      endpoint: { name: move.pod, node: move.sourceNode, host, port: port.containerPort },
      access,
    };
  }

  async ferryRuntime(policy: SpotPolicy, move: PlannedMove): Promise<boolean> {
    if (!this.runtimeClassInstalled()) return false;
    return (await this.pod(policy, move))?.spec?.runtimeClassName === FERRY_RUNTIME_CLASS;
  }

  async zonalVolume(policy: SpotPolicy, move: PlannedMove) {
    const pod = await this.pod(policy, move);
    const claim = (pod?.spec?.volumes ?? []).find(v => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName;
    if (!claim) return undefined;
    const ns = encodeURIComponent(policy.metadata.namespace);
    const pvc = await this.get<V1PersistentVolumeClaim>(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${encodeURIComponent(claim)}`);
    const volumeName = pvc?.spec?.volumeName;
    const volume = volumeName
      ? await this.get<V1PersistentVolume>(`/api/v1/persistentvolumes/${encodeURIComponent(volumeName)}`)
      : undefined;
    const zone = volume ? zoneOfVolume(volume) : undefined;
    if (!zone) return undefined; // Every zone reaches it: not zonal.
    if (move.target.kind !== 'node') return { sameZoneTarget: false };
    const node = await this.get<{ metadata?: { labels?: Record<string, string> } }>(
      `/api/v1/nodes/${encodeURIComponent(move.target.node)}`,
    );
    const targetZone = ZONE_LABELS.map(l => node?.metadata?.labels?.[l]).find(Boolean);
    return { sameZoneTarget: targetZone === zone };
  }

  private pod(policy: SpotPolicy, move: PlannedMove): Promise<V1Pod | undefined> {
    return this.get<V1Pod>(
      `/api/v1/namespaces/${encodeURIComponent(policy.metadata.namespace)}/pods/${encodeURIComponent(move.pod)}`,
    );
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      return await apiRequest<T>(this.kubeConfig, 'GET', path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
