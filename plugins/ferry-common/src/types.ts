/**
 * The shapes of Ferry's REST API (`/api/ferry`), shared by the backend that
 * serves them and the frontend client that reads them. The backend's
 * `src/schema/openapi.yaml` is the contract; these types follow it.
 */

/** Whether a replica runs on spot or permanent (on-demand or reserved) capacity. */
export type CapacityType = 'spot' | 'on-demand';

/** How a member's state moves when its node goes away. */
export type MigrationMethod =
  | 'auto'
  | 'valkey'
  | 'checkpoint'
  | 'volume'
  | 'reschedule';

/** Why a migration started. */
export type MigrationReason = 'notice' | 'drain' | 'rebalance' | 'prediction' | 'policy';

/** How a migration ended; `running` while it has not. */
export type MigrationOutcome =
  | 'running'
  | 'succeeded'
  | 'rolled-back'
  | 'failed';

/**
 * Where a policy change came from: catalog-info.yaml, the portal, the REST API,
 * or the `ferry.dev/*` annotations of the workload itself (applied by the operator).
 */
export type PolicySource = 'catalog' | 'portal' | 'api' | 'workload';

/** What a service owner chooses. */
export interface SpotPolicySettings {
  enabled: boolean;
  permanentRatio: number;
  availabilityTarget: number;
  migration: MigrationMethod;
}

/** The Kubernetes workload behind an entity. */
export interface WorkloadLocation {
  cluster: string;
  namespace: string;
  kind: 'Deployment' | 'StatefulSet';
  name: string;
}

/** Where one replica runs. */
export interface ReplicaPlacement {
  pod: string;
  node: string;
  capacityType: CapacityType;
  instanceType: string;
  zone: string;
  hourlyCostUsd: number;
  interruptionRisk: number;
  ready: boolean;
}

/** GET /entities/{kind}/{namespace}/{name}/status */
export interface EntitySpotStatus {
  entityRef: string;
  workload: WorkloadLocation;
  policy: SpotPolicySettings;
  /** Where the policy's settings came from last. */
  policySource: PolicySource;
  replicas: ReplicaPlacement[];
  cost: {
    hourlyCostUsd: number;
    onDemandHourlyCostUsd: number;
    spendToDateUsd: number;
    savingsToDateUsd: number;
  };
  availability: {
    target: number;
    observed: number;
    errorBudgetRemaining: number;
    requiredMembers: number;
    readyMembers: number;
  };
  migrationsTotal: number;
  /** When the operator last reported, ISO-8601. */
  updatedAt: string;
  /** The SpotPolicy's conditions as the operator reported them (e.g. `Ready`). */
  conditions?: PolicyCondition[];
}

/** A condition of a SpotPolicy, following Kubernetes API conventions. */
export interface PolicyCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** One point of a cost series (per bucket). */
export interface CostPoint {
  /** Start of the bucket, ISO-8601. */
  time: string;
  spotUsd: number;
  permanentUsd: number;
  onDemandUsd: number;
}

/** GET /entities/{kind}/{namespace}/{name}/cost?from&to */
export interface CostSeries {
  entityRef: string;
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  points: CostPoint[];
  totalUsd: number;
  onDemandUsd: number;
  savingsUsd: number;
}

/** One point of an availability series (per bucket). */
export interface AvailabilityPoint {
  time: string;
  /** Share of the bucket with at least the required ready members. */
  availability: number;
  minReadyMembers: number;
  requiredMembers: number;
}

/** GET /entities/{kind}/{namespace}/{name}/availability?from&to */
export interface AvailabilitySeries {
  entityRef: string;
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  target: number;
  observed: number;
  errorBudgetRemaining: number;
  points: AvailabilityPoint[];
  /** Moments the quorum was at risk (ready members at or below the required). */
  atRisk: { time: string; readyMembers: number; requiredMembers: number }[];
}

/** A phase of a migration and how long it took. */
export interface MigrationPhaseTiming {
  phase: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
}

/** One migration as the portal shows it. */
export interface MigrationRecord {
  id: string;
  entityRef: string;
  cluster: string;
  namespace: string;
  workload: string;
  pod: string;
  sourceNode: string;
  targetNode?: string;
  reason: MigrationReason;
  driver: Exclude<MigrationMethod, 'auto'>;
  phase: string;
  outcome: MigrationOutcome;
  phases: MigrationPhaseTiming[];
  bytesMoved: number;
  writePauseMs?: number;
  message?: string;
  startedAt: string;
  finishedAt?: string;
}

/** A page of results. */
export interface Page<T> {
  items: T[];
  totalCount: number;
  /** Pass as `cursor` to get the next page; absent on the last page. */
  nextCursor?: string;
}

/** GET /entities/{kind}/{namespace}/{name}/migrations?reason&driver&outcome&limit&cursor */
export type MigrationPage = Page<MigrationRecord>;

/** A recorded change of a policy. */
export interface PolicyChange {
  id: string;
  entityRef: string;
  source: PolicySource;
  /** Entity ref of the user, or the plugin for catalog syncs. */
  changedBy: string;
  changedAt: string;
  before?: SpotPolicySettings;
  after: SpotPolicySettings;
}

/** GET /entities/{kind}/{namespace}/{name}/policy */
export interface PolicyView {
  entityRef: string;
  workload?: WorkloadLocation;
  policy: SpotPolicySettings;
  source: PolicySource;
  /** Whether the caller may change the policy, and why not when they may not. */
  canUpdate: boolean;
  readOnlyReason?: string;
  /** Catalog annotations that set the policy, if any. */
  annotations: Record<string, string>;
  history: PolicyChange[];
  /**
   * Annotations whose value differs from the policy in force, because a portal
   * or API change came after them. Editing such an annotation in
   * catalog-info.yaml applies it again.
   */
  overriddenAnnotations?: string[];
  /** Malformed `ferry.dev/*` annotations: what is wrong with each and what is allowed. */
  annotationErrors?: string[];
}

/** PUT /entities/{kind}/{namespace}/{name}/policy — every field optional. */
export type PolicyUpdate = Partial<SpotPolicySettings>;

/** A spot pool and its risk. */
export interface PoolRisk {
  cluster: string;
  zone: string;
  instanceType: string;
  spotPriceUsdPerHour: number;
  onDemandPriceUsdPerHour: number;
  interruptionRisk: number;
  replicas: number;
}

/** One service in the fleet summary. */
export interface FleetService {
  entityRef: string;
  workload: WorkloadLocation;
  enabled: boolean;
  replicas: number;
  spotReplicas: number;
  hourlyCostUsd: number;
  onDemandHourlyCostUsd: number;
  savingsToDateUsd: number;
  availability: number;
  availabilityTarget: number;
  /** Highest interruption risk among the service's spot replicas. */
  maxInterruptionRisk: number;
  migrationsTotal: number;
  /** True when the catalog no longer has the entity; its SpotPolicy stays until deleted. */
  orphaned?: boolean;
}

/** GET /fleet */
export interface FleetSummary {
  services: FleetService[];
  totals: {
    services: number;
    replicas: number;
    spotReplicas: number;
    hourlyCostUsd: number;
    onDemandHourlyCostUsd: number;
    savingsToDateUsd: number;
  };
  riskiestPools: PoolRisk[];
  updatedAt: string;
}

/** GET /health */
export interface HealthStatus {
  status: 'ok';
  mode: 'demo' | 'kubernetes';
  clusters: { name: string; reachable: boolean; message?: string }[];
}
