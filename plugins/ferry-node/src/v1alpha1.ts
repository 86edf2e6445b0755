/**
 * The shapes of Ferry's custom resources (group `ferry.dev`, version `v1alpha1`).
 *
 * These are the contract between the operator and everything that reads or writes
 * its objects: the in-memory cluster of demo mode, the Kubernetes API on a real
 * cluster, and the portal's backend plugin.
 */

/** API group of Ferry's custom resources. */
export const FERRY_GROUP = 'ferry.dev';
/** Version of Ferry's custom resources. */
export const FERRY_VERSION = 'v1alpha1';
/** `apiVersion` of Ferry's custom resources. */
export const FERRY_API_VERSION = `${FERRY_GROUP}/${FERRY_VERSION}`;

/** Workload kinds a SpotPolicy can point at. */
export type WorkloadKind = 'Deployment' | 'StatefulSet';

/** How a member's state moves when its node goes away. */
export type MigrationMethod =
  | 'auto'
  | 'valkey'
  | 'checkpoint'
  | 'volume'
  | 'reschedule';

/**
 * Why a migration was started: the node signals, strongest first (`notice`,
 * `drain`, the cloud's rebalance `recommendation`, `prediction`), then the
 * re-placement controller's moves: a policy change (`policy`: enabled,
 * disabled, a new floor or method) and restoring a floor or a spread that
 * moves and node losses broke (`rebalance`).
 */
export type MigrationReason =
  | 'notice'
  | 'drain'
  | 'recommendation'
  | 'prediction'
  | 'policy'
  | 'rebalance';

/** Whether a node is spot capacity or permanent (on-demand or reserved) capacity. */
export type CapacityType = 'spot' | 'on-demand';

/** Defaults for a SpotPolicy's spec; one home for each number. */
export const SPOT_POLICY_DEFAULTS = {
  permanentRatio: 0.3,
  availabilityTarget: 0.999,
  migration: 'auto' as MigrationMethod,
  maxConcurrentMoves: 1,
  predictionHorizonMinutes: 20,
};

/** A workload in the policy's namespace. */
export interface WorkloadReference {
  kind: WorkloadKind;
  name: string;
}

/** Object metadata, the subset Ferry uses. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

/** A condition, following Kubernetes API conventions. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What a service owner asks for. */
export interface SpotPolicySpec {
  workloadRef: WorkloadReference;
  enabled: boolean;
  /** Share of replicas, rounded up, kept on permanent nodes (0..1). */
  permanentRatio: number;
  /** Share of time the workload must have its required ready members (0..1). */
  availabilityTarget: number;
  migration: MigrationMethod;
  maxConcurrentMoves: number;
  predictionHorizonMinutes: number;
  /** How the operator reaches Valkey/Redis members; unset, without AUTH. */
  valkey?: ValkeySettings;
  /**
   * How long a member may see no traffic before it is checkpointed in place and
   * its requests drop (`10s`, `10m`, `2h`), as the pod annotation
   * `ferry.dev/hibernate-after` asks; unset, the members stay awake. Applies
   * whether or not `enabled` puts the workload on spot.
   */
  hibernateAfter?: string;
}

/** How the operator reaches a workload's Valkey/Redis members. */
export interface ValkeySettings {
  /** The Secret, in the policy's namespace, with the operator's and the members' replication credentials. */
  authSecretRef?: SecretCredentialsReference;
}

/** Keys of a Secret that hold a user name (optional) and a password. */
export interface SecretCredentialsReference {
  name: string;
  /** Unset: the `default` user (a member with `requirepass`). */
  usernameKey?: string;
  passwordKey: string;
}

/** Where one replica runs now. */
export interface ReplicaPlacement {
  pod: string;
  node: string;
  capacityType: CapacityType;
  instanceType: string;
  zone: string;
  /** USD per hour of this replica's share of its node. */
  hourlyCostUsd: number;
  /** Probability that the node's pool is interrupted within the policy's horizon. */
  interruptionRisk: number;
  ready: boolean;
}

/** Spend and savings of a workload since it opted in. */
export interface CostStatus {
  hourlyCostUsd: number;
  /** What the same replicas would cost per hour on on-demand nodes. */
  onDemandHourlyCostUsd: number;
  spendToDateUsd: number;
  savingsToDateUsd: number;
}

/** Availability against the policy's target since it opted in. */
export interface AvailabilityStatus {
  target: number;
  observed: number;
  /** Share of the error budget left (1 = untouched, below 0 = target missed). */
  errorBudgetRemaining: number;
  /** Members needed for the workload to serve (its quorum). */
  requiredMembers: number;
  readyMembers: number;
}

/** What the operator observed and did. */
export interface SpotPolicyStatus {
  observedGeneration?: number;
  replicas: ReplicaPlacement[];
  cost: CostStatus;
  availability: AvailabilityStatus;
  migrationsTotal: number;
  lastMigration?: string;
  conditions: Condition[];
  /**
   * The generation of the spec whose placement the members reached; until it
   * is the current one, re-placement moves are `policy` moves, after it
   * `rebalance` moves (the operator's core/replacement.ts).
   */
  placedGeneration?: number;
  /**
   * The members that take part in hibernation (the policy's `hibernateAfter`,
   * or their own `ferry.dev/hibernate-after`): where each is, as its
   * `ferry.dev/hibernation` label says, and why one may not sleep
   * (`ferry.dev/hibernation-refused`).
   */
  hibernation?: MemberHibernation[];
}

/** Where a member is in hibernation, as its pod's label says. */
export type HibernationPhase =
  | 'RUNNING'
  | 'HIBERNATING'
  | 'SCALED_DOWN'
  | 'WAKING';

/** One member's hibernation. */
export interface MemberHibernation {
  pod: string;
  phase?: HibernationPhase;
  /** Why the member does not hibernate, in a sentence. */
  refusal?: string;
}

/** One opted-in workload. */
export interface SpotPolicy {
  apiVersion: typeof FERRY_API_VERSION;
  kind: 'SpotPolicy';
  metadata: ObjectMeta;
  spec: SpotPolicySpec;
  status?: SpotPolicyStatus;
}

/** Phases of a migration; `Succeeded`, `RolledBack` and `Failed` are final. */
export type MigrationPhase =
  | 'Planned'
  | 'PreparingTarget'
  | 'Transferring'
  | 'SwitchingOver'
  | 'Verifying'
  | 'CleaningUp'
  | 'RollingBack'
  | 'Succeeded'
  | 'RolledBack'
  | 'Failed';

/** When a phase started and ended. */
export interface PhaseTiming {
  phase: MigrationPhase;
  startedAt: string;
  finishedAt?: string;
}

/** One move of one member. */
export interface MigrationSpec {
  workloadRef: WorkloadReference;
  pod: string;
  sourceNode: string;
  targetNode?: string;
  reason: MigrationReason;
  driver: Exclude<MigrationMethod, 'auto'>;
  /** When the source node goes away, if a notice gave a time. */
  deadline?: string;
}

/** Progress and outcome of a move. */
export interface MigrationStatus {
  phase: MigrationPhase;
  phases: PhaseTiming[];
  targetNode?: string;
  targetPod?: string;
  bytesMoved: number;
  writePauseMs?: number;
  message?: string;
  completedAt?: string;
  /** Phase that failed and sent the migration into `RollingBack`. */
  failedPhase?: MigrationPhase;
  /** What the driver must remember across operator restarts (member addresses, image ids). */
  driverState?: Record<string, string>;
  /** Retries of the current phase after an error (reset when a phase completes). */
  attempts?: number;
  /** Writes that may be lost because the source went away before the hand-off finished. */
  atRisk?: MigrationAtRisk;
  /**
   * Why this driver moves the member: what `auto` measured and weighed (server
   * and version, subscribers and blocked clients, size against time left and the
   * link, runtime class, zonal volume), or that the policy named the method.
   */
  methodReason?: string;
}

/** What was at risk when a source member was lost before its state had fully moved. */
export interface MigrationAtRisk {
  /** Replication offset (or equivalent) the old primary was last seen at. */
  lastSeenSourceOffset: number;
  /** Offset of the member that was promoted in its place. */
  promotedOffset: number;
  /** Bytes of the write stream known to be lost: the last-seen offset past the promoted one. */
  bytes: number;
  /**
   * When the old primary was last seen: every write it acknowledged before this
   * instant is in the promoted member unless `bytes` > 0; writes it acknowledged
   * after it, until it died, may be lost.
   */
  lastSeenAt: string;
  /** Member that was promoted. */
  promotedMember: string;
}

/** One move, kept for history. */
export interface Migration {
  apiVersion: typeof FERRY_API_VERSION;
  kind: 'Migration';
  metadata: ObjectMeta;
  spec: MigrationSpec;
  status?: MigrationStatus;
}

/** A workload the operator can see, as the Kubernetes plugin would find it. */
export interface WorkloadSummary {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  replicas: number;
  readyReplicas: number;
}
