/**
 * An opted-in workload as the planner sees it, from the Kubernetes objects: the
 * SpotPolicy, the Deployment or StatefulSet it names, the pods that are its
 * members, the PodDisruptionBudget that covers them, and the Migrations under way.
 */
import type {
  V1LabelSelector,
  V1Pod,
  V1PodDisruptionBudget,
} from '@kubernetes/client-node';
import {
  FERRY_API_VERSION,
  Migration,
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
} from '../../api/v1alpha1';
import type { MemberView, WorkloadView } from '../../core/model';
import {
  parsePolicyAnnotations,
  POLICY_ANNOTATIONS,
} from '@ferry/plugin-ferry-common';
import { memoryMiBOf, podRequestsOf } from './nodeViews';
import { PROVISIONAL_POLICY_ANNOTATION } from '../client/ferryKeys';

/** Phases after which a migration no longer holds its member. */
const FINAL_PHASES = new Set(['Succeeded', 'RolledBack', 'Failed']);

/** Whether labels satisfy a label selector (matchLabels and matchExpressions). */
export function selectorMatches(
  selector: V1LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  // A missing selector selects nothing, as the API treats a nil selector; an empty one selects all.
  if (!selector) return false;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.prototype.hasOwnProperty.call(have, expression.key);
    const values = expression.values ?? [];
    switch (expression.operator) {
      case 'In':
        if (!present || !values.includes(have[expression.key])) return false;
        break;
      case 'NotIn':
        if (present && values.includes(have[expression.key])) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** The workload objects a SpotPolicy can name, the fields that matter here. */
export interface WorkloadObject {
  kind: 'Deployment' | 'StatefulSet';
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    annotations?: Record<string, string>;
  };
  spec?: {
    replicas?: number;
    selector?: V1LabelSelector;
    template?: { metadata?: { annotations?: Record<string, string> } };
    updateStrategy?: { type?: string };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
  };
}

/**
 * Whether the workload's controller is still replacing its pods with those of
 * its current template, as `kubectl rollout status` judges it: the controller
 * has not seen the latest spec, or fewer pods than desired are of the current
 * template, or a Deployment still has pods of an older one. A StatefulSet
 * updated `OnDelete` replaces nothing by itself and never counts.
 */
export function isRollingOut(workload: WorkloadObject): boolean {
  const { metadata, spec, status } = workload;
  if ((status?.observedGeneration ?? 0) < (metadata?.generation ?? 0)) {
    return true;
  }
  const desired = spec?.replicas ?? 1;
  if (workload.kind === 'StatefulSet') {
    return (
      spec?.updateStrategy?.type !== 'OnDelete' &&
      (status?.updatedReplicas ?? 0) < desired
    );
  }
  return (
    (status?.updatedReplicas ?? 0) < desired ||
    (status?.replicas ?? 0) > (status?.updatedReplicas ?? 0)
  );
}

/** A value that is a count or a percentage of `total`, rounded as the disruption controller rounds. */
function scaled(
  value: number | string,
  total: number,
  roundUp: boolean,
): number {
  if (typeof value === 'number') return value;
  const percent = Number(value.replace(/%$/, ''));
  const exact = (percent * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * How many of the workload's members the PodDisruptionBudget lets be down at once;
 * undefined when no budget covers them.
 */
export function pdbMaxUnavailableOf(
  budgets: V1PodDisruptionBudget[],
  namespace: string,
  memberLabels: Record<string, string> | undefined,
  replicas: number,
): number | undefined {
  let tightest: number | undefined;
  for (const budget of budgets) {
    if (budget.metadata?.namespace !== namespace) continue;
    if (!selectorMatches(budget.spec?.selector, memberLabels)) continue;
    let allowed: number | undefined;
    if (budget.spec?.maxUnavailable !== undefined) {
      allowed = scaled(
        budget.spec.maxUnavailable as number | string,
        replicas,
        true,
      );
    } else if (budget.spec?.minAvailable !== undefined) {
      allowed =
        replicas -
        scaled(budget.spec.minAvailable as number | string, replicas, true);
    }
    if (allowed !== undefined) {
      tightest = Math.max(0, Math.min(tightest ?? Infinity, allowed));
    }
  }
  return tightest;
}

/** Whether the pod's Ready condition is True. */
export function isReady(pod: V1Pod): boolean {
  return Boolean(
    pod.status?.conditions?.some(
      c => c.type === 'Ready' && c.status === 'True',
    ),
  );
}

/**
 * The members of a workload: its live pods (not finished, not being deleted) that
 * its selector picks and that its controller owns, directly (a StatefulSet) or
 * through a ReplicaSet it owns (a Deployment).
 */
export function membersOf(
  workload: WorkloadObject,
  pods: V1Pod[],
  replicaSetOwners: ReadonlyMap<string, string>,
): V1Pod[] {
  const namespace = workload.metadata?.namespace;
  const uid = workload.metadata?.uid;
  return pods.filter(pod => {
    if (pod.metadata?.namespace !== namespace) return false;
    if (pod.metadata?.deletionTimestamp) return false;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
      return false;
    if (!selectorMatches(workload.spec?.selector, pod.metadata?.labels))
      return false;
    const owner = pod.metadata?.ownerReferences?.find(ref => ref.controller);
    if (!owner) return false;
    if (workload.kind === 'StatefulSet') return owner.uid === uid;
    return (
      owner.kind === 'ReplicaSet' && replicaSetOwners.get(owner.uid) === uid
    );
  });
}

/**
 * The planner's view of one opted-in workload. The state a live move copies is
 * estimated by the member's memory (its limit, or its request without one): what
 * a Valkey member holds has to fit in it.
 */
export function workloadViewOf(input: {
  policy: SpotPolicy;
  workload: WorkloadObject;
  pods: V1Pod[];
  /** ReplicaSet uid → uid of the Deployment that controls it. */
  replicaSetOwners: ReadonlyMap<string, string>;
  budgets: V1PodDisruptionBudget[];
  migrations: Migration[];
}): WorkloadView {
  const { policy, workload } = input;
  const namespace = policy.metadata.namespace;
  const members = membersOf(workload, input.pods, input.replicaSetOwners);
  const moving = new Set(
    input.migrations
      .filter(
        m =>
          m.metadata.namespace === namespace &&
          m.spec.workloadRef.name === workload.metadata?.name &&
          !FINAL_PHASES.has(m.status?.phase ?? 'Planned'),
      )
      .map(m => m.spec.pod),
  );
  const replicas = workload.spec?.replicas ?? members.length;
  const memberViews: MemberView[] = members.map(pod => {
    const requests = podRequestsOf(pod);
    const memoryLimit = pod.spec?.containers
      ?.map(c => memoryMiBOf(c.resources?.limits?.memory))
      .reduce((a, b) => a + b, 0);
    return {
      pod: pod.metadata!.name!,
      node: pod.spec?.nodeName || undefined,
      requests,
      ready: isReady(pod),
      stateBytes: Math.round(
        Math.max(requests.memoryMiB, memoryLimit ?? 0) * 2 ** 20,
      ),
      moving: moving.has(pod.metadata!.name!) || undefined,
    };
  });
  return {
    id: `${namespace}/${workload.metadata?.name}`,
    members: memberViews.sort((a, b) => (a.pod < b.pod ? -1 : 1)),
    permanentRatio: policy.spec.permanentRatio,
    pdbMaxUnavailable: pdbMaxUnavailableOf(
      input.budgets,
      namespace,
      members[0]?.metadata?.labels ?? workload.spec?.selector?.matchLabels,
      replicas,
    ),
    maxConcurrentMoves: policy.spec.maxConcurrentMoves,
  };
}

/** The policy annotations of a workload: its pod template's, with its own taking precedence. */
export function policyAnnotationsOf(
  own: Record<string, string> | undefined,
  template: Record<string, string> | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const key of Object.keys(POLICY_ANNOTATIONS)) {
    const value = own?.[key] ?? template?.[key];
    if (value !== undefined) result[key] = value;
  }
  return result;
}

/**
 * The SpotPolicy a workload's own annotations opt it in with, before the
 * operator has written it: the pods a new Deployment creates at once are placed
 * by it. Undefined unless the annotations enable spot.
 */
export function provisionalPolicyOf(
  workload: {
    kind: 'Deployment' | 'StatefulSet';
    namespace: string;
    name: string;
    annotations: Record<string, string>;
  },
  defaults: typeof SPOT_POLICY_DEFAULTS = SPOT_POLICY_DEFAULTS,
): SpotPolicy | undefined {
  const { settings } = parsePolicyAnnotations(workload.annotations);
  if (settings.enabled !== true) return undefined;
  return {
    apiVersion: FERRY_API_VERSION,
    kind: 'SpotPolicy',
    metadata: {
      name: workload.name,
      namespace: workload.namespace,
      annotations: { [PROVISIONAL_POLICY_ANNOTATION]: 'true' },
    },
    spec: {
      ...defaults,
      ...settings,
      enabled: true,
      workloadRef: { kind: workload.kind, name: workload.name },
    },
  };
}
