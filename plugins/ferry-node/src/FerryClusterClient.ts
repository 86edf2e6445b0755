import type {
  Migration,
  SpotPolicy,
  SpotPolicySpec,
  WorkloadSummary,
} from './v1alpha1';

/** A spot pool (instance type × zone) as the operator sees it now. */
export interface SpotPoolSummary {
  provider: 'aws' | 'gcp' | 'azure' | 'simulated';
  region: string;
  zone: string;
  instanceType: string;
  spotPriceUsdPerHour: number;
  onDemandPriceUsdPerHour: number;
  /** Probability of an interruption within the default horizon. */
  interruptionRisk: number;
  /** Ferry-managed replicas running in the pool. */
  replicas: number;
}

/** Filter for migrations; every field narrows. */
export interface MigrationQuery {
  namespace?: string;
  workloadName?: string;
  /** ISO-8601; migrations created at or after it. */
  since?: string;
}

/**
 * What the portal needs from one cluster: read and write SpotPolicies, read
 * Migrations, find workloads the way the Kubernetes plugin does.
 *
 * Implemented by the in-memory cluster of demo mode and by the Kubernetes API.
 */
export interface FerryClusterClient {
  /** Workloads matching every label of the selector, in one namespace or all. */
  listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]>;
  listSpotPolicies(namespace?: string): Promise<SpotPolicy[]>;
  getSpotPolicy(
    namespace: string,
    name: string,
  ): Promise<SpotPolicy | undefined>;
  /**
   * Creates or replaces the spec of a SpotPolicy; the status is the operator's.
   * With `basedOn`, the write is conditional on the policy the caller read (its
   * resourceVersion, or its absence): a change made since fails the write with a
   * conflict instead of being overwritten.
   */
  applySpotPolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
    options?: { basedOn: SpotPolicy | undefined },
  ): Promise<SpotPolicy>;
  listMigrations(query?: MigrationQuery): Promise<Migration[]>;
  listSpotPools(): Promise<SpotPoolSummary[]>;
}
