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
import { PodGroups } from './PodGroups';
import { instanceIdOfProviderId } from '../../cloud/aws/interruptionEvents';
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

/** An opted-in (or opted-out) workload as the planner sees it. */
export interface WorkloadEntry {
  policy: SpotPolicy;
  view: WorkloadView;
  replicas: number;
  rollingOut: boolean;
}

/** What `ClusterState` indexes by workload while its caches stay the same. */
interface WorkloadIndex {
  /** ReplicaSet uid → uid of the Deployment that controls it. */
  replicaSetOwners: Map<string, string>;
  /** Deployment uid → uids of its ReplicaSets. */
  replicaSetsOf: Map<string, string[]>;
  /** `namespace/kind/name` of a workload → its Migrations. */
  migrationsOf: Map<string, Migration[]>;
  /** `namespace/pod` → the member's Migrations. */
  migrationsOfPod: Map<string, Migration[]>;
  /** Written policies, then the provisional ones of annotated workloads without one. */
  policies: SpotPolicy[];
  /** `namespace/kind/name` of a workload → its policy. */
  policyByWorkload: Map<string, SpotPolicy>;
}

/** A node's view and what it was made of. */
interface KeptNodeView {
  node: V1Node;
  pods: readonly V1Pod[];
  signal?: DisruptionSignal;
  view: NodeView;
}

/** A workload's entry and what it was made of. */
interface KeptEntry {
  policy: SpotPolicy;
  workload: WorkloadObject;
  budgets: number;
  replicaSetOwners: ReadonlyMap<string, string>;
  pods: readonly V1Pod[];
  migrations: readonly Migration[];
  entry: WorkloadEntry;
}

function sameSignal(
  a: DisruptionSignal | undefined,
  b: DisruptionSignal | undefined,
): boolean {
  return (
    a === b ||
    (a !== undefined &&
      b !== undefined &&
      a.node === b.node &&
      a.reason === b.reason &&
      a.deadline === b.deadline)
  );
}

/** Whether two lists hold the same objects in the same order. */
function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return (
    a === b || (a.length === b.length && a.every((item, i) => item === b[i]))
  );
}

function workloadKeyOf(
  namespace: string | undefined,
  kind: string,
  name: string,
): string {
  return `${namespace}/${kind}/${name}`;
}

function appendTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

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
  private nodeViewsMemo?: {
    generations: string;
    views: NodeView[];
    byName: Map<string, NodeView>;
  };
  /** Counts the changes of `firstSeen`, which the node views' signals come from. */
  private signalChanges = 0;
  /** The pods by the node they are bound to, and by the uid of the object that controls them. */
  private readonly podsOnNode = new PodGroups(
    pod => pod.spec?.nodeName || undefined,
  );
  private readonly podsOfOwner = new PodGroups(
    pod => pod.metadata?.ownerReferences?.find(ref => ref.controller)?.uid,
  );
  /** The nodes by the EC2 instance their `spec.providerID` names, and the reverse. */
  private readonly nodeByInstance = new Map<string, string>();
  private readonly instanceOfNode = new Map<string, string>();
  /** Each node's view with what it was made of, kept while that stays the same. */
  private keptNodeViews = new Map<string, KeptNodeView>();
  /** Each policy's workload as `workloads` shows it, with what it was made of. */
  private keptEntries = new Map<string, KeptEntry>();
  private workloadIndexMemo?: { generations: string; index: WorkloadIndex };

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
      this.trackInstance(event);
      options.onChange?.({ kind: 'node', event });
    });
    this.pods = this.reflect<V1Pod>(
      PODS,
      event => {
        this.podsOnNode.apply(event);
        this.podsOfOwner.apply(event);
        options.onChange?.({ kind: 'pod', event });
      },
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

  /** The node whose `spec.providerID` names the EC2 instance, by index. */
  nodeOfInstance(instanceId: string): string | undefined {
    return this.nodeByInstance.get(instanceId);
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
    return [...this.nodeViewsNow().views];
  }

  /** Every node's view by its name (shared: read them, do not change them). */
  nodeViewsByName(): ReadonlyMap<string, NodeView> {
    return this.nodeViewsNow().byName;
  }

  private nodeViewsNow(): { views: NodeView[]; byName: Map<string, NodeView> } {
    const generations = `${this.nodes.generation}/${this.pods.generation}/${this.signalChanges}`;
    if (this.nodeViewsMemo?.generations !== generations) {
      const views = this.buildNodeViews();
      this.nodeViewsMemo = {
        generations,
        views,
        byName: new Map(views.map(view => [view.name, view])),
      };
    }
    return this.nodeViewsMemo;
  }

  /** Every node's view: the one kept for it while its node object, its pods and its signal are the same. */
  private buildNodeViews(): NodeView[] {
    const signals = new Map(this.signals().map(s => [s.node, s]));
    const kept = new Map<string, KeptNodeView>();
    const views = this.nodes.list().map(node => {
      const name = node.metadata?.name ?? '';
      const pods = this.podsOnNode.get(name);
      const signal = signals.get(name);
      const known = this.keptNodeViews.get(name);
      const view =
        known &&
        known.node === node &&
        known.pods === pods &&
        sameSignal(known.signal, signal)
          ? known.view
          : nodeViewOf(node, pods, signal);
      kept.set(name, { node, pods, signal, view });
      return view;
    });
    this.keptNodeViews = kept;
    return views;
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
  ): WorkloadEntry[] {
    const index = this.workloadIndex();
    const budgets = this.budgets.list();
    const result: WorkloadEntry[] = [];
    for (const policy of index.policies) {
      if ((!policy.spec.enabled && !optedOut) || (only && !only(policy)))
        continue;
      const entry = this.entryOf(policy, index, budgets);
      if (entry) result.push(entry);
    }
    return result;
  }

  /**
   * The workload `kind/name` in `namespace` as `workloads` shows it, found
   * through its policy rather than by looking at every one.
   */
  workload(
    namespace: string,
    kind: 'Deployment' | 'StatefulSet',
    name: string,
    { optedOut = false }: { optedOut?: boolean } = {},
  ): WorkloadEntry | undefined {
    const index = this.workloadIndex();
    const policy = index.policyByWorkload.get(
      workloadKeyOf(namespace, kind, name),
    );
    if (!policy || (!policy.spec.enabled && !optedOut)) return undefined;
    return this.entryOf(policy, index, this.budgets.list());
  }

  /**
   * The workload whose controller owns the pod, directly (a StatefulSet) or
   * through a ReplicaSet (a Deployment); undefined for any other pod.
   */
  workloadOfPod(
    pod: V1Pod,
  ): { kind: 'Deployment' | 'StatefulSet'; name: string } | undefined {
    const namespace = pod.metadata?.namespace ?? '';
    const owner = pod.metadata?.ownerReferences?.find(ref => ref.controller);
    if (owner?.kind === 'StatefulSet') {
      return { kind: 'StatefulSet', name: owner.name };
    }
    if (owner?.kind !== 'ReplicaSet') return undefined;
    const deployment = this.replicaSetOwner(
      namespace,
      owner.name,
      pod.metadata?.labels?.['pod-template-hash'],
    );
    return deployment ? { kind: 'Deployment', name: deployment } : undefined;
  }

  /** The policy (a written one, or a workload's provisional one) naming `kind/name` in `namespace`. */
  policyOf(
    namespace: string,
    kind: string,
    name: string,
  ): SpotPolicy | undefined {
    return this.workloadIndex().policyByWorkload.get(
      workloadKeyOf(namespace, kind, name),
    );
  }

  /** The Migrations of the workload `kind/name` in `namespace` (shared: read them, do not change them). */
  migrationsOf(
    namespace: string,
    kind: string,
    name: string,
  ): readonly Migration[] {
    return (
      this.workloadIndex().migrationsOf.get(
        workloadKeyOf(namespace, kind, name),
      ) ?? []
    );
  }

  /** The Migrations of one member, by its pod's name (shared: read them, do not change them). */
  migrationsOfPod(namespace: string, pod: string): readonly Migration[] {
    return (
      this.workloadIndex().migrationsOfPod.get(`${namespace}/${pod}`) ?? []
    );
  }

  private entryOf(
    policy: SpotPolicy,
    index: WorkloadIndex,
    budgets: V1PodDisruptionBudget[],
  ): WorkloadEntry | undefined {
    const { kind, name } = policy.spec.workloadRef;
    const namespace = policy.metadata.namespace;
    const source = kind === 'Deployment' ? this.deployments : this.statefulSets;
    const workload = source.get(`${namespace}/${name}`);
    if (!workload) return undefined;
    // Only the pods its controller owns can be members (membersOf checks the rest).
    const uid = workload.metadata?.uid ?? '';
    const pods =
      kind === 'StatefulSet'
        ? this.podsOfOwner.get(uid)
        : (index.replicaSetsOf.get(uid) ?? []).flatMap(replicaSet =>
            this.podsOfOwner.get(replicaSet),
          );
    // A workload's view reads only its own Migrations.
    const migrations =
      index.migrationsOf.get(workloadKeyOf(namespace, kind, name)) ?? [];
    const policyKey = `${namespace}/${policy.metadata.name}`;
    const known = this.keptEntries.get(policyKey);
    if (
      known &&
      known.policy === policy &&
      known.workload === workload &&
      known.budgets === this.budgets.generation &&
      (kind === 'StatefulSet' ||
        known.replicaSetOwners === index.replicaSetOwners) &&
      sameItems(known.pods, pods) &&
      sameItems(known.migrations, migrations)
    ) {
      return known.entry;
    }
    const view = workloadViewOf({
      policy,
      workload: { ...workload, kind },
      pods: [...pods],
      replicaSetOwners: index.replicaSetOwners,
      budgets,
      migrations: [...migrations],
    });
    const entry: WorkloadEntry = {
      policy,
      view,
      replicas: workload.spec?.replicas ?? view.members.length,
      rollingOut: isRollingOut({ ...workload, kind }),
    };
    this.keptEntries.set(policyKey, {
      policy,
      workload,
      budgets: this.budgets.generation,
      replicaSetOwners: index.replicaSetOwners,
      pods,
      migrations,
      entry,
    });
    return entry;
  }

  /**
   * The policies (written, and the provisional ones of annotated workloads),
   * Migrations and ReplicaSets indexed by workload, as long as their caches are
   * the same: the webhook, each planning pass and each status read them, and
   * indexing thousands of each again per read was most of their time.
   */
  private workloadIndex(): WorkloadIndex {
    const generations = [
      this.policies,
      this.migrations,
      this.replicaSets,
      this.deployments,
      this.statefulSets,
    ]
      .map(cache => cache.generation)
      .join('/');
    if (this.workloadIndexMemo?.generations !== generations) {
      this.workloadIndexMemo = { generations, index: this.indexWorkloads() };
    }
    return this.workloadIndexMemo.index;
  }

  private indexWorkloads(): WorkloadIndex {
    const replicaSetOwners = new Map<string, string>();
    const replicaSetsOf = new Map<string, string[]>();
    for (const rs of this.replicaSets.list()) {
      const owner = rs.metadata?.ownerReferences?.find(
        ref => ref.controller && ref.kind === 'Deployment',
      );
      if (owner && rs.metadata?.uid) {
        replicaSetOwners.set(rs.metadata.uid, owner.uid);
        appendTo(replicaSetsOf, owner.uid, rs.metadata.uid);
      }
    }
    const migrationsOf = new Map<string, Migration[]>();
    const migrationsOfPod = new Map<string, Migration[]>();
    for (const m of this.migrations.list()) {
      const { kind, name } = m.spec.workloadRef;
      appendTo(
        migrationsOf,
        workloadKeyOf(m.metadata.namespace, kind, name),
        m,
      );
      appendTo(migrationsOfPod, `${m.metadata.namespace}/${m.spec.pod}`, m);
    }
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
    const current = new Set(
      policies.map(p => `${p.metadata.namespace}/${p.metadata.name}`),
    );
    for (const key of this.keptEntries.keys()) {
      if (!current.has(key)) this.keptEntries.delete(key);
    }
    const policyByWorkload = new Map<string, SpotPolicy>();
    for (const policy of policies) {
      const { kind, name } = policy.spec.workloadRef;
      const key = workloadKeyOf(policy.metadata.namespace, kind, name);
      // Two policies naming one workload: the first listed, as `workloads` shows both.
      if (!policyByWorkload.has(key)) policyByWorkload.set(key, policy);
    }
    return {
      replicaSetOwners,
      replicaSetsOf,
      migrationsOf,
      migrationsOfPod,
      policies,
      policyByWorkload,
    };
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

  /** Keeps `nodeByInstance` and its reverse current with one node's change. */
  private trackInstance(event: ObjectEvent<V1Node>): void {
    const name = event.object.metadata?.name ?? '';
    const before = this.instanceOfNode.get(name);
    const after =
      event.type === 'DELETED'
        ? undefined
        : instanceIdOfProviderId(event.object.spec?.providerID);
    if (before === after) return;
    if (before !== undefined) {
      this.instanceOfNode.delete(name);
      if (this.nodeByInstance.get(before) === name) {
        this.nodeByInstance.delete(before);
      }
    }
    if (after !== undefined) {
      this.instanceOfNode.set(name, after);
      this.nodeByInstance.set(after, name);
    }
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
