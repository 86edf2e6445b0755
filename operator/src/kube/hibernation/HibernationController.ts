import type { V1Pod } from '@kubernetes/client-node';
import type { HibernationStatus } from '../../agent/ContainerHibernation';
import {
  HIBERNATED_REQUESTS_ANNOTATION,
  HIBERNATE_AFTER_ANNOTATION,
  HIBERNATION_LABEL,
  HIBERNATION_REFUSED_ANNOTATION,
  HIBERNATION_SUSPENDED_ANNOTATION,
  PUBLISHED_FOR_HIBERNATION_ANNOTATION,
} from '../client/ferryKeys';
import type { NodeAgentFinder } from '../runtimes/checkpoint/KubeCheckpointDriver';
import { isReady } from '../state/workloadViews';
import type { HibernationCluster, MetadataChange } from './HibernationCluster';
import {
  HibernationPhase,
  hibernationId,
  hibernationRefusal,
  parseHibernateAfter,
  sleepingRequests,
} from './hibernationPolicy';

/**
 * How often every opted-in pod is looked at. The agent on the pod's node does
 * the timing (idle period, first packet); this only follows it with the pod's
 * label and requests, so a second of lag shows in the label, never in a wake.
 */
export const HIBERNATION_RECONCILE_INTERVAL_MS = 1_000;
/** The runtime class whose wrapper restores a hibernated container. */
const FERRY_RUNTIME_CLASS = 'ferry';

/** What the hibernation controller needs. */
export interface HibernationControllerOptions {
  /** The pods, their Services and owners, as they are now. */
  cluster: HibernationCluster;
  agents: NodeAgentFinder;
  /**
   * The idle periods SpotPolicies give their workloads' members
   * (`spec.hibernateAfter`), by the member's `namespace/name`; asked once per
   * pass. A policy's takes precedence over the pod's own annotation: the policy
   * holds the most recent deliberate choice of the catalog, the portal and the
   * workload's annotations (which the operator copies into it).
   */
  policyHibernateAfter?: () => ReadonlyMap<string, string>;
  log?: (message: string) => void;
}

/**
 * Follows the pods that opted into hibernation (`ferry.dev/hibernate-after`):
 * asks the node agent on each pod's node to watch its container, and shows
 * what the agent did on the pod. While the agent keeps the container
 * checkpointed, the pod's requests are zero (in-place resize, the `resize`
 * subresource), so the scheduler and autoscalers see its node's capacity free;
 * its former requests wait in an annotation and come back when it wakes. The
 * `ferry.dev/hibernation` label says RUNNING, HIBERNATING, SCALED_DOWN or
 * WAKING. A pod that must not sleep is annotated with the reason instead. A
 * pod a checkpoint move is taking off its node is left to the move, which
 * woke it and ended its watch (HIBERNATION_SUSPENDED_ANNOTATION). A pod opts
 * in by its annotation or by its workload's SpotPolicy (`spec.hibernateAfter`),
 * whichever says it; the policy when both do.
 */
export class HibernationController {
  constructor(private readonly options: HibernationControllerOptions) {}

  /** Follows every opted-in pod once; one pod's failure does not stop the others. */
  async reconcileAll(): Promise<void> {
    const pods = await this.options.cluster.listPods();
    const byPolicy = this.options.policyHibernateAfter?.() ?? new Map();
    await Promise.all(
      pods
        .map(pod => ({
          pod,
          after:
            byPolicy.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`) ||
            pod.metadata?.annotations?.[HIBERNATE_AFTER_ANNOTATION] ||
            undefined,
        }))
        .filter(
          ({ pod, after }) =>
            (after || pod.metadata?.labels?.[HIBERNATION_LABEL]) &&
            !isSuspended(pod),
        )
        .map(({ pod, after }) =>
          (after ? this.reconcile(pod, after) : this.optOut(pod)).catch(error =>
            this.log(
              `${pod.metadata?.namespace}/${pod.metadata?.name}: ${
                error?.message ?? error
              }`,
            ),
          ),
        ),
    );
  }

  /** Follows the pod until `signal` aborts. */
  async run(
    signal: AbortSignal,
    intervalMs = HIBERNATION_RECONCILE_INTERVAL_MS,
  ): Promise<void> {
    while (!signal.aborted) {
      await this.reconcileAll().catch(error =>
        this.log(`listing pods: ${error?.message ?? error}`),
      );
      await new Promise(resolve => setTimeout(resolve, intervalMs));
    }
  }

  /**
   * Follows one pod that asks to hibernate after `value` (by default its
   * annotation's); resolves with the phase its label now says, if it takes part.
   */
  async reconcile(
    pod: V1Pod,
    value = pod.metadata?.annotations?.[HIBERNATE_AFTER_ANNOTATION],
  ): Promise<HibernationPhase | undefined> {
    const node = pod.spec?.nodeName;
    if (!value || !node || pod.status?.phase !== 'Running') return undefined;
    let idleMs: number;
    try {
      idleMs = parseHibernateAfter(value);
    } catch (error) {
      await this.refuse(pod, (error as Error).message);
      return undefined;
    }
    const container = pod.spec!.containers[0];
    const ports = (container.ports ?? [])
      .filter(p => (p.protocol ?? 'TCP') === 'TCP')
      .map(p => p.containerPort);
    const refusal = await this.refusal(pod, ports);
    if (refusal) {
      await this.refuse(pod, refusal);
      return undefined;
    }
    const containerId = pod.status?.containerStatuses
      ?.find(s => s.name === container.name)
      ?.containerID?.replace(/^[a-z]+:\/\//, '');
    if (!containerId) return undefined;
    await this.keepPublished(pod);
    // Looked at again just before the watch starts: a move that marked the pod
    // since it was listed has stopped its watch, and a watch started now would
    // checkpoint the container under the move.
    const current = await this.options.cluster.getPod(
      pod.metadata!.namespace!,
      pod.metadata!.name!,
    );
    if (current.metadata?.uid !== pod.metadata?.uid || isSuspended(current)) {
      return undefined;
    }
    const agent = await this.options.agents.agentFor(node);
    const status = await agent.watchForHibernation(
      hibernationId(pod.metadata!.uid!),
      {
        containerId,
        ports,
        idleMs,
      },
    );
    // The agent's refusal holds for now (open connections close): it goes
    // with them, and a refusal from the pod's spec stopped us above.
    if (status.refusal) {
      await this.refuse(pod, status.refusal);
    } else if (pod.metadata?.annotations?.[HIBERNATION_REFUSED_ANNOTATION]) {
      await this.patchMetadata(pod, {
        annotations: { [HIBERNATION_REFUSED_ANNOTATION]: null },
      });
    }
    return this.follow(pod, status);
  }

  /**
   * Hibernating and waking restart the pod's container (into a holder, and
   * back into the restored process), and a restarting container makes the pod
   * NotReady for a moment. Its Services would drop its address then, and
   * kube-proxy answers a Service without endpoints with a rejection: the
   * waking client's retransmitted SYN would meet "connection refused" instead
   * of the held port. So the Services that select a pod which may sleep
   * publish its address whether ready or not; the agent holds what arrives.
   * A lone member is the only kind that sleeps, so no other member loses
   * traffic to a not-ready one.
   */
  private async keepPublished(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const services = await this.options.cluster.listServices(namespace);
    const labels = pod.metadata?.labels ?? {};
    for (const service of services) {
      const selector = service.spec?.selector ?? {};
      const selects =
        Object.keys(selector).length > 0 &&
        Object.entries(selector).every(([k, v]) => labels[k] === v);
      if (!selects || service.spec?.publishNotReadyAddresses) continue;
      await this.options.cluster.patchService(
        namespace,
        service.metadata!.name!,
        {
          annotations: {
            [PUBLISHED_FOR_HIBERNATION_ANNOTATION]: pod.metadata!.name!,
          },
          publishNotReadyAddresses: true,
        },
      );
    }
  }

  /** Why the pod must not sleep, or undefined when it may. */
  private async refusal(
    pod: V1Pod,
    ports: number[],
  ): Promise<string | undefined> {
    const containers = pod.spec!.containers.length;
    if (containers > 1) {
      return `it has ${containers} containers; hibernation checkpoints a pod of one`;
    }
    if (pod.status?.qosClass === 'Guaranteed') {
      return 'its requests equal its limits (Guaranteed QoS), and a resize may not change the QoS class, so they could not drop; set requests below limits';
    }
    return hibernationRefusal({
      ...(await this.workloadOf(pod)),
      ferryRuntime: pod.spec?.runtimeClassName === FERRY_RUNTIME_CLASS,
      ports,
    });
  }

  /**
   * A pod that took part and no longer asks to (its annotation removed): woken
   * if it sleeps, no longer watched, its requests back, its label and its
   * Services' published not-ready address gone.
   */
  private async optOut(pod: V1Pod): Promise<void> {
    const node = pod.spec?.nodeName;
    if (!node || pod.status?.phase !== 'Running') return;
    const agent = await this.options.agents.agentFor(node);
    const id = hibernationId(pod.metadata!.uid!);
    const watched = await agent.hibernation(id).then(
      () => true,
      error => {
        if (/ 404 /.test(String(error?.message))) return false;
        throw error;
      },
    );
    if (watched) {
      await agent.wake(id);
      await agent.stopWatching(id);
    }
    const saved = pod.metadata?.annotations?.[HIBERNATED_REQUESTS_ANNOTATION];
    if (saved) {
      await this.resize(
        pod,
        JSON.parse(saved) as Record<string, Record<string, string>>,
      );
    }
    // Woken, its container restarted: until it is Ready again its Services
    // keep publishing it, or kube-proxy would refuse its clients meanwhile.
    if (!isReady(pod)) return;
    await this.unpublish(pod);
    await this.patchMetadata(pod, {
      labels: { [HIBERNATION_LABEL]: null },
      annotations: { [HIBERNATED_REQUESTS_ANNOTATION]: null },
    });
  }

  /** Undoes {@link keepPublished} on the Services it changed for this pod. */
  private async unpublish(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const services = await this.options.cluster.listServices(namespace);
    for (const service of services) {
      const annotations = service.metadata?.annotations ?? {};
      if (
        annotations[PUBLISHED_FOR_HIBERNATION_ANNOTATION] !== pod.metadata!.name
      ) {
        continue;
      }
      await this.options.cluster.patchService(
        namespace,
        service.metadata!.name!,
        {
          annotations: { [PUBLISHED_FOR_HIBERNATION_ANNOTATION]: null },
          publishNotReadyAddresses: false,
        },
      );
    }
  }

  /** Puts the agent's view on the pod: its requests and its label. */
  private async follow(
    pod: V1Pod,
    status: HibernationStatus,
  ): Promise<HibernationPhase> {
    const saved = pod.metadata?.annotations?.[HIBERNATED_REQUESTS_ANNOTATION];
    if (status.phase === 'HIBERNATED') {
      if (!saved) {
        // Saved before they change: a controller that dies between the two
        // steps finds them on the pod and can put them back.
        const requests = Object.fromEntries(
          pod.spec!.containers.map(c => [c.name, c.resources?.requests ?? {}]),
        );
        await this.patchMetadata(pod, {
          labels: { [HIBERNATION_LABEL]: 'HIBERNATING' },
          annotations: {
            [HIBERNATED_REQUESTS_ANNOTATION]: JSON.stringify(requests),
          },
        });
        await this.resize(
          pod,
          Object.fromEntries(
            pod.spec!.containers.map(c => [
              c.name,
              sleepingRequests(
                c.resources?.requests ?? {},
                c.resources?.limits ?? {},
              ),
            ]),
          ),
        );
      }
      return this.label(pod, 'SCALED_DOWN');
    }
    if (status.phase === 'RUNNING' && saved) {
      await this.resize(
        pod,
        JSON.parse(saved) as Record<string, Record<string, string>>,
      );
      await this.patchMetadata(pod, {
        labels: { [HIBERNATION_LABEL]: 'RUNNING' },
        annotations: { [HIBERNATED_REQUESTS_ANNOTATION]: null },
      });
      return 'RUNNING';
    }
    return this.label(pod, status.phase);
  }

  /** The pod's workload and its desired replicas (a bare pod is a workload of one). */
  private async workloadOf(
    pod: V1Pod,
  ): Promise<{ workloadKind?: string; replicas: number }> {
    const owner = pod.metadata?.ownerReferences?.find(o => o.controller);
    if (!owner) return { replicas: 1 };
    if (owner.kind !== 'ReplicaSet' && owner.kind !== 'StatefulSet') {
      return { workloadKind: owner.kind, replicas: 1 };
    }
    const workload = await this.options.cluster.getOwner(
      pod.metadata!.namespace!,
      owner.kind,
      owner.name,
    );
    const above = workload.metadata?.ownerReferences?.find(o => o.controller);
    return {
      workloadKind: above?.kind ?? owner.kind,
      replicas: workload.spec?.replicas ?? 1,
    };
  }

  private async refuse(pod: V1Pod, reason: string): Promise<void> {
    if (pod.metadata?.annotations?.[HIBERNATION_REFUSED_ANNOTATION] === reason)
      return;
    await this.patchMetadata(pod, {
      annotations: { [HIBERNATION_REFUSED_ANNOTATION]: reason },
    });
  }

  private async label(
    pod: V1Pod,
    phase: HibernationPhase,
  ): Promise<HibernationPhase> {
    if (pod.metadata?.labels?.[HIBERNATION_LABEL] !== phase) {
      await this.patchMetadata(pod, { labels: { [HIBERNATION_LABEL]: phase } });
    }
    return phase;
  }

  private patchMetadata(pod: V1Pod, metadata: MetadataChange): Promise<void> {
    return this.options.cluster.patchPodMetadata(
      pod.metadata!.namespace!,
      pod.metadata!.name!,
      metadata,
    );
  }

  /** Sets containers' requests in place, through the pod's `resize` subresource. */
  private resize(
    pod: V1Pod,
    requests: Record<string, Record<string, string>>,
  ): Promise<void> {
    return this.options.cluster.resizePod(
      pod.metadata!.namespace!,
      pod.metadata!.name!,
      requests,
    );
  }

  private log(message: string): void {
    (this.options.log ?? (() => {}))(`hibernation: ${message}`);
  }
}

/** Whether a move holds the pod awake (see HIBERNATION_SUSPENDED_ANNOTATION). */
function isSuspended(pod: V1Pod): boolean {
  return Boolean(pod.metadata?.annotations?.[HIBERNATION_SUSPENDED_ANNOTATION]);
}
