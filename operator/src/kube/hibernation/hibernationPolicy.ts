/**
 * What a workload asks of hibernation, and whether it may have it: the
 * `ferry.dev/hibernate-after` annotation read into milliseconds, and the
 * workloads that must not sleep.
 */
import { quorumOf } from '../../core/quorum';

/** Where a pod is in hibernation, as its `ferry.dev/hibernation` label says. */
export type HibernationPhase =
  | 'RUNNING'
  | 'HIBERNATING'
  | 'SCALED_DOWN'
  | 'WAKING';

/**
 * The shortest idle period accepted. Below it a container would be checkpointed
 * between two requests of an ordinary client; the post's demo uses 10 s.
 */
export const MIN_HIBERNATE_AFTER_MS = 5_000;
/** The longest: beyond a week an owner means "never", which is the annotation's absence. */
export const MAX_HIBERNATE_AFTER_MS = 7 * 24 * 3_600_000;

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION = /^(\d+)(s|m|h)$/;

/**
 * Reads `ferry.dev/hibernate-after` (`10s`, `10m`, `2h`: a whole number and one
 * unit) into milliseconds. A value that does not fit is an error that says what
 * would, since a silently ignored typo would leave a store awake and billed.
 */
export function parseHibernateAfter(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match) {
    throw new Error(
      `ferry.dev/hibernate-after is '${value}'; give a whole number of seconds, minutes or hours, such as 10s, 10m or 2h`,
    );
  }
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  if (ms < MIN_HIBERNATE_AFTER_MS || ms > MAX_HIBERNATE_AFTER_MS) {
    throw new Error(
      `ferry.dev/hibernate-after is '${value}'; it must be between ${
        MIN_HIBERNATE_AFTER_MS / 1_000
      }s and ${MAX_HIBERNATE_AFTER_MS / 3_600_000}h`,
    );
  }
  return ms;
}

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
