import type {
  V1Node,
  V1Pod,
  V1PodDisruptionBudget,
} from '@kubernetes/client-node';
import type {
  Migration,
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
} from '../../api/v1alpha1';
import { Clock, systemClock } from '../../core/clock';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import type { NodeView, WorkloadView } from '../../core/model';
import type { ResourceType } from '../client/apiRequest';
import { disruptionSignalOf, nodeViewOf } from './nodeViews';
import type {
  KubeObject,
  ListReason,
  ObjectEvent,
} from '../informers/Reflector';
import type { Informer, InformerFactory } from '../../OperatorPorts';
import {
  DEPLOYMENTS,
  MIGRATIONS,
  NODES,
  POD_DISRUPTION_BUDGETS,
  PODS,
  REPLICA_SETS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../client/resources';
import {
  isRollingOut,
  policyAnnotationsOf,
  provisionalPolicyOf,
  WorkloadObject,
  workloadViewOf,
} from './workloadViews';

/** A workload that opts in (or out) by its own `ferry.dev/*` annotations. */
export interface AnnotatedWorkload {
  kind: 'Deployment' | 'StatefulSet';
  namespace: string;
  name: string;
  uid?: string;
  /** Its policy annotations: the pod template's, with the workload's own taking precedence. */
  annotations: Record<string, string>;
}

/** What changed in the cluster state. */
export type ClusterChange =
  | { kind: 'node'; event: ObjectEvent<V1Node> }
  | { kind: 'pod'; event: ObjectEvent<V1Pod> }
  | { kind: 'policy'; event: ObjectEvent<SpotPolicy> }
  | { kind: 'migration'; event: ObjectEvent<Migration> }
  | { kind: 'workload' };

interface OwnedObject extends KubeObject {
  metadata?: KubeObject['metadata'] & {
    uid?: string;
    ownerReferences?: {
      uid: string;
      controller?: boolean;
      kind: string;
      name?: string;
    }[];
  };
}

/**
 * The operator's in-memory picture of the cluster, kept current by one
 * informer per resource (a list-then-watch on a cluster, the simulated cloud in
 * demo mode): nodes, pods, SpotPolicies, Migrations, the
 * workloads they name and the disruption budgets over them. It answers in the
 * decision core's terms (nodes, workloads, disruption signals) and remembers when
 * it first saw each node's signal, since a notice's deadline counts from then.
 */
export class ClusterState {
  private readonly caches: Informer<any>[] = [];
  readonly nodes: Informer<V1Node>;
  readonly pods: Informer<V1Pod>;
  readonly policies: Informer<SpotPolicy>;
  readonly migrations: Informer<Migration>;
  private readonly deployments: Informer<WorkloadObject>;
  private readonly statefulSets: Informer<WorkloadObject>;
  private readonly replicaSets: Informer<OwnedObject>;
  private readonly budgets: Informer<V1PodDisruptionBudget>;
  private readonly firstSeen = new Map<
    string,
    { reason: string; at: number }
  >();
  private readonly clock: Clock;
  /**
   * Views derived from the caches, kept while the caches they come from stay the
   * same (their generations): the webhook, every planning pass and every status
   * read them, and on a cluster of thousands of nodes and pods building them
   * again each time was most of the operator's work.
   */
  private nodeViewsMemo?: { generations: string; views: NodeView[] };
  /** Counts the changes of `firstSeen`, which the node views' signals come from. */
  private signalChanges = 0;
  private podsByOwnerMemo?: { generation: number; pods: Map<string, V1Pod[]> };

  constructor(
    private readonly options: {
      /** What keeps each cache current: watches on a cluster, the simulated cloud in demo mode. */
      informers: InformerFactory;
      clock?: Clock;
      /** What a workload's annotations leave unsaid in its provisional policy (the chart's `defaults`). */
      policyDefaults?: typeof SPOT_POLICY_DEFAULTS;
      onChange?: (change: ClusterChange) => void;
      onList?: (resource: string, reason: ListReason) => void;
      onError?: (error: Error) => void;
    },
  ) {
    this.clock = options.clock ?? systemClock;
    this.nodes = this.reflect<V1Node>(NODES, event => {
      this.trackSignal(event);
      options.onChange?.({ kind: 'node', event });
    });
    this.pods = this.reflect<V1Pod>(
      PODS,
      event => options.onChange?.({ kind: 'pod', event }),
      // Pods not yet scheduled hold no state to move.
      'spec.nodeName!=',
    );
    this.policies = this.reflect<SpotPolicy>(SPOT_POLICIES, event =>
      options.onChange?.({ kind: 'policy', event }),
    );
    this.migrations = this.reflect<Migration>(MIGRATIONS, event =>
      options.onChange?.({ kind: 'migration', event }),
    );
    const workloadChanged = () => options.onChange?.({ kind: 'workload' });
    this.deployments = this.reflect<WorkloadObject>(
      DEPLOYMENTS,
      workloadChanged,
    );
    this.statefulSets = this.reflect<WorkloadObject>(
      STATEFUL_SETS,
      workloadChanged,
    );
    this.replicaSets = this.reflect<OwnedObject>(REPLICA_SETS, workloadChanged);
    this.budgets = this.reflect<V1PodDisruptionBudget>(
      POD_DISRUPTION_BUDGETS,
      workloadChanged,
    );
  }

  /** Starts every watch; resolves once each has its first list. */
  async start(): Promise<void> {
    await Promise.all(this.caches.map(r => r.start()));
  }

  stop(): void {
    this.caches.forEach(r => r.stop());
  }

  get synced(): boolean {
    return this.caches.every(r => r.synced);
  }

  /** When this process first saw the node's current signal, if it has one. */
  signalSeenAt(node: string): number | undefined {
    return this.firstSeen.get(node)?.at;
  }

  /** Every node's strongest disruption signal. */
  signals(): DisruptionSignal[] {
    const signals: DisruptionSignal[] = [];
    for (const node of this.nodes.list()) {
      const name = node.metadata?.name ?? '';
      const seen = this.firstSeen.get(name);
      if (!seen) continue;
      const signal = disruptionSignalOf(node, seen.at);
      if (signal) signals.push(signal);
    }
    return signals;
  }

  /** Every node as the planner sees it (shared views: read them, do not change them). */
  nodeViews(): NodeView[] {
    const generations = `${this.nodes.generation}/${this.pods.generation}/${this.signalChanges}`;
    if (this.nodeViewsMemo?.generations !== generations) {
      this.nodeViewsMemo = { generations, views: this.buildNodeViews() };
    }
    return [...this.nodeViewsMemo.views];
  }

  private buildNodeViews(): NodeView[] {
    const podsByNode = new Map<string, V1Pod[]>();
    for (const pod of this.pods.list()) {
      const node = pod.spec?.nodeName;
      if (!node) continue;
      let list = podsByNode.get(node);
      if (!list) podsByNode.set(node, (list = []));
      list.push(pod);
    }
    const signals = new Map(this.signals().map(s => [s.node, s]));
    return this.nodes.list().map(node => {
      const name = node.metadata?.name ?? '';
      return nodeViewOf(node, podsByNode.get(name) ?? [], signals.get(name));
    });
  }

  /**
   * The Deployment that controls a ReplicaSet. A ReplicaSet the watch has not
   * shown yet is named `<deployment>-<pod-template-hash>`, which `templateHash`
   * (the pod's label) lets us read back.
   */
  replicaSetOwner(
    namespace: string,
    replicaSet: string,
    templateHash?: string,
  ): string | undefined {
    const known = this.replicaSets
      .get(`${namespace}/${replicaSet}`)
      ?.metadata?.ownerReferences?.find(
        ref => ref.controller && ref.kind === 'Deployment',
      );
    if (known) return (known as { name?: string }).name;
    if (templateHash && replicaSet.endsWith(`-${templateHash}`)) {
      return replicaSet.slice(0, -templateHash.length - 1);
    }
    return undefined;
  }

  /**
   * The enabled SpotPolicies (those `only` picks) with the workloads they name, as
   * the planner sees them; with `optedOut`, the disabled ones too (their members
   * belong on permanent capacity). A workload that opts in by its own
   * annotations counts from the moment it is seen, through its provisional
   * policy, until the operator has written the real one.
   */
  workloads(
    only?: (policy: SpotPolicy) => boolean,
    { optedOut = false }: { optedOut?: boolean } = {},
  ): {
    policy: SpotPolicy;
    view: WorkloadView;
    replicas: number;
    rollingOut: boolean;
  }[] {
    const replicaSetOwners = new Map<string, string>();
    const replicaSetsOf = new Map<string, string[]>();
    for (const rs of this.replicaSets.list()) {
      const owner = rs.metadata?.ownerReferences?.find(
        ref => ref.controller && ref.kind === 'Deployment',
      );
      if (owner && rs.metadata?.uid) {
        replicaSetOwners.set(rs.metadata.uid, owner.uid);
        replicaSetsOf.set(owner.uid, [
          ...(replicaSetsOf.get(owner.uid) ?? []),
          rs.metadata.uid,
        ]);
      }
    }
    const podsByOwner = this.podsByOwner();
    const budgets = this.budgets.list();
    // A workload's view reads only its own Migrations.
    const migrationsOf = new Map<string, Migration[]>();
    for (const m of this.migrations.list()) {
      const key = `${m.metadata.namespace}/${m.spec.workloadRef.name}`;
      let list = migrationsOf.get(key);
      if (!list) migrationsOf.set(key, (list = []));
      list.push(m);
    }
    const result: {
      policy: SpotPolicy;
      view: WorkloadView;
      replicas: number;
      rollingOut: boolean;
    }[] = [];
    const policies = this.policies.list();
    const written = new Set(
      policies.map(p => `${p.metadata.namespace}/${p.metadata.name}`),
    );
    for (const workload of this.annotatedWorkloads()) {
      if (written.has(`${workload.namespace}/${workload.name}`)) continue;
      const provisional = provisionalPolicyOf(
        workload,
        this.options.policyDefaults,
      );
      if (provisional) policies.push(provisional);
    }
    for (const policy of policies) {
      if ((!policy.spec.enabled && !optedOut) || (only && !only(policy)))
        continue;
      const { kind, name } = policy.spec.workloadRef;
      const source =
        kind === 'Deployment' ? this.deployments : this.statefulSets;
      const workload = source.get(`${policy.metadata.namespace}/${name}`);
      if (!workload) continue;
      // Only the pods its controller owns can be members (membersOf checks the rest).
      const uid = workload.metadata?.uid ?? '';
      const pods =
        kind === 'StatefulSet'
          ? podsByOwner.get(uid) ?? []
          : (replicaSetsOf.get(uid) ?? []).flatMap(
              replicaSet => podsByOwner.get(replicaSet) ?? [],
            );
      const view = workloadViewOf({
        policy,
        workload: { ...workload, kind },
        pods,
        replicaSetOwners,
        budgets,
        migrations:
          migrationsOf.get(`${policy.metadata.namespace}/${name}`) ?? [],
      });
      result.push({
        policy,
        view,
        replicas: workload.spec?.replicas ?? view.members.length,
        rollingOut: isRollingOut({ ...workload, kind }),
      });
    }
    return result;
  }

  /** The pods by the uid of the object that controls them, as long as the pods' cache is the same. */
  private podsByOwner(): Map<string, V1Pod[]> {
    const generation = this.pods.generation;
    if (this.podsByOwnerMemo?.generation !== generation) {
      const pods = new Map<string, V1Pod[]>();
      for (const pod of this.pods.list()) {
        const owner = pod.metadata?.ownerReferences?.find(
          ref => ref.controller,
        );
        if (!owner) continue;
        let list = pods.get(owner.uid);
        if (!list) pods.set(owner.uid, (list = []));
        list.push(pod);
      }
      this.podsByOwnerMemo = { generation, pods };
    }
    return this.podsByOwnerMemo.pods;
  }

  /**
   * The Deployments and StatefulSets that carry `ferry.dev/*` policy annotations,
   * on themselves or on their pod template, with those annotations.
   */
  annotatedWorkloads(): AnnotatedWorkload[] {
    const result: AnnotatedWorkload[] = [];
    for (const [kind, reflector] of [
      ['Deployment', this.deployments],
      ['StatefulSet', this.statefulSets],
    ] as const) {
      for (const workload of reflector.list()) {
        const annotations = policyAnnotationsOf(
          workload.metadata?.annotations,
          workload.spec?.template?.metadata?.annotations,
        );
        if (Object.keys(annotations).length === 0) continue;
        result.push({
          kind,
          namespace: workload.metadata?.namespace ?? '',
          name: workload.metadata?.name ?? '',
          uid: workload.metadata?.uid,
          annotations,
        });
      }
    }
    return result;
  }

  private reflect<T extends KubeObject>(
    type: ResourceType,
    onChange: (event: ObjectEvent<T>) => void,
    fieldSelector?: string,
  ): Informer<T> {
    const informer = this.options.informers<T>({
      type,
      fieldSelector,
      onChange,
      onList: reason => this.options.onList?.(type.plural, reason),
      onError: error => this.options.onError?.(error),
    });
    this.caches.push(informer);
    return informer;
  }

  private trackSignal(event: ObjectEvent<V1Node>): void {
    const name = event.object.metadata?.name ?? '';
    this.signalChanges++;
    if (event.type === 'DELETED') {
      this.firstSeen.delete(name);
      return;
    }
    const now = this.clock.now();
    const signal = disruptionSignalOf(event.object, now);
    const seen = this.firstSeen.get(name);
    if (!signal) {
      this.firstSeen.delete(name);
    } else if (!seen || seen.reason !== signal.reason) {
      this.firstSeen.set(name, { reason: signal.reason, at: now });
    }
  }
}
