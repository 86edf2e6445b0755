import type {
  V1Node,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1Pod,
} from '@kubernetes/client-node';
import type { JsonPatchOperation } from '../kube/admission/AdmissionWebhookServer';
import { NODES, PODS } from '../kube/client/resources';
import {
  cpuMillisOf,
  memoryMiBOf,
  podRequestsOf,
} from '../kube/state/nodeViews';
import type { SimulatedCluster } from './SimulatedCluster';

/** Applies the webhook's JSON patch (RFC 6902 add, replace, remove: what the placement webhook answers). */
export function applyJsonPatch<T>(object: T, ops: JsonPatchOperation[]): T {
  const result = structuredClone(object) as any;
  for (const op of ops) {
    const path = op.path
      .split('/')
      .slice(1)
      .map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = path.pop()!;
    let parent = result;
    for (const key of path) parent = parent[key] ??= {};
    if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (Array.isArray(parent) && last === '-') {
      parent.push((op as { value: unknown }).value);
    } else {
      parent[last] = (op as { value: unknown }).value;
    }
  }
  return result;
}

function requirementHolds(
  requirement: V1NodeSelectorRequirement,
  value: string | undefined,
): boolean {
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && (requirement.values ?? []).includes(value);
    case 'NotIn':
      return value === undefined || !(requirement.values ?? []).includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    default:
      return false;
  }
}

function termHolds(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  return (
    (term.matchExpressions ?? []).every(r =>
      requirementHolds(r, labels[r.key]),
    ) &&
    (term.matchFields ?? []).every(r =>
      requirementHolds(
        r,
        r.key === 'metadata.name' ? node.metadata?.name : undefined,
      ),
    )
  );
}

/** Whether the pod may run on the node: its selector, its required node affinity, and no taint it does not tolerate. */
function fits(pod: V1Pod, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  if (
    !Object.entries(pod.spec?.nodeSelector ?? {}).every(
      ([k, v]) => labels[k] === v,
    )
  ) {
    return false;
  }
  const required =
    pod.spec?.affinity?.nodeAffinity
      ?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (
    required &&
    required.length > 0 &&
    !required.some(t => termHolds(t, node))
  ) {
    return false;
  }
  const tolerated = new Set((pod.spec?.tolerations ?? []).map(t => t.key));
  return !(node.spec?.taints ?? []).some(
    t => t.effect !== 'PreferNoSchedule' && !tolerated.has(t.key),
  );
}

/** The weight of the pod's preferred node affinity terms the node meets. */
function preference(pod: V1Pod, node: V1Node): number {
  return (
    pod.spec?.affinity?.nodeAffinity
      ?.preferredDuringSchedulingIgnoredDuringExecution ?? []
  )
    .filter(p => termHolds(p.preference, node))
    .reduce((sum, p) => sum + p.weight, 0);
}

/**
 * The demo's API server and kube-scheduler for a pod being created: the
 * operator's placement webhook patches it, and it is bound to the node that
 * fits it (selector, required affinity, taints, room) with the most weight of
 * its preferred affinity, then the most free memory; it stays pending when no
 * node fits.
 */
export class SimulatedScheduler {
  constructor(
    private readonly options: {
      cluster: SimulatedCluster;
      /** The operator's placement webhook. */
      admit: (pod: V1Pod, namespace: string) => Promise<JsonPatchOperation[]>;
    },
  ) {}

  /** Creates the pod through the webhook and binds it; returns it as stored. */
  async create(pod: V1Pod): Promise<V1Pod> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const admitted = applyJsonPatch(
      pod,
      await this.options.admit(pod, namespace),
    );
    const node = this.nodeFor(admitted);
    return this.options.cluster.put<V1Pod>(PODS, {
      ...admitted,
      spec: { ...admitted.spec!, nodeName: node },
      status: node
        ? { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }
        : { phase: 'Pending' },
    });
  }

  /** Binds the pending pods that fit somewhere now (after a node was added or freed). */
  bindPending(): void {
    for (const pod of this.options.cluster.objects<V1Pod>(PODS)) {
      if (pod.spec?.nodeName) continue;
      const node = this.nodeFor(pod);
      if (!node) continue;
      this.options.cluster.put<V1Pod>(PODS, {
        ...pod,
        spec: { ...pod.spec!, nodeName: node },
        status: {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      });
    }
  }

  private nodeFor(pod: V1Pod): string | undefined {
    const { cluster } = this.options;
    const requests = podRequestsOf(pod);
    const used = new Map<string, { cpuMillis: number; memoryMiB: number }>();
    for (const other of cluster.objects<V1Pod>(PODS)) {
      const name = other.spec?.nodeName;
      if (!name) continue;
      const r = podRequestsOf(other);
      const u = used.get(name) ?? { cpuMillis: 0, memoryMiB: 0 };
      used.set(name, {
        cpuMillis: u.cpuMillis + r.cpuMillis,
        memoryMiB: u.memoryMiB + r.memoryMiB,
      });
    }
    let best: { name: string; weight: number; freeMiB: number } | undefined;
    for (const node of cluster.objects<V1Node>(NODES)) {
      const name = node.metadata?.name ?? '';
      const ready = node.status?.conditions?.some(
        c => c.type === 'Ready' && c.status === 'True',
      );
      if (!ready || node.spec?.unschedulable || !fits(pod, node)) continue;
      const u = used.get(name) ?? { cpuMillis: 0, memoryMiB: 0 };
      const freeCpu = cpuMillisOf(node.status?.allocatable?.cpu) - u.cpuMillis;
      const freeMiB =
        memoryMiBOf(node.status?.allocatable?.memory) - u.memoryMiB;
      if (freeCpu < requests.cpuMillis || freeMiB < requests.memoryMiB)
        continue;
      const weight = preference(pod, node);
      if (
        !best ||
        weight > best.weight ||
        (weight === best.weight && freeMiB > best.freeMiB)
      ) {
        best = { name, weight, freeMiB };
      }
    }
    return best?.name;
  }
}
