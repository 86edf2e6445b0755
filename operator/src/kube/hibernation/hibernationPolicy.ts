/**
 * What a workload asks of hibernation, and whether it may have it: the
 * `ferry.dev/hibernate-after` annotation read into milliseconds, and the
 * workloads that must not sleep.
 */
import { quorumOf } from '../../core/quorum';

// Shared with the portal, which checks a policy's hibernateAfter the same way.
export {
  MAX_HIBERNATE_AFTER_MS,
  MIN_HIBERNATE_AFTER_MS,
  parseHibernateAfter,
} from '@ferry/plugin-ferry-common';

/** Where a pod is in hibernation, as its `ferry.dev/hibernation` label says. */
export type { HibernationPhase } from '../../api/v1alpha1';

/** The node agent's name for a pod's hibernation watch. */
export function hibernationId(podUid: string): string {
  return `hib-${podUid}`;
}

/** What decides whether a pod's workload may sleep. */
export interface HibernationCandidate {
  /** The workload's kind (Deployment, StatefulSet, …), or undefined for a bare pod. */
  workloadKind?: string;
  /** Its desired replicas. */
  replicas: number;
  /** Whether the pod runs with Ferry's runtime class, which can restore it. */
  ferryRuntime: boolean;
  /** The TCP ports its containers declare, which traffic wakes it on. */
  ports: number[];
}

/**
 * Why a pod must not hibernate, or undefined when it may. A member of a
 * replicated workload holds a share of its quorum: asleep, it neither votes
 * nor replicates, so the others lose a member without any node having failed,
 * and the members that stay awake keep it from ever seeing the idle period its
 * own clients see. Without Ferry's runtime class nothing can restore it, and
 * without a declared port no packet can wake it.
 */
export function hibernationRefusal(
  candidate: HibernationCandidate,
): string | undefined {
  if (candidate.replicas > 1) {
    return (
      `${candidate.workloadKind ?? 'the workload'} has ${
        candidate.replicas
      } replicas, whose quorum of ${quorumOf(candidate.replicas)} ` +
      'needs every member awake to vote and replicate; hibernation is for a lone member'
    );
  }
  if (!candidate.ferryRuntime) {
    return "the pod does not run with runtimeClassName 'ferry', so no node could restore it";
  }
  if (candidate.ports.length === 0) {
    return 'its containers declare no TCP port, so no packet could wake it';
  }
  return undefined;
}

/**
 * A sleeping container's requests: cpu zero where it has limits, memory 1Mi.
 * A container with requests and no limits would turn BestEffort at zero, and
 * a resize may not change a pod's QoS class, so its cpu keeps the least
 * quantity. Memory never goes to zero: the kubelet (1.35) reports an actuated
 * memory request of zero as no value and keeps showing the old one in the
 * container's status, and the scheduler counts the larger of spec and status,
 * so a zero would leave the whole request reserved on the node.
 */
export function sleepingRequests(
  requests: Record<string, string>,
  limits: Record<string, string>,
): Record<string, string> {
  const hasLimits = Object.keys(limits).length > 0;
  const asleep: Record<string, string> = {
    cpu: hasLimits ? '0' : '1m',
    memory: '1Mi',
  };
  return Object.fromEntries(
    Object.keys(requests).map(name => [name, asleep[name] ?? requests[name]]),
  );
}
