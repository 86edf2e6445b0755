/**
 * The valkey driver on a cluster: members are pods, and clients are sent to the
 * new member by the hand-off its Deployment's ReplicaSet agrees with (README,
 * "Hand-offs the workload's controller agrees with").
 *
 * The driver's runtime names members by pod name alone, and one driver serves
 * every Migration; so each Migration gets a runtime and a redirector bound to its
 * namespace and its source pod (`KubeValkeyDriver`).
 */
import type { KubeConfig, V1Container, V1Pod } from '@kubernetes/client-node';
import type { Clock } from '../core/clock';
import { NODE_LABELS } from '../cloud/nodeLabels';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  TargetLostError,
} from '../migration/MigrationDriver';
import type {
  ValkeyAccess,
  ValkeyEndpoint,
} from '../migration/valkey/ValkeyAdmin';
import {
  ClientRedirector,
  SwitchoverMode,
  ValkeyDriver,
  ValkeyMemberRuntime,
} from '../migration/valkey/ValkeyDriver';
import { apiRequest, KubeApiError } from './apiRequest';

/** On a hand-off member: the pod it takes over from. */
export const HANDOFF_OF_LABEL = 'ferry.dev/handoff-of';
/**
 * On a hand-off member: the selector label (`key=value`) it was started without,
 * which it is given when clients are sent to it.
 */
export const HELD_BACK_LABEL_ANNOTATION = 'ferry.dev/held-back-label';
/** The annotation ReplicaSets rank pods by when they remove one (Kubernetes 1.22+). */
export const POD_DELETION_COST_ANNOTATION =
  'controller.kubernetes.io/pod-deletion-cost';
/** The lowest deletion cost: the pod a ReplicaSet removes first. */
export const CHEAPEST_DELETION_COST = String(-(2 ** 31));
/** Longest wait for a new member's pod to be Ready (image pulled, probes passing). */
export const MEMBER_POD_READY_TIMEOUT_MS = 60_000;
/** How often a new member's pod is looked at while it starts. */
const MEMBER_POD_POLL_MS = 250;
/** The port Valkey and Redis listen on unless the container declares another. */
const DEFAULT_VALKEY_PORT = 6379;
/** The label every ReplicaSet adds to its selector; holding it back would not keep a pod out of a Service. */
const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

function podsPath(namespace: string, name?: string): string {
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  return name ? `${collection}/${encodeURIComponent(name)}` : collection;
}

function isReady(pod: V1Pod): boolean {
  return Boolean(
    pod.status?.conditions?.some(
      c => c.type === 'Ready' && c.status === 'True',
    ),
  );
}

function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.code === 404;
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

/** The Kubernetes calls a hand-off makes, on pods of one namespace. */
class NamespacePods {
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

  /** Deletes the pod; no error when it is gone already. */
  async delete(name: string, gracePeriodSeconds?: number): Promise<void> {
    await apiRequest(
      this.kubeConfig,
      'DELETE',
      podsPath(this.namespace, name),
      { query: { gracePeriodSeconds } },
    ).catch(error => {
      if (!isNotFound(error)) throw error;
    });
  }
}

/**
 * Members of one Migration as pods: the source is the member's pod, the target a
 * bare pod cloned from the member's ReplicaSet template, on the target node, with
 * one selector label held back so that neither the ReplicaSet nor the Service
 * counts it while it is an empty replica.
 */
export class KubeValkeyMembers implements ValkeyMemberRuntime {
  private readonly pods: NamespacePods;

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
    return this.waitUntilReady(name, node);
  }

  async stopMember(member: ValkeyEndpoint): Promise<void> {
    await this.pods.delete(member.name);
  }

  /** Deleted at once: a member believed lost must not serve again, not even for a grace period. */
  async fenceMember(member: ValkeyEndpoint): Promise<void> {
    await this.pods.delete(member.name, 0);
  }

  // No otherReplicas: a Deployment's members are primaries of their own, never
  // copies of one another, so none can stand in for a lost source.

  private endpointOf(pod: V1Pod, node: string): ValkeyEndpoint | undefined {
    const container = valkeyContainer(pod);
    if (!container) {
      const names = (pod.spec?.containers ?? []).map(c => c.name).join(', ');
      throw new PermanentMigrationError(
        `pod ${this.options.namespace}/${pod.metadata?.name} has no Valkey or Redis container (it has ${names}); the valkey method needs a container named valkey or redis, or one running a valkey or redis image`,
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

  /** The new member: the ReplicaSet's template, less one selector label, on `node`. */
  private async newMemberPod(name: string, node: string): Promise<V1Pod> {
    const { namespace, sourcePod } = this.options;
    const source = await this.pods.get(sourcePod);
    if (!source) {
      throw new PermanentMigrationError(
        `member pod ${namespace}/${sourcePod} is gone before its replacement was started`,
      );
    }
    const owner = source.metadata?.ownerReferences?.find(ref => ref.controller);
    if (owner?.kind !== 'ReplicaSet') {
      throw new PermanentMigrationError(
        `${namespace}/${sourcePod} is ${
          owner ? `a member of ${owner.kind} ${owner.name}` : 'a bare pod'
        }: on a cluster the valkey method hands off members of Deployments only (a StatefulSet member's identity cannot exist twice and its hand-off is not built); set the SpotPolicy's migration to reschedule`,
      );
    }
    const replicaSet = await apiRequest<{
      spec?: {
        selector?: { matchLabels?: Record<string, string> };
        template?: V1Pod;
      };
    }>(
      this.options.kubeConfig,
      'GET',
      `/apis/apps/v1/namespaces/${encodeURIComponent(
        namespace,
      )}/replicasets/${encodeURIComponent(owner.name)}`,
    );
    const template = replicaSet.spec?.template ?? {};
    const heldBack = Object.keys(replicaSet.spec?.selector?.matchLabels ?? {})
      .filter(key => key !== POD_TEMPLATE_HASH_LABEL)
      .sort()[0];
    if (!heldBack) {
      throw new PermanentMigrationError(
        `ReplicaSet ${namespace}/${owner.name} selects by matchExpressions only: the hand-off needs a matchLabels label (besides ${POD_TEMPLATE_HASH_LABEL}) to start the new member outside the selector; add one to the Deployment's selector or set the SpotPolicy's migration to reschedule`,
      );
    }
    const { [heldBack]: heldBackValue, ...labels } =
      template.metadata?.labels ?? {};
    const spec = { ...template.spec! };
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
        nodeSelector: Object.keys(nodeSelector).length
          ? nodeSelector
          : undefined,
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

  private async waitUntilReady(
    name: string,
    node: string,
  ): Promise<ValkeyEndpoint> {
    const timeoutMs = MEMBER_POD_READY_TIMEOUT_MS;
    const until = Date.now() + timeoutMs;
    const where = `new member pod ${this.options.namespace}/${name} on ${node}`;
    for (;;) {
      const pod = await this.pods.get(name);
      if (!pod || pod.metadata?.deletionTimestamp) {
        throw new TargetLostError(`${where} was deleted while it started`);
      }
      const phase = pod.status?.phase;
      if (phase === 'Failed' || phase === 'Succeeded') {
        throw new TargetLostError(
          `${where} ended (${phase}: ${pod.status?.reason ?? ''} ${
            pod.status?.message ?? ''
          })`.trim(),
        );
      }
      const endpoint = isReady(pod) ? this.endpointOf(pod, node) : undefined;
      if (endpoint) return endpoint;
      if (Date.now() > until) {
        const waiting = (pod.status?.containerStatuses ?? [])
          .map(s => s.state?.waiting?.reason)
          .filter(Boolean);
        throw new TargetLostError(
          `${where} was not Ready after ${timeoutMs} ms (phase ${
            phase ?? 'unknown'
          }${waiting.length ? `, waiting: ${waiting.join(', ')}` : ''})`,
        );
      }
      await new Promise(resolve => setTimeout(resolve, MEMBER_POD_POLL_MS));
    }
  }
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

function splitLabel(annotation: string | undefined): [string, string] {
  const at = annotation?.indexOf('=') ?? -1;
  if (!annotation || at < 0) return ['', ''];
  return [annotation.slice(0, at), annotation.slice(at + 1)];
}

/** What the valkey driver on a cluster needs. */
export interface KubeValkeyDriverOptions {
  kubeConfig: KubeConfig;
  /** The operator's credentials for members; empty when members need none. */
  access: ValkeyAccess;
  clock: Clock;
  switchover?: SwitchoverMode;
}

/**
 * The valkey driver for Migrations on a cluster: each Migration is run by a
 * `ValkeyDriver` whose runtime and redirector are bound to it. The driver keeps
 * per-migration memory (the source's last seen offset), so one is kept per
 * Migration while it runs; a restarted operator makes a fresh one, which the
 * driver allows for.
 */
export class KubeValkeyDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  private readonly running = new Map<string, ValkeyDriver>();

  constructor(private readonly options: KubeValkeyDriverOptions) {}

  prepareTarget(ctx: MigrationStepContext): Promise<void> {
    return this.driverOf(ctx).prepareTarget(ctx);
  }
  transfer(ctx: MigrationStepContext): Promise<void> {
    return this.driverOf(ctx).transfer(ctx);
  }
  switchOver(ctx: MigrationStepContext): Promise<void> {
    return this.driverOf(ctx).switchOver(ctx);
  }
  verify(ctx: MigrationStepContext): Promise<void> {
    return this.driverOf(ctx).verify(ctx);
  }
  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    await this.driverOf(ctx).cleanUp(ctx);
    this.running.delete(keyOf(ctx));
  }
  async rollBack(ctx: MigrationStepContext): Promise<void> {
    await this.driverOf(ctx).rollBack(ctx);
    this.running.delete(keyOf(ctx));
  }
  salvage(ctx: MigrationStepContext): Promise<void> {
    return this.driverOf(ctx).salvage(ctx);
  }

  private driverOf(ctx: MigrationStepContext): ValkeyDriver {
    const key = keyOf(ctx);
    let driver = this.running.get(key);
    if (!driver) {
      const bound = {
        kubeConfig: this.options.kubeConfig,
        namespace: ctx.migration.metadata.namespace,
        sourcePod: ctx.migration.spec.pod,
      };
      driver = new ValkeyDriver({
        runtime: new KubeValkeyMembers(bound),
        redirector: new ReplicaSetHandoff(bound),
        access: this.options.access,
        clock: this.options.clock,
        switchover: this.options.switchover,
      });
      this.running.set(key, driver);
    }
    return driver;
  }
}

function keyOf(ctx: MigrationStepContext): string {
  return `${ctx.migration.metadata.namespace}/${ctx.migration.metadata.name}`;
}
