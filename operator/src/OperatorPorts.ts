/**
 * The operator's ports: everything its controllers read and write, in one place.
 * `wireOperator` builds every controller from them; a cluster's process passes
 * the Kubernetes implementations (`kube/kubePorts.ts`), demo mode passes
 * simulated ones. A controller never holds a kube config.
 */
import type {
  Migration,
  SpotPolicy,
  SpotPolicySpec,
  SpotPolicyStatus,
} from './api/v1alpha1';
import type { Clock, Timers } from './core/clock';
import type { CapacityPool } from './core/model';
import type { MigrationDriver } from './migration/MigrationDriver';
import type { MigrationStore } from './migration/MigrationStore';
import type { ResourceType } from './kube/client/apiRequest';
import type { EventNote, EventSubject } from './kube/client/EventRecorder';
import type {
  KubeObject,
  ListReason,
  ObjectEvent,
} from './kube/informers/Reflector';
import type { Leadership } from './kube/leadership/SoleLeader';
import type { PriceBook } from './kube/pools/PoolPriceFeed';
import type { HibernationCluster } from './kube/hibernation/HibernationCluster';
import type { NodeAgentFinder } from './kube/runtimes/checkpoint/KubeCheckpointDriver';

/** Where the operator logs; the process passes its logger. */
export interface OperatorLog {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * A cache of one kind of object that something outside keeps current (a
 * list-then-watch on a cluster, the simulated cloud in demo mode); the
 * cluster state reads it and hears of each change after the cache holds it.
 */
export interface Informer<T extends KubeObject> {
  /** Resolves once the cache holds its first full picture. */
  start(): Promise<void>;
  stop(): void;
  readonly synced: boolean;
  /** Counts the cache's changes: while it stays the same, so does `list()`. */
  readonly generation: number;
  /** By `namespace/name`, or `name` for a cluster-scoped object. */
  get(key: string): T | undefined;
  list(): T[];
}

/** What the cluster state asks an informer for: one resource, and where to report. */
export interface InformerRequest<T> {
  type: ResourceType;
  /** A field selector as the API server takes it; only `spec.nodeName!=` is asked for. */
  fieldSelector?: string;
  /** Every change after the cache holds it, the first list's objects as ADDED (the cluster state's indexes are built from them). */
  onChange: (event: ObjectEvent<T>) => void;
  onList?: (reason: ListReason) => void;
  onError?: (error: Error) => void;
}

/** Makes the informers that feed the cluster state. */
export type InformerFactory = <T extends KubeObject>(
  request: InformerRequest<T>,
) => Informer<T>;

/** A write lost a race: the object changed since it was read, or exists already. */
export class WriteConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteConflictError';
  }
}

/**
 * The writes the controllers make besides Migrations (which go through the
 * `MigrationStore`) and Events. Each is one call on a cluster.
 */
export interface ClusterWrites {
  /** Creates a SpotPolicy; {@link WriteConflictError} when one by that name exists. */
  createSpotPolicy(policy: {
    namespace: string;
    name: string;
    annotations: Record<string, string>;
    spec: SpotPolicySpec;
  }): Promise<SpotPolicy>;
  /**
   * Merges `spec` and `annotations` into the SpotPolicy as it was read
   * (`policy.metadata.resourceVersion`); {@link WriteConflictError} when it
   * changed since.
   */
  updateSpotPolicy(
    policy: SpotPolicy,
    change: {
      spec: Partial<SpotPolicySpec>;
      annotations: Record<string, string>;
    },
  ): Promise<SpotPolicy>;
  /** Merges the fields given into the SpotPolicy's status (lists whole). */
  patchSpotPolicyStatus(
    namespace: string,
    name: string,
    status: Partial<SpotPolicyStatus>,
  ): Promise<void>;
  /**
   * Deletes the Migration as it was read; false when it is gone already or
   * changed since (the caller judges it again next time).
   */
  deleteMigration(migration: Migration): Promise<boolean>;
}

/** Where the operator's decisions are told to people (`kubectl describe`). */
export interface EventSink {
  record(subject: EventSubject, event: EventNote): Promise<void>;
}

/** What a replica's leadership reports to the operator. */
export interface LeadershipCallbacks {
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
}

/** Everything the operator is made of besides its settings; `wireOperator` takes it. */
export interface OperatorPorts {
  /** This replica, unique among them (the pod name on a cluster). */
  identity: string;
  /** What feeds the cluster state every controller reads. */
  informers: InformerFactory;
  /** The writes controllers make besides Migrations and Events. */
  writes: ClusterWrites;
  /** Where Migrations live between steps. */
  migrations: MigrationStore;
  events: EventSink;
  /** How this replica comes to lead (a Lease, or alone). */
  leadership: (callbacks: LeadershipCallbacks) => Leadership;
  drivers: MigrationDriver[];
  /** The spot and permanent pools the cloud offers now, with prices and risk. */
  pools: () => Promise<CapacityPool[]>;
  /** What pools cost, for SpotPolicy status; the shipped price table when left out. */
  prices?: () => PriceBook;
  /**
   * Hibernation's pods and the node agents that checkpoint them in place (the
   * same agents as checkpoint moves); without it no pod hibernates.
   */
  hibernation?: { cluster: HibernationCluster; agents: NodeAgentFinder };
  clock: Clock;
  /** What the controllers' waits run on (work-queue delays, settle times, intervals); the wall clock's timers when left out. */
  timers?: Timers;
  log: OperatorLog;
}
