/**
 * The valkey driver's runtime on a cluster: members are pods, and clients are
 * sent to the new member by the hand-off its Deployment's ReplicaSet agrees
 * with (README, "Hand-offs the workload's controller agrees with"). The pod
 * helpers here serve the StatefulSet hand-off (`StatefulSetValkeyDriver`) too.
 */
import type { KubeConfig, V1Container, V1Pod } from '@kubernetes/client-node';
import { NODE_LABELS } from '../../../cloud/nodeLabels';
import {
  PermanentMigrationError,
  TargetLostError,
} from '../../../migration/MigrationDriver';
import type { ValkeyEndpoint } from '../../../migration/valkey/ValkeyAdmin';
import type {
  ClientRedirector,
  ValkeyMemberRuntime,
} from '../../../migration/valkey/ValkeyDriver';
import { apiRequest, isNotFound, KubeApiError } from '../../client/apiRequest';
import { isReady } from '../../state/workloadViews';
import {
  HANDOFF_OF_LABEL,
  HELD_BACK_LABEL_ANNOTATION,
} from '../../client/ferryKeys';

/** The annotation ReplicaSets rank pods by when they remove one (Kubernetes 1.22+). */
export const POD_DELETION_COST_ANNOTATION =
  'controller.kubernetes.io/pod-deletion-cost';
/** The lowest deletion cost: the pod a ReplicaSet removes first. */
export const CHEAPEST_DELETION_COST = String(-(2 ** 31));
/** Longest wait for a new member's pod to be Ready (image pulled, probes passing). */
export const MEMBER_POD_READY_TIMEOUT_MS = 60_000;
/** How often a new member's pod is looked at while it starts. */
export const MEMBER_POD_POLL_MS = 250;
/** The port Valkey and Redis listen on unless the container declares another. */
const DEFAULT_VALKEY_PORT = 6379;
/** The label every ReplicaSet adds to its selector; holding it back would not keep a pod out of a Service. */
const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

function podsPath(namespace: string, name?: string): string {
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  return name ? `${collection}/${encodeURIComponent(name)}` : collection;
}

/** The container that runs Valkey or Redis: named for it, or running its image. */
function valkeyContainer(pod: V1Pod): V1Container | undefined {
  const containers = pod.spec?.containers ?? [];
  return (
    containers.find(c => /^(valkey|redis)$/.test(c.name)) ??
    containers.find(c => /valkey|redis/.test(c.image ?? ''))
  );
}

/** Where the member's server listens: its declared Valkey/Redis port, else the default. */
function valkeyPort(container: V1Container): number {
  const ports = container.ports ?? [];
  const port =
    ports.find(p => /valkey|redis/.test(p.name ?? '')) ??
    ports.find(p => p.containerPort === DEFAULT_VALKEY_PORT) ??
    ports[0];
  return port?.containerPort ?? DEFAULT_VALKEY_PORT;
}

/**
 * Where a member pod's server listens; undefined while the pod has no IP. Throws
 * when the pod has no Valkey or Redis container.
 */
export function memberEndpoint(
  pod: V1Pod,
  node: string,
): ValkeyEndpoint | undefined {
  const container = valkeyContainer(pod);
  if (!container) {
    const names = (pod.spec?.containers ?? []).map(c => c.name).join(', ');
    throw new PermanentMigrationError(
      `pod ${pod.metadata?.namespace}/${pod.metadata?.name} has no Valkey or Redis container (it has ${names}); the valkey method needs a container named valkey or redis, or one running a valkey or redis image`,
    );
  }
  const host = pod.status?.podIP;
  if (!host) return undefined;
  return {
    name: pod.metadata!.name!,
    node: pod.spec?.nodeName ?? node,
    host,
    port: valkeyPort(container),
  };
}

/**
 * Waits until the member pod `name` is Ready and has an IP, and returns its
 * endpoint. `earlier`, when given, is the uid of an incarnation to wait past
 * (a StatefulSet member that is being recreated).
 */
export async function waitForMemberPod(
  pods: NamespacePods,
  name: string,
  node: string,
  earlier?: string,
): Promise<ValkeyEndpoint> {
  const timeoutMs = MEMBER_POD_READY_TIMEOUT_MS;
  const until = Date.now() + timeoutMs;
  const where = `new member pod ${pods.namespace}/${name} on ${node}`;
  for (;;) {
    const found = await pods.get(name);
    const pod = found?.metadata?.uid === earlier ? undefined : found;
    if (!earlier && (!pod || pod.metadata?.deletionTimestamp)) {
      throw new TargetLostError(`${where} was deleted while it started`);
    }
    const phase = pod?.status?.phase;
    if (phase === 'Failed' || phase === 'Succeeded') {
      throw new TargetLostError(
        `${where} ended (${phase}: ${pod?.status?.reason ?? ''} ${
          pod?.status?.message ?? ''
        })`.trim(),
      );
    }
    const endpoint =
      pod && !pod.metadata?.deletionTimestamp && isReady(pod)
        ? memberEndpoint(pod, node)
        : undefined;
    if (endpoint) return endpoint;
    if (Date.now() > until) {
      const waiting = (pod?.status?.containerStatuses ?? [])
        .map(s => s.state?.waiting?.reason)
        .filter(Boolean);
      const unschedulable = pod?.status?.conditions?.find(
        c => c.type === 'PodScheduled' && c.status === 'False',
      );
      throw new TargetLostError(
        `${where} was not Ready after ${timeoutMs} ms (${
          pod ? `phase ${phase ?? 'unknown'}` : 'not created yet'
        }${waiting.length ? `, waiting: ${waiting.join(', ')}` : ''}${
          unschedulable ? `, unschedulable: ${unschedulable.message}` : ''
        })`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, MEMBER_POD_POLL_MS));
  }
}

/** The Kubernetes calls a hand-off makes, on pods of one namespace. */
export class NamespacePods {
  constructor(readonly kubeConfig: KubeConfig, readonly namespace: string) {}

  async get(name: string): Promise<V1Pod | undefined> {
    return apiRequest<V1Pod>(
      this.kubeConfig,
      'GET',
      podsPath(this.namespace, name),
    ).catch(error => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
  }

  async list(labelSelector: string): Promise<V1Pod[]> {
    const list = await apiRequest<{ items: V1Pod[] }>(
      this.kubeConfig,
      'GET',
      podsPath(this.namespace),
      { query: { labelSelector } },
    );
    return list.items;
  }

  async create(pod: V1Pod): Promise<void> {
    await apiRequest(this.kubeConfig, 'POST', podsPath(this.namespace), {
      body: pod,
    }).catch(error => {
      // Created by an earlier attempt of the same step.
      if (!(error instanceof KubeApiError && error.code === 409)) throw error;
    });
  }

  /** A merge patch of the pod's metadata; a key set to null is removed. */
  async patchMetadata(
    name: string,
    metadata: {
      labels?: Record<string, string | null>;
      annotations?: Record<string, string | null>;
    },
  ): Promise<void> {
    await apiRequest(this.kubeConfig, 'PATCH', podsPath(this.namespace, name), {
      contentType: 'application/merge-patch+json',
      body: { metadata },
    });
  }

  /**
   * Deletes the pod; no error when it is gone already. With `uid`, only that
   * incarnation: a StatefulSet recreates a member under the same name, and the
   * new one must not go with the old.
   */
  async delete(
    name: string,
    gracePeriodSeconds?: number,
    uid?: string,
  ): Promise<void> {
    await apiRequest(
      this.kubeConfig,
      'DELETE',
      podsPath(this.namespace, name),
      {
        query: { gracePeriodSeconds },
        // The API server reads DeleteOptions from the body when there is one and
        // then ignores the query: the grace period goes in both.
        body: uid ? { preconditions: { uid }, gracePeriodSeconds } : undefined,
      },
    ).catch(error => {
      if (isNotFound(error)) return;
      // The uid precondition failed: the pod by that name is a later incarnation.
      if (uid && error instanceof KubeApiError && error.code === 409) return;
      throw error;
    });
  }
}

/**
 * Members of one Migration as pods: the source is the member's pod, the target a
 * bare pod cloned from the template of the member's ReplicaSet or StatefulSet, on
 * the target node, with one selector label held back so that neither the
 * controller nor the Service counts it while it is an empty replica.
 */
export class KubeValkeyMembers implements ValkeyMemberRuntime {
  private readonly pods: NamespacePods;
  /**
   * The uid of the source pod, when the caller knows it: stopping or fencing
   * the source then removes that incarnation only (a StatefulSet recreates a
   * member under its name, see `StatefulSetValkeyDriver`).
   */
  sourceUid?: string;

  constructor(
    private readonly options: {
      kubeConfig: KubeConfig;
      namespace: string;
      /** The member being moved. */
      sourcePod: string;
    },
  ) {
    this.pods = new NamespacePods(options.kubeConfig, options.namespace);
  }

  async resolveMember(pod: string, node: string): Promise<ValkeyEndpoint> {
    const found = await this.pods.get(pod);
    if (!found || found.metadata?.deletionTimestamp) {
      throw new PermanentMigrationError(
        `member pod ${this.options.namespace}/${pod} is gone; there is nothing to move`,
      );
    }
    const endpoint = this.endpointOf(found, node);
    if (!endpoint) {
      throw new Error(
        `member pod ${this.options.namespace}/${pod} has no IP yet; trying again`,
      );
    }
    return endpoint;
  }

  async startMember(name: string, node: string): Promise<ValkeyEndpoint> {
    const existing = await this.pods.get(name);
    if (existing?.metadata?.deletionTimestamp) {
      throw new Error(
        `new member pod ${this.options.namespace}/${name} is being deleted; starting it again once it is gone`,
      );
    }
    if (!existing) await this.pods.create(await this.newMemberPod(name, node));
    return waitForMemberPod(this.pods, name, node);
  }

  async stopMember(member: ValkeyEndpoint): Promise<void> {
    await this.pods.delete(member.name, undefined, this.uidOf(member));
  }

  /** Deleted at once: a member believed lost must not serve again, not even for a grace period. */
  async fenceMember(member: ValkeyEndpoint): Promise<void> {
    await this.pods.delete(member.name, 0, this.uidOf(member));
  }

  private uidOf(member: ValkeyEndpoint): string | undefined {
    return member.name === this.options.sourcePod ? this.sourceUid : undefined;
  }

  // No otherReplicas: a Deployment's members are primaries of their own, never
  // copies of one another, so none can stand in for a lost source.

  private endpointOf(pod: V1Pod, node: string): ValkeyEndpoint | undefined {
    return memberEndpoint(pod, node);
  }

  private newMemberPod(name: string, node: string): Promise<V1Pod> {
    return handoffPod(this.options, name, node, 'valkey');
  }
}

/**
 * A hand-off member: the template of the member's ReplicaSet or StatefulSet,
 * less one selector label, on `node`. A StatefulSet's claim templates become
 * emptyDir volumes: the claims belong to the member's identity, and the new
 * member gets its data by replication.
 */
export async function handoffPod(
  options: { kubeConfig: KubeConfig; namespace: string; sourcePod: string },
  name: string,
  node: string,
  method: 'valkey' | 'checkpoint',
): Promise<V1Pod> {
  const { namespace, sourcePod } = options;
  const pods = new NamespacePods(options.kubeConfig, namespace);
  const source = await pods.get(sourcePod);
  if (!source) {
    throw new PermanentMigrationError(
      `member pod ${namespace}/${sourcePod} is gone before its replacement was started`,
    );
  }
  const owner = source.metadata?.ownerReferences?.find(ref => ref.controller);
  if (owner?.kind !== 'ReplicaSet' && owner?.kind !== 'StatefulSet') {
    throw new PermanentMigrationError(
      `${namespace}/${sourcePod} is ${
        owner ? `a member of ${owner.kind} ${owner.name}` : 'a bare pod'
      }: on a cluster the ${method} method hands off members of Deployments and StatefulSets only; set the SpotPolicy's migration to reschedule`,
    );
  }
  const controller = await apiRequest<{
    spec?: {
      selector?: { matchLabels?: Record<string, string> };
      template?: V1Pod;
      volumeClaimTemplates?: { metadata?: { name?: string } }[];
    };
  }>(
    options.kubeConfig,
    'GET',
    `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${
      owner.kind === 'ReplicaSet' ? 'replicasets' : 'statefulsets'
    }/${encodeURIComponent(owner.name)}`,
  );
  const template = controller.spec?.template ?? {};
  const heldBack = Object.keys(controller.spec?.selector?.matchLabels ?? {})
    .filter(key => key !== POD_TEMPLATE_HASH_LABEL)
    .sort()[0];
  if (!heldBack) {
    throw new PermanentMigrationError(
      `${owner.kind} ${namespace}/${owner.name} selects by matchExpressions only: the hand-off needs a matchLabels label (besides ${POD_TEMPLATE_HASH_LABEL}) to start the new member outside the selector; add one to the workload's selector or set the SpotPolicy's migration to reschedule`,
    );
  }
  const { [heldBack]: heldBackValue, ...labels } =
    template.metadata?.labels ?? {};
  const claimVolumes = (controller.spec?.volumeClaimTemplates ?? []).map(
    claim => ({ name: claim.metadata!.name!, emptyDir: {} }),
  );
  const spec = {
    ...template.spec!,
    volumes: [...(template.spec?.volumes ?? []), ...claimVolumes],
  };
  // Ferry's placement owns the capacity type of a member; the plan chose this
  // node, and the kubelet would refuse the pod if the template's selector did not match it.
  const { [NODE_LABELS.karpenterCapacityType]: _capacity, ...nodeSelector } =
    spec.nodeSelector ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { ...labels, [HANDOFF_OF_LABEL]: sourcePod },
      annotations: {
        ...template.metadata?.annotations,
        [HELD_BACK_LABEL_ANNOTATION]: `${heldBack}=${
          heldBackValue ?? source.metadata?.labels?.[heldBack] ?? ''
        }`,
      },
    },
    spec: {
      ...spec,
      // Bound by the plan, not by the scheduler: the notice leaves no time
      // for a second opinion on where it goes.
      nodeName: node,
      nodeSelector: Object.keys(nodeSelector).length ? nodeSelector : undefined,
      affinity: {
        ...spec.affinity,
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
    },
  };
}

/**
 * Sends clients to a member the way its ReplicaSet agrees with. Before the switch
 * (`prepare`) the old member is made the cheapest pod to delete; in the write
 * pause (`pointTo`) the new member gets the held-back selector label, one PATCH.
 * The ReplicaSet adopts it, finds one pod too many and deletes the old member.
 *
 * What clients of the Service see: nothing changes when the deletion cost is set.
 * From the label until the old pod's deletion reaches the endpoints (the
 * ReplicaSet's sync, then the EndpointSlice controller and kube-proxy: typically
 * well under a second) the Service has both the new primary and the old member,
 * which is by then its replica. A new connection landing on the old member reads
 * (data as fresh as replication) and gets READONLY for writes; the driver has
 * killed the old member's client connections, so clients that reconnect on
 * READONLY (ioredis/iovalkey `reconnectOnError`) land on the new primary once
 * the old pod has left the endpoints. The order matters: labelling first would
 * let the ReplicaSet pick the pod to delete by age, and the newest is the new
 * member.
 *
 * The old member goes within moments of the label (its kubelet stops it as soon
 * as the ReplicaSet deletes the pod), so whatever the driver still asks of it
 * after `pointTo` may find it gone; the driver tolerates that for its client
 * kills, but then records no bytes moved.
 */
export class ReplicaSetHandoff implements ClientRedirector {
  private readonly pods: NamespacePods;
  /** The held-back label of each hand-off member, read before the pause so the pause only patches. */
  private readonly heldBack = new Map<string, [string, string]>();
  private sourceCheapest = false;
  private readonly sourcePod: string;

  constructor(options: {
    kubeConfig: KubeConfig;
    namespace: string;
    sourcePod: string;
  }) {
    this.pods = new NamespacePods(options.kubeConfig, options.namespace);
    this.sourcePod = options.sourcePod;
  }

  async prepare(member: ValkeyEndpoint): Promise<void> {
    await this.heldBackLabel(member.name);
    await this.makeSourceCheapest();
  }

  async pointTo(member: ValkeyEndpoint): Promise<void> {
    if (member.name === this.sourcePod) {
      await this.pointBackToSource();
      return;
    }
    const [key, value] = await this.heldBackLabel(member.name);
    await this.makeSourceCheapest();
    await this.pods.patchMetadata(member.name, { labels: { [key]: value } });
  }

  async current(): Promise<string | undefined> {
    for (const pod of await this.handoffMembers()) {
      if (this.joined(pod) && !pod.metadata?.deletionTimestamp) {
        return pod.metadata!.name;
      }
    }
    const source = await this.pods.get(this.sourcePod);
    return source && !source.metadata?.deletionTimestamp
      ? this.sourcePod
      : undefined;
  }

  /** Rolling back before the ReplicaSet adopted the new member: undo both steps. */
  private async pointBackToSource(): Promise<void> {
    for (const pod of await this.handoffMembers()) {
      if (!this.joined(pod)) continue;
      const owner = pod.metadata?.ownerReferences?.find(ref => ref.controller);
      if (owner) {
        throw new Error(
          `${pod.metadata!.name} was adopted by ReplicaSet ${
            owner.name
          }, which removes ${
            this.sourcePod
          }; clients cannot be sent back to it`,
        );
      }
      const [key] = splitLabel(
        pod.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION],
      );
      await this.pods.patchMetadata(pod.metadata!.name!, {
        labels: { [key]: null },
      });
    }
    const source = await this.pods.get(this.sourcePod);
    if (!source || source.metadata?.deletionTimestamp) {
      throw new Error(
        `${this.sourcePod} is gone; clients cannot be sent back to it`,
      );
    }
    if (source.metadata?.annotations?.[POD_DELETION_COST_ANNOTATION]) {
      await this.pods.patchMetadata(this.sourcePod, {
        annotations: { [POD_DELETION_COST_ANNOTATION]: null },
      });
    }
    this.sourceCheapest = false;
  }

  private async makeSourceCheapest(): Promise<void> {
    if (this.sourceCheapest) return;
    await this.pods
      .patchMetadata(this.sourcePod, {
        annotations: { [POD_DELETION_COST_ANNOTATION]: CHEAPEST_DELETION_COST },
      })
      .catch(error => {
        // A source already gone (salvage) needs no ranking.
        if (!isNotFound(error)) throw error;
      });
    this.sourceCheapest = true;
  }

  private async heldBackLabel(name: string): Promise<[string, string]> {
    const known = this.heldBack.get(name);
    if (known) return known;
    const pod = await this.pods.get(name);
    const annotation = pod?.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION];
    if (!annotation) {
      throw new PermanentMigrationError(
        `pod ${name} is not a hand-off member (no ${HELD_BACK_LABEL_ANNOTATION} annotation); clients are only sent to members Ferry started`,
      );
    }
    const label = splitLabel(annotation);
    this.heldBack.set(name, label);
    return label;
  }

  private handoffMembers(): Promise<V1Pod[]> {
    return this.pods.list(`${HANDOFF_OF_LABEL}=${this.sourcePod}`);
  }

  /** Whether a hand-off member carries its held-back label again. */
  private joined(pod: V1Pod): boolean {
    const [key, value] = splitLabel(
      pod.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION],
    );
    return key !== '' && pod.metadata?.labels?.[key] === value;
  }
}

/** A held-back label annotation's key and value; empty strings when it is missing. */
export function splitLabel(annotation: string | undefined): [string, string] {
  const at = annotation?.indexOf('=') ?? -1;
  if (!annotation || at < 0) return ['', ''];
  return [annotation.slice(0, at), annotation.slice(at + 1)];
}
