/**
 * What a Kubernetes Node tells Ferry: its kind of capacity and pool, from the labels
 * the provisioners already set, and whether it is going away, from the taints,
 * conditions and cordons that interruption handlers and drains leave on it.
 */
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import type { CapacityType, MigrationReason } from '../../api/v1alpha1';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import { SIGNAL_STRENGTH } from '../../core/migrationPlanner';
import type { NodeView, Resources } from '../../core/model';
import { TERMINATION_NOTICE_MS } from '../../cloud/CloudProvider';
import { capacityTypeFromLabels, NODE_LABELS } from '../../cloud/nodeLabels';

/** How long a provider's termination notice gives, from when it is seen. */
export const NOTICE_WINDOW_MS = TERMINATION_NOTICE_MS;

/** Taints and conditions that announce a node's end, and what each means. */
const TAINT_SIGNALS: Record<
  string,
  { reason: MigrationReason; windowMs?: number }
> = {
  // AWS Node Termination Handler (taintNode: true); the value is the event id.
  'aws-node-termination-handler/spot-itn': {
    reason: 'notice',
    windowMs: NOTICE_WINDOW_MS.aws,
  },
  'aws-node-termination-handler/asg-lifecycle-termination': { reason: 'drain' },
  'aws-node-termination-handler/scheduled-maintenance': { reason: 'drain' },
  'aws-node-termination-handler/rebalance-recommendation': {
    reason: 'recommendation',
  },
  // GKE, on a Spot or preemptible VM being preempted.
  'cloud.google.com/impending-node-termination': {
    reason: 'notice',
    windowMs: NOTICE_WINDOW_MS.gcp,
  },
  // Karpenter (v1) and the cluster autoscaler, on a node they are about to remove.
  'karpenter.sh/disrupted': { reason: 'drain' },
  ToBeDeletedByClusterAutoscaler: { reason: 'drain' },
  // The out-of-service taint of non-graceful node shutdown.
  'node.kubernetes.io/out-of-service': { reason: 'drain' },
};
/** AKS's node-problem-detector condition for a Spot VM's eviction (Azure Scheduled Events). */
const AKS_PREEMPT_CONDITION = 'PreemptScheduled';

/**
 * Spot or permanent, from whichever provisioner labelled the node
 * (`capacityTypeFromLabels`); a node no label marks as spot counts as permanent.
 */
export function capacityTypeOf(node: V1Node): CapacityType {
  return capacityTypeFromLabels(node.metadata?.labels ?? {});
}

/**
 * The strongest sign that the node is going away, if any: a termination notice
 * (NTH's spot taint, GKE's impending-termination taint, AKS's PreemptScheduled),
 * a drain (a cordon by any tool, Karpenter or the autoscaler removing it), or a
 * rebalance recommendation. `firstSeenAt` is when this process first saw the
 * signal; a notice's deadline counts from it, since the taints carry no time.
 */
export function disruptionSignalOf(
  node: V1Node,
  firstSeenAt: number,
): DisruptionSignal | undefined {
  const name = node.metadata?.name ?? '';
  const found: DisruptionSignal[] = [];
  for (const taint of node.spec?.taints ?? []) {
    const meaning = TAINT_SIGNALS[taint.key];
    if (!meaning) continue;
    found.push({
      node: name,
      reason: meaning.reason,
      deadline:
        meaning.windowMs === undefined
          ? undefined
          : firstSeenAt + meaning.windowMs,
    });
  }
  if (
    node.status?.conditions?.some(
      c => c.type === AKS_PREEMPT_CONDITION && c.status === 'True',
    )
  ) {
    found.push({
      node: name,
      reason: 'notice',
      deadline: firstSeenAt + NOTICE_WINDOW_MS.azure,
    });
  }
  if (node.spec?.unschedulable) found.push({ node: name, reason: 'drain' });
  if (found.length === 0) return undefined;
  return found.reduce((strongest, signal) =>
    SIGNAL_STRENGTH[signal.reason] > SIGNAL_STRENGTH[strongest.reason] ||
    (signal.reason === strongest.reason &&
      (signal.deadline ?? Infinity) < (strongest.deadline ?? Infinity))
      ? signal
      : strongest,
  );
}

const CPU_SUFFIX_MILLIS: Record<string, number> = {
  '': 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
  k: 1_000_000,
};
const MEMORY_SUFFIX_BYTES: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

function parseQuantity(
  quantity: string,
  suffixes: Record<string, number>,
): number {
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(
    quantity.trim(),
  );
  if (!match || suffixes[match[2]] === undefined) {
    throw new Error(`not a Kubernetes quantity: ${quantity}`);
  }
  return Number(match[1]) * suffixes[match[2]];
}

/** A CPU quantity (`2`, `500m`, `0.5`) in millicores. */
export function cpuMillisOf(quantity: string | undefined): number {
  return quantity === undefined
    ? 0
    : Math.round(parseQuantity(quantity, CPU_SUFFIX_MILLIS));
}

/** A memory quantity (`8Gi`, `512Mi`, `1G`, `1073741824`) in MiB. */
export function memoryMiBOf(quantity: string | undefined): number {
  return quantity === undefined
    ? 0
    : parseQuantity(quantity, MEMORY_SUFFIX_BYTES) / 2 ** 20;
}

/** Each pod object's requests, worked out once: every view of nodes and workloads reads them. */
const requestsOfPod = new WeakMap<V1Pod, Resources>();

/** What a pod asks of its node: its containers' requests, or its largest init container's if larger. */
export function podRequestsOf(pod: V1Pod): Resources {
  // A cached pod object is replaced, never changed, when the pod changes.
  let requests = requestsOfPod.get(pod);
  if (!requests) requestsOfPod.set(pod, (requests = sumRequestsOf(pod)));
  return { ...requests };
}

function sumRequestsOf(pod: V1Pod): Resources {
  const sum = (containers: V1Container[]) =>
    containers.reduce(
      (total: Resources, c) => ({
        cpuMillis: total.cpuMillis + cpuMillisOf(c.resources?.requests?.cpu),
        memoryMiB: total.memoryMiB + memoryMiBOf(c.resources?.requests?.memory),
      }),
      { cpuMillis: 0, memoryMiB: 0 },
    );
  const running = sum(pod.spec?.containers ?? []);
  const init = (pod.spec?.initContainers ?? []).map(c => sum([c]));
  return {
    cpuMillis: Math.max(running.cpuMillis, ...init.map(r => r.cpuMillis)),
    memoryMiB: Math.max(running.memoryMiB, ...init.map(r => r.memoryMiB)),
  };
}

/**
 * The planner's view of a node: its pool, its capacity, what the pods bound to it
 * leave free, and whether it may take new pods.
 */
export function nodeViewOf(
  node: V1Node,
  podsOnNode: readonly V1Pod[],
  signal?: DisruptionSignal,
): NodeView {
  const labels = node.metadata?.labels ?? {};
  const allocatable: Resources = {
    cpuMillis: cpuMillisOf(node.status?.allocatable?.cpu),
    memoryMiB: memoryMiBOf(node.status?.allocatable?.memory),
  };
  const requested = podsOnNode
    .filter(
      pod =>
        pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed',
    )
    .map(podRequestsOf)
    .reduce(
      (total, r) => ({
        cpuMillis: total.cpuMillis + r.cpuMillis,
        memoryMiB: total.memoryMiB + r.memoryMiB,
      }),
      { cpuMillis: 0, memoryMiB: 0 },
    );
  return {
    name: node.metadata?.name ?? '',
    capacityType: capacityTypeOf(node),
    instanceType: labels[NODE_LABELS.instanceType] ?? 'unknown',
    zone: labels[NODE_LABELS.zone] ?? 'unknown',
    allocatable,
    free: {
      cpuMillis: Math.max(0, allocatable.cpuMillis - requested.cpuMillis),
      memoryMiB: Math.max(0, allocatable.memoryMiB - requested.memoryMiB),
    },
    terminatesAt: signal?.reason === 'notice' ? signal.deadline : undefined,
    unschedulable: Boolean(node.spec?.unschedulable) || signal !== undefined,
  };
}
