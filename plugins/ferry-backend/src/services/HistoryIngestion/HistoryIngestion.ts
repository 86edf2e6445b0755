import { LoggerService } from '@backstage/backend-plugin-api';
import type {
  MigrationOutcome,
  MigrationRecord,
  PolicySource,
  SpotPolicySettings,
} from '@ferry/plugin-ferry-common';
import { Migration, SpotPolicy } from '@ferry/plugin-ferry-node';
import {
  AvailabilitySample,
  CostSample,
  DatabaseFerryStore,
  WorkloadSnapshot,
} from '../../database/DatabaseFerryStore';
import { ClusterRegistry, FerryCluster } from '../Clusters/ClusterRegistry';
import { SPOT_POLICY_ANNOTATIONS } from './spotPolicyAnnotations';

/** Samples are kept per hour: each report adds its interval to the hour it ends in. */
export const SAMPLE_BUCKET_MS = 60 * 60 * 1000;
/** The longest interval one sample stands for; a longer silence is a gap in the history, not a flat line. */
export const MAX_SAMPLE_INTERVAL_MS = 6 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Copies what the operator reports — SpotPolicy status and Migration objects —
 * into the history store. Running it twice never counts anything twice: a
 * sample is the difference between the operator's cumulative spend and the
 * previous snapshot's, written in one transaction with the new snapshot, and
 * migrations are keyed by their object's name.
 */
export class HistoryIngestion {
  constructor(
    private readonly clusters: ClusterRegistry,
    private readonly store: DatabaseFerryStore,
    private readonly logger: LoggerService,
    private readonly retentionDays: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Ingests every cluster; a cluster that is down is logged and skipped. */
  async ingestAll(): Promise<void> {
    for (const cluster of this.clusters.list()) {
      try {
        await this.ingestCluster(cluster);
      } catch (error) {
        this.logger.warn(
          `Ferry could not ingest cluster ${cluster.name}; keeping what is stored: ${error}`,
        );
      }
    }
  }

  /** Ingests one cluster's SpotPolicies, Migrations and spot pools. */
  async ingestCluster(cluster: FerryCluster): Promise<void> {
    const since = new Date(
      this.clock() - this.retentionDays * DAY_MS,
    ).toISOString();
    const [policies, migrations, pools] = await this.clusters.call(
      cluster,
      client =>
        Promise.all([
          client.listSpotPolicies(),
          client.listMigrations({ since }),
          client.listSpotPools(),
        ]),
    );
    const now = this.clock();
    const owned = policies.filter(p => entityRefOf(p));
    const entityByWorkload = new Map(
      owned.map(p => [
        `${p.metadata.namespace}/${p.spec.workloadRef.name}`,
        entityRefOf(p)!,
      ]),
    );
    const records = migrations.flatMap(m => {
      const entityRef = entityByWorkload.get(
        `${m.metadata.namespace}/${m.spec.workloadRef.name}`,
      );
      return entityRef ? [toMigrationRecord(cluster.name, entityRef, m)] : [];
    });
    await this.store.upsertMigrations(records);
    await this.recordPolicies(cluster.name, owned, now);
    await this.store.removeWorkloadsExcept(
      cluster.name,
      owned.map(p => entityRefOf(p)!),
    );
    await this.store.replacePools(
      cluster.name,
      pools.map(p => ({
        cluster: cluster.name,
        zone: p.zone,
        instanceType: p.instanceType,
        spotPriceUsdPerHour: p.spotPriceUsdPerHour,
        onDemandPriceUsdPerHour: p.onDemandPriceUsdPerHour,
        interruptionRisk: p.interruptionRisk,
        replicas: p.replicas,
      })),
      now,
    );
  }

  /** Records the latest report of SpotPolicies: their snapshot, and a sample since the previous report. */
  async recordPolicies(
    clusterName: string,
    policies: SpotPolicy[],
    now = this.clock(),
  ): Promise<void> {
    const previous = new Map(
      (await this.store.listWorkloads(clusterName)).map(s => [s.entityRef, s]),
    );
    const stored = await this.store.countMigrations(
      policies.map(p => entityRefOf(p)!).filter(Boolean),
    );
    const snapshots: WorkloadSnapshot[] = [];
    const cost: CostSample[] = [];
    const availability: AvailabilitySample[] = [];
    for (const policy of policies) {
      const entityRef = entityRefOf(policy);
      if (!entityRef) continue;
      const snapshot = toSnapshot(
        clusterName,
        entityRef,
        policy,
        now,
        stored.get(entityRef) ?? 0,
      );
      snapshots.push(snapshot);
      const before = previous.get(entityRef);
      if (!policy.status || !before || snapshot.reportedAt <= before.reportedAt)
        continue;
      const coversMs = Math.min(
        snapshot.reportedAt - before.reportedAt,
        MAX_SAMPLE_INTERVAL_MS,
      );
      const spend = counterDelta(
        snapshot.spendToDateUsd,
        before.spendToDateUsd,
      );
      const onDemand = counterDelta(
        snapshot.spendToDateUsd + snapshot.savingsToDateUsd,
        before.spendToDateUsd + before.savingsToDateUsd,
      );
      const spotRate = policy.status.replicas
        .filter(r => r.capacityType === 'spot')
        .reduce((a, r) => a + r.hourlyCostUsd, 0);
      const spotShare =
        snapshot.hourlyCostUsd > 0 ? spotRate / snapshot.hourlyCostUsd : 0;
      const hour =
        Math.floor(snapshot.reportedAt / SAMPLE_BUCKET_MS) * SAMPLE_BUCKET_MS;
      cost.push({
        entityRef,
        sampledAt: hour,
        coversMs,
        spotUsd: spend * spotShare,
        permanentUsd: spend * (1 - spotShare),
        onDemandUsd: onDemand,
      });
      const { readyMembers, requiredMembers } = policy.status.availability;
      availability.push({
        entityRef,
        sampledAt: hour,
        coversMs,
        quorumMs: readyMembers >= requiredMembers ? coversMs : 0,
        readyMembers,
        requiredMembers,
      });
    }
    // One transaction: the samples are deltas against the stored snapshots, so
    // they and the new snapshots are written together or not at all.
    await this.store.recordReports(snapshots, cost, availability);
  }

  /** Deletes samples and migrations older than the retention. */
  async enforceRetention(): Promise<number> {
    return this.store.deleteHistoryBefore(
      this.clock() - this.retentionDays * DAY_MS,
    );
  }
}

/** The entity a SpotPolicy belongs to, from the annotation the portal wrote on it. */
export function entityRefOf(policy: SpotPolicy): string | undefined {
  return policy.metadata.annotations?.[SPOT_POLICY_ANNOTATIONS.entityRef];
}

/** The portal's view of a SpotPolicy's settings. */
export function settingsOf(policy: SpotPolicy): SpotPolicySettings {
  return {
    enabled: policy.spec.enabled,
    permanentRatio: policy.spec.permanentRatio,
    availabilityTarget: policy.spec.availabilityTarget,
    migration: policy.spec.migration,
    ...(policy.spec.hibernateAfter
      ? { hibernateAfter: policy.spec.hibernateAfter }
      : {}),
  };
}

/** Where a SpotPolicy's settings came from last. */
export function sourceOf(policy: SpotPolicy): PolicySource {
  const source = policy.metadata.annotations?.[SPOT_POLICY_ANNOTATIONS.source];
  return source === 'portal' || source === 'api' || source === 'workload'
    ? source
    : 'catalog';
}

/**
 * The time a report stands for: now, or the operator's own time when it is
 * ahead (the demo's simulated clock runs faster than the wall clock), read from
 * its newest condition or the object's creation.
 */
function reportedAtOf(policy: SpotPolicy, now: number): number {
  const times = [
    ...(policy.status?.conditions ?? []).map(c =>
      Date.parse(c.lastTransitionTime),
    ),
    Date.parse(policy.metadata.creationTimestamp ?? ''),
  ].filter(t => Number.isFinite(t));
  return Math.max(now, ...times);
}

function counterDelta(current: number, previous: number): number {
  // A counter that went down was reset (the operator restarted): count from zero.
  return current >= previous ? current - previous : current;
}

function toSnapshot(
  cluster: string,
  entityRef: string,
  policy: SpotPolicy,
  now: number,
  storedMigrations: number,
): WorkloadSnapshot {
  const status = policy.status;
  const replicas = status?.replicas ?? [];
  const spot = replicas.filter(r => r.capacityType === 'spot');
  return {
    entityRef,
    workload: {
      cluster,
      namespace: policy.metadata.namespace,
      kind: policy.spec.workloadRef.kind,
      name: policy.spec.workloadRef.name,
    },
    policy: settingsOf(policy),
    policySource: sourceOf(policy),
    status,
    replicas: replicas.length,
    spotReplicas: spot.length,
    hourlyCostUsd: status?.cost.hourlyCostUsd ?? 0,
    onDemandHourlyCostUsd: status?.cost.onDemandHourlyCostUsd ?? 0,
    spendToDateUsd: status?.cost.spendToDateUsd ?? 0,
    savingsToDateUsd: status?.cost.savingsToDateUsd ?? 0,
    availability: status?.availability.observed ?? 1,
    availabilityTarget: policy.spec.availabilityTarget,
    maxInterruptionRisk: Math.max(0, ...spot.map(r => r.interruptionRisk)),
    migrationsTotal: Math.max(status?.migrationsTotal ?? 0, storedMigrations),
    reportedAt: reportedAtOf(policy, now),
    ingestedAt: now,
  };
}

const OUTCOMES: Record<string, MigrationOutcome> = {
  Succeeded: 'succeeded',
  RolledBack: 'rolled-back',
  Failed: 'failed',
};

/** A Migration object as the portal records it. */
export function toMigrationRecord(
  cluster: string,
  entityRef: string,
  migration: Migration,
): MigrationRecord {
  const status = migration.status;
  const phases = (status?.phases ?? []).map(p => ({
    phase: p.phase,
    startedAt: p.startedAt,
    ...(p.finishedAt
      ? {
          finishedAt: p.finishedAt,
          durationMs: Math.max(
            0,
            Date.parse(p.finishedAt) - Date.parse(p.startedAt),
          ),
        }
      : {}),
  }));
  const startedAt =
    phases[0]?.startedAt ??
    migration.metadata.creationTimestamp ??
    new Date().toISOString();
  const targetNode = status?.targetNode ?? migration.spec.targetNode;
  return {
    id: `${cluster}/${migration.metadata.namespace}/${migration.metadata.name}`,
    entityRef,
    cluster,
    namespace: migration.metadata.namespace,
    workload: migration.spec.workloadRef.name,
    pod: migration.spec.pod,
    sourceNode: migration.spec.sourceNode,
    ...(targetNode ? { targetNode } : {}),
    reason: migration.spec.reason,
    driver: migration.spec.driver,
    phase: status?.phase ?? 'Planned',
    outcome: OUTCOMES[status?.phase ?? ''] ?? 'running',
    phases,
    bytesMoved: status?.bytesMoved ?? 0,
    ...(status?.writePauseMs !== undefined
      ? { writePauseMs: status.writePauseMs }
      : {}),
    ...(status?.message ? { message: status.message } : {}),
    startedAt,
    ...(status?.completedAt ? { finishedAt: status.completedAt } : {}),
  };
}
