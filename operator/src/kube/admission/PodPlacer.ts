/**
 * The placement webhook's decision for a pod being created, written as node
 * affinity and tolerations: permanent capacity up to the workload's permanent
 * floor (every member when the policy is disabled), spot for the rest, spread
 * over zones. A pod whose member is being
 * migrated (a StatefulSet recreating `cache-1`) goes to the migration's target;
 * under a valkey Migration it also gets a readiness gate, `MEMBER_READY_GATE`,
 * and under a checkpoint Migration the runtime class and annotation that make
 * Ferry's runtime wrapper restore it. Members whose method may be checkpoint
 * run with the runtime class `ferry` when the cluster has it.
 */
import type {
  V1Pod,
  V1NodeSelectorTerm,
  V1Toleration,
} from '@kubernetes/client-node';
import type { CapacityType, Migration, SpotPolicy } from '../../api/v1alpha1';
import { NODE_LABELS } from '../../cloud/nodeLabels';
import {
  type CapacityPool,
  type NodeView,
  poolIdOf,
  type Resources,
  type WorkloadView,
} from '../../core/model';
import { POOL_CONCENTRATION_WEIGHT, spotPoolScore } from '../../core/placement';
import { podRequestsOf } from '../state/nodeViews';
import { permanentFloor } from '../../core/quorum';
import { isFinalPhase } from '../../migration/MigrationStateMachine';
import type {
  JsonPatchOperation,
  PodAdmission,
} from './AdmissionWebhookServer';
import type { ClusterState } from '../state/ClusterState';
import {
  MEMBER_READY_GATE,
  PLACEMENT_ANNOTATION,
  PLACEMENT_DECISION_ANNOTATION,
  RESTORE_FROM_ANNOTATION,
} from '../client/ferryKeys';

/** The RuntimeClass of Ferry's runtime wrapper (operator/runtime); KubeCheckpointDriver's too. */
export const FERRY_RUNTIME_CLASS = 'ferry';
/** The methods under which a member may be moved by checkpoint. */
const CHECKPOINT_METHODS = new Set(['checkpoint', 'auto']);
/** Weight of the preference for the planned pool; the capacity type itself is required. */
const POOL_PREFERENCE_WEIGHT = 100;

/** Node selector terms that pick nodes of one capacity type, whichever provisioner labelled them. */
export function capacityTypeTerms(
  capacityType: CapacityType,
): V1NodeSelectorTerm[] {
  const spotLabels: [string, string][] = [
    [NODE_LABELS.karpenterCapacityType, 'spot'],
    [NODE_LABELS.eksCapacityType, 'SPOT'],
    [NODE_LABELS.gkeSpot, 'true'],
    [NODE_LABELS.aksPriority, 'spot'],
  ];
  if (capacityType === 'spot') {
    // Terms are ORed: a node any provisioner marks as spot.
    return spotLabels.map(([key, value]) => ({
      matchExpressions: [{ key, operator: 'In', values: [value] }],
    }));
  }
  // Expressions are ANDed: a node no provisioner marks as spot.
  return [
    {
      matchExpressions: spotLabels.map(([key, value]) => ({
        key,
        operator: 'NotIn',
        values: [value],
      })),
    },
  ];
}

/** The taints spot nodes carry on GKE and AKS, which a pod placed on spot must tolerate. */
const SPOT_TOLERATIONS: V1Toleration[] = [
  {
    key: NODE_LABELS.gkeSpot,
    operator: 'Equal',
    value: 'true',
    effect: 'NoSchedule',
  },
  {
    key: NODE_LABELS.aksPriority,
    operator: 'Equal',
    value: 'spot',
    effect: 'NoSchedule',
  },
];

function ownerOf(pod: V1Pod) {
  return pod.metadata?.ownerReferences?.find(ref => ref.controller);
}

/**
 * The policy and workload view a pod being created belongs to, if any; an
 * opted-out workload's too, whose members go to permanent capacity.
 */
function workloadOf(
  pod: V1Pod,
  namespace: string,
  state: ClusterState,
): { policy: SpotPolicy; view: WorkloadView; replicas: number } | undefined {
  // The pod being created may carry no namespace of its own.
  const owned = state.workloadOfPod({
    ...pod,
    metadata: { ...pod.metadata, namespace },
  });
  if (!owned) return undefined;
  // Only this pod's workload is viewed: a review must not cost a view of every workload.
  return state.workload(namespace, owned.kind, owned.name, { optedOut: true });
}

/** The open Migration of the member a pod being created recreates, if any. */
function openMigration(
  migrations: readonly Migration[],
  namespace: string,
  pod: string | undefined,
): Migration | undefined {
  if (!pod) return undefined;
  return migrations.find(
    m =>
      m.metadata.namespace === namespace &&
      m.spec.pod === pod &&
      !isFinalPhase(m.status?.phase ?? 'Planned'),
  );
}

/**
 * The JSON patch that puts a member recreated during its Migration where the
 * move goes: pinned to the target (or to `restoreNode`), and for a checkpoint
 * move restored from its images; undefined when the move names no node yet.
 */
export function migrationPlacement(
  pod: V1Pod,
  migration: Migration,
): JsonPatchOperation[] | undefined {
  // A checkpoint move whose target died mid-restore restores the member where
  // its images were kept (the driver's `restoreNode`).
  const target =
    migration.status?.driverState?.restoreNode ??
    migration.status?.targetNode ??
    migration.spec.targetNode;
  if (!target) return undefined;
  const ops = affinityPatch(pod, {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [
        {
          matchFields: [
            { key: 'metadata.name', operator: 'In', values: [target] },
          ],
        },
      ],
    },
  });
  if (
    migration.spec.driver === 'valkey' &&
    ownerOf(pod)?.kind === 'StatefulSet' &&
    !pod.spec?.readinessGates?.some(g => g.conditionType === MEMBER_READY_GATE)
  ) {
    ops.push({
      op: 'add',
      path: '/spec/readinessGates',
      value: [
        ...(pod.spec?.readinessGates ?? []),
        { conditionType: MEMBER_READY_GATE },
      ],
    });
  }
  const driverState = migration.status?.driverState ?? {};
  if (
    migration.spec.driver === 'checkpoint' &&
    driverState.imageId &&
    driverState.container
  ) {
    // The StatefulSet's recreation is the member restored from the checkpoint.
    if (!pod.spec?.runtimeClassName) {
      ops.push({
        op: 'add',
        path: '/spec/runtimeClassName',
        value: FERRY_RUNTIME_CLASS,
      });
    }
    ops.push({
      op: 'add',
      path: '/metadata/annotations',
      value: {
        ...(pod.metadata?.annotations ?? {}),
        [RESTORE_FROM_ANNOTATION]: `${driverState.container}=${driverState.imageId}`,
      },
    });
  }
  return ops;
}

function affinityPatch(pod: V1Pod, nodeAffinity: object): JsonPatchOperation[] {
  // Ferry owns where an opted-in member runs: its plan replaces the template's
  // node affinity and capacity-type selector, and keeps the pod (anti-)affinity.
  const ops: JsonPatchOperation[] = [];
  const capacitySelector =
    pod.spec?.nodeSelector?.[NODE_LABELS.karpenterCapacityType];
  if (capacitySelector !== undefined) {
    ops.push({
      op: 'remove',
      path: '/spec/nodeSelector/karpenter.sh~1capacity-type',
    });
  }
  ops.push({
    op: 'add',
    path: '/spec/affinity',
    value: { ...(pod.spec?.affinity ?? {}), nodeAffinity },
  });
  return ops;
}

/** How long an admission decision counts before the scheduled pod shows it. */
const PENDING_TTL_MS = 30_000;

interface PendingPlacement {
  /** The pod's PLACEMENT_DECISION_ANNOTATION. */
  id: string;
  capacityType: CapacityType;
  zone: string;
  instanceType: string;
  at: number;
}

/**
 * How long the count of the fleet's spot members per pool serves before it is
 * counted again; the decisions made meanwhile are added to it. Counting is a
 * view of every opted-in workload, too much for each review.
 */
const FLEET_COUNT_REFRESH_MS = 5_000;

/**
 * Places the pods of opted-in workloads as they are created. Pods of one rollout
 * arrive together, before any is scheduled, so each decision counts the members
 * the watch shows on nodes *and* the decisions it made in the last moments that
 * no scheduled pod reflects yet: the permanent floor is met once, not once per pod.
 * A decision stops counting when the watch shows its pod on a node (it is then
 * one of the members) or gone, or after PENDING_TTL_MS if its pod never came.
 */
export class PodPlacer {
  private readonly pending = new Map<string, PendingPlacement[]>();
  private decisions = 0;
  /** Spot members of every opted-in workload per pool (`poolIdOf`), and when they were counted. */
  private fleetCount?: { at: number; perPool: Map<string, number> };
  /** Spot decisions per pool since the fleet was last counted. */
  private readonly spotDecisions = new Map<string, number>();
  /** The pools with a node that takes new pods, for the node views they came from. */
  private openPoolsMemo?: {
    nodes: ReadonlyMap<string, NodeView>;
    pools: Set<string>;
  };

  constructor(
    private readonly state: ClusterState,
    private readonly now: () => number = Date.now,
    /** Whether the cluster has the RuntimeClass `ferry`. */
    private readonly ferryRuntimeClass: () => boolean = () => false,
  ) {}

  /** A pod the watch shows changed or deleted: its decision may now be reflected. */
  podChanged(pod: V1Pod, deleted: boolean): void {
    const id = pod.metadata?.annotations?.[PLACEMENT_DECISION_ANNOTATION];
    if (!id || (!deleted && !pod.spec?.nodeName)) return;
    for (const [workload, decisions] of this.pending) {
      const left = decisions.filter(p => p.id !== id);
      if (left.length === decisions.length) continue;
      if (left.length > 0) this.pending.set(workload, left);
      else this.pending.delete(workload);
      return;
    }
  }

  /** The JSON patch that places the pod; none for a pod of no opted-in workload. */
  patch(
    pod: V1Pod,
    admission: PodAdmission,
    pools: readonly CapacityPool[],
  ): JsonPatchOperation[] {
    if (admission.operation !== 'CREATE') return [];
    const found = workloadOf(pod, admission.namespace, this.state);
    if (!found) return [];

    const migration = openMigration(
      pod.metadata?.name
        ? this.state.migrationsOfPod(admission.namespace, pod.metadata.name)
        : [],
      admission.namespace,
      pod.metadata?.name,
    );
    if (migration) {
      const ops = migrationPlacement(pod, migration);
      if (ops) return ops;
    }

    const decision = this.decide(
      found.policy,
      found.view,
      found.replicas,
      pools,
      podRequestsOf(pod),
    );
    // A pod with a runtime class of its own keeps it (checkpoint then refuses it).
    const runtimeClass: JsonPatchOperation[] =
      CHECKPOINT_METHODS.has(found.policy.spec.migration) &&
      !pod.spec?.runtimeClassName &&
      this.ferryRuntimeClass()
        ? [
            {
              op: 'add',
              path: '/spec/runtimeClassName',
              value: FERRY_RUNTIME_CLASS,
            },
          ]
        : [];
    if (!decision) return runtimeClass;
    const ops = affinityPatch(pod, {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: capacityTypeTerms(decision.capacityType),
      },
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: POOL_PREFERENCE_WEIGHT,
          preference: {
            matchExpressions: [
              {
                key: NODE_LABELS.zone,
                operator: 'In',
                values: [decision.zone],
              },
              {
                key: NODE_LABELS.instanceType,
                operator: 'In',
                values: [decision.instanceType],
              },
            ],
          },
        },
      ],
    });
    ops.push(...runtimeClass);
    if (decision.capacityType === 'spot') {
      ops.push({
        op: 'add',
        path: '/spec/tolerations',
        value: [...(pod.spec?.tolerations ?? []), ...SPOT_TOLERATIONS],
      });
    }
    ops.push({
      op: 'add',
      path: '/metadata/annotations',
      value: {
        ...(pod.metadata?.annotations ?? {}),
        [PLACEMENT_ANNOTATION]: `${decision.capacityType} ${decision.instanceType}@${decision.zone}`,
        [PLACEMENT_DECISION_ANNOTATION]: decision.id,
      },
    });
    return ops;
  }

  /**
   * Permanent while the workload is below its permanent floor (for its desired
   * replicas), else spot; in the zone where it has fewest members of that
   * capacity type, on the cheapest pool there.
   */
  private decide(
    policy: SpotPolicy,
    view: WorkloadView,
    replicas: number,
    pools: readonly CapacityPool[],
    requests: Resources,
  ):
    | {
        id: string;
        capacityType: CapacityType;
        zone: string;
        instanceType: string;
      }
    | undefined {
    const now = this.now();
    const pending = (this.pending.get(view.id) ?? []).filter(
      p => now - p.at < PENDING_TTL_MS,
    );
    const nodes = this.state.nodeViewsByName();
    const placed = view.members
      .map(m => (m.node ? nodes.get(m.node) : undefined))
      .filter((n): n is NonNullable<typeof n> => n !== undefined)
      .map(n => ({
        capacityType: n.capacityType,
        zone: n.zone,
        instanceType: n.instanceType,
      }));
    // Decisions whose pods are not on a node yet: at most the members still missing.
    const unreflected = pending.slice(
      Math.max(0, pending.length - Math.max(0, replicas - placed.length)),
    );
    const members = [...placed, ...unreflected];
    const floor = permanentFloor(
      Math.max(replicas, members.length + 1),
      // Opted out: every member on permanent capacity.
      policy.spec.enabled ? policy.spec.permanentRatio : 1,
    );
    const permanent = members.filter(
      m => m.capacityType === 'on-demand',
    ).length;
    const capacityType: CapacityType = permanent < floor ? 'on-demand' : 'spot';

    // A pool can take the pod if a node of it takes new pods now, or if the
    // cloud can launch one there (Karpenter). On a cluster no pool is
    // launchable by Ferry (`poolsOfNodes`), so existing nodes are what counts.
    const open = this.openPools(nodes);
    const candidates = pools.filter(
      p =>
        p.capacityType === capacityType &&
        (p.launchable || open.has(poolKeyOf(p))),
    );
    if (candidates.length === 0) return undefined;
    const inZone = (zone: string) =>
      members.filter(m => m.capacityType === capacityType && m.zone === zone)
        .length;
    const inPool = (pool: CapacityPool) =>
      members.filter(
        m =>
          m.capacityType === capacityType &&
          m.zone === pool.zone &&
          m.instanceType === pool.instanceType,
      ).length;
    // Spot pools as the planner ranks them: price and risk per member, and the
    // fleet's members already in the pool against it (a pool's reclaim takes
    // them all at once). Permanent pools by price.
    const fleet =
      capacityType === 'spot' ? this.fleetSpotMembersPerPool(now) : undefined;
    const score = (pool: CapacityPool) =>
      fleet
        ? spotPoolScore(pool, requests) *
          (1 + POOL_CONCENTRATION_WEIGHT * (fleet.get(poolIdOf(pool)) ?? 0))
        : pool.priceUsdPerHour;
    const best = [...candidates].sort(
      (a, b) =>
        inZone(a.zone) - inZone(b.zone) ||
        inPool(a) - inPool(b) ||
        score(a) - score(b) ||
        a.interruptionRisk - b.interruptionRisk ||
        poolKeyOf(a).localeCompare(poolKeyOf(b), 'en'),
    )[0];
    const id = `${now.toString(36)}-${++this.decisions}`;
    this.pending.set(view.id, [
      ...pending,
      {
        id,
        capacityType,
        zone: best.zone,
        instanceType: best.instanceType,
        at: now,
      },
    ]);
    if (capacityType === 'spot') {
      const pool = poolIdOf(best);
      this.spotDecisions.set(pool, (this.spotDecisions.get(pool) ?? 0) + 1);
    }
    return {
      id,
      capacityType,
      zone: best.zone,
      instanceType: best.instanceType,
    };
  }

  /**
   * The spot members of every opted-in workload per pool, counted at most every
   * FLEET_COUNT_REFRESH_MS, with the spot decisions made since: a burst of
   * creations spreads over pools before its pods are scheduled.
   */
  private fleetSpotMembersPerPool(now: number): Map<string, number> {
    if (
      !this.fleetCount ||
      now - this.fleetCount.at >= FLEET_COUNT_REFRESH_MS
    ) {
      const nodes = this.state.nodeViewsByName();
      const perPool = new Map<string, number>();
      for (const { view } of this.state.workloads()) {
        for (const member of view.members) {
          const node = member.node ? nodes.get(member.node) : undefined;
          if (node?.capacityType !== 'spot') continue;
          const pool = poolIdOf(node);
          perPool.set(pool, (perPool.get(pool) ?? 0) + 1);
        }
      }
      this.fleetCount = { at: now, perPool };
      this.spotDecisions.clear();
    }
    if (this.spotDecisions.size === 0) return this.fleetCount.perPool;
    const counts = new Map(this.fleetCount.perPool);
    for (const [pool, decided] of this.spotDecisions) {
      counts.set(pool, (counts.get(pool) ?? 0) + decided);
    }
    return counts;
  }

  /**
   * The pools (by `poolKeyOf`) with a node that takes new pods now. Worked out
   * once per picture of the nodes, not per review: the nodes are thousands.
   */
  private openPools(nodes: ReadonlyMap<string, NodeView>): Set<string> {
    if (this.openPoolsMemo?.nodes !== nodes) {
      const pools = new Set<string>();
      for (const n of nodes.values()) {
        if (!n.unschedulable && n.terminatesAt === undefined) {
          pools.add(poolKeyOf(n));
        }
      }
      this.openPoolsMemo = { nodes, pools };
    }
    return this.openPoolsMemo.pools;
  }
}

/** A pool's identity including its capacity type: a spot and an on-demand pool of one type and zone differ. */
function poolKeyOf(p: {
  instanceType: string;
  zone: string;
  capacityType: CapacityType;
}): string {
  return `${p.instanceType}/${p.zone}/${p.capacityType}`;
}
