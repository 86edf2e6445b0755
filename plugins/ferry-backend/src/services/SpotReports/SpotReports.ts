import type {
  AvailabilitySeries,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  MigrationPage,
} from '@ferry/plugin-ferry-common';
import type { SpotPolicyStatus } from '@ferry/operator';
import {
  DatabaseFerryStore,
  MigrationFilter,
  WorkloadSnapshot,
} from '../../database/DatabaseFerryStore';
import { parseTimeRange } from './timeRange';

/** How many pools the fleet summary lists as riskiest. */
export const RISKIEST_POOLS = 5;
/**
 * How long a fleet summary is served from memory. Writes through this process
 * invalidate it at once; this bounds how stale it can be when another instance
 * ingested (ingestion itself runs every 15 s by default).
 */
export const FLEET_CACHE_MS = 5_000;
/** How many at-risk moments an availability series lists. */
export const MAX_AT_RISK_MOMENTS = 100;

/**
 * The portal's read views over the history store: an entity's status, cost,
 * availability and migrations, and the fleet. Each is served from the store,
 * so it answers while a cluster is down (with the time of the last report).
 */
export class SpotReports {
  private fleetCache?: {
    json: Promise<string>;
    generation: number;
    at: number;
    refreshing: boolean;
  };

  constructor(
    private readonly store: DatabaseFerryStore,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The fleet summary as JSON text: every request for it reads the same 1,000
   * rows, so it is built once per change (or per {@link FLEET_CACHE_MS}) and
   * sent as it is.
   */
  async fleetJson(): Promise<string> {
    const cached = this.fleetCache;
    const generation = this.store.generation;
    if (cached && cached.generation === generation) {
      if (this.now() - cached.at >= FLEET_CACHE_MS && !cached.refreshing) {
        // Only another instance can have written since: serve what is cached
        // while one rebuild runs, instead of making every request wait for it.
        cached.refreshing = true;
        this.buildFleet(generation).catch(() => {
          cached.refreshing = false;
        });
      }
      return cached.json;
    }
    // This process wrote since (or nothing is cached): the caller sees the write.
    return this.buildFleet(generation);
  }

  private buildFleet(generation: number): Promise<string> {
    // Concurrent requests share one build.
    const json = this.fleet().then(fleet => JSON.stringify(fleet));
    const entry = { json, generation, at: this.now(), refreshing: false };
    json.then(
      () => {
        if (!this.fleetCache || this.fleetCache.generation <= generation)
          this.fleetCache = entry;
      },
      () => {
        if (this.fleetCache === entry) this.fleetCache = undefined;
      },
    );
    if (!this.fleetCache || this.fleetCache.generation !== generation)
      this.fleetCache = entry;
    return json;
  }

  async snapshot(entityRef: string): Promise<WorkloadSnapshot | undefined> {
    return this.store.getWorkload(entityRef);
  }

  status(snapshot: WorkloadSnapshot): EntitySpotStatus {
    const status = snapshot.status as SpotPolicyStatus | undefined;
    const required = status?.availability.requiredMembers ?? 0;
    return {
      entityRef: snapshot.entityRef,
      workload: snapshot.workload,
      policy: snapshot.policy,
      policySource: snapshot.policySource,
      replicas: status?.replicas ?? [],
      cost: {
        hourlyCostUsd: snapshot.hourlyCostUsd,
        onDemandHourlyCostUsd: snapshot.onDemandHourlyCostUsd,
        spendToDateUsd: snapshot.spendToDateUsd,
        savingsToDateUsd: snapshot.savingsToDateUsd,
      },
      availability: {
        target: snapshot.availabilityTarget,
        observed: snapshot.availability,
        errorBudgetRemaining: errorBudgetRemaining(
          snapshot.availability,
          snapshot.availabilityTarget,
        ),
        requiredMembers: required,
        readyMembers: status?.availability.readyMembers ?? 0,
      },
      migrationsTotal: snapshot.migrationsTotal,
      updatedAt: new Date(snapshot.reportedAt).toISOString(),
      ...(status?.conditions ? { conditions: status.conditions } : {}),
    };
  }

  async cost(
    snapshot: WorkloadSnapshot,
    query: { from?: string; to?: string; bucket?: string },
  ): Promise<CostSeries> {
    const range = parseTimeRange(query, snapshot.reportedAt);
    const buckets = await this.store.costBuckets(
      snapshot.entityRef,
      range.from,
      range.to,
      range.bucketMs,
    );
    const points = buckets.map(b => ({
      time: new Date(b.bucketStart).toISOString(),
      spotUsd: b.spotUsd,
      permanentUsd: b.permanentUsd,
      onDemandUsd: b.onDemandUsd,
    }));
    const totalUsd = sum(points.map(p => p.spotUsd + p.permanentUsd));
    const onDemandUsd = sum(points.map(p => p.onDemandUsd));
    return {
      entityRef: snapshot.entityRef,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      bucket: range.bucket,
      points,
      totalUsd,
      onDemandUsd,
      savingsUsd: onDemandUsd - totalUsd,
    };
  }

  async availability(
    snapshot: WorkloadSnapshot,
    query: { from?: string; to?: string; bucket?: string },
  ): Promise<AvailabilitySeries> {
    const range = parseTimeRange(query, snapshot.reportedAt);
    const [buckets, atRisk] = await Promise.all([
      this.store.availabilityBuckets(
        snapshot.entityRef,
        range.from,
        range.to,
        range.bucketMs,
      ),
      this.store.atRiskMoments(
        snapshot.entityRef,
        range.from,
        range.to,
        MAX_AT_RISK_MOMENTS,
      ),
    ]);
    const covered = sum(buckets.map(b => b.coversMs));
    const observed =
      covered > 0 ? sum(buckets.map(b => b.quorumMs)) / covered : 1;
    const target = snapshot.availabilityTarget;
    return {
      entityRef: snapshot.entityRef,
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      bucket: range.bucket,
      target,
      observed,
      errorBudgetRemaining: errorBudgetRemaining(observed, target),
      points: buckets.map(b => ({
        time: new Date(b.bucketStart).toISOString(),
        availability: b.coversMs > 0 ? b.quorumMs / b.coversMs : 1,
        minReadyMembers: b.minReadyMembers,
        requiredMembers: b.requiredMembers,
      })),
      atRisk: atRisk.map(m => ({ ...m, time: new Date(m.time).toISOString() })),
    };
  }

  async migrations(
    entityRef: string,
    filter: MigrationFilter,
  ): Promise<MigrationPage> {
    const page = await this.store.listMigrations(entityRef, filter);
    return {
      items: page.items,
      totalCount: page.totalCount,
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    };
  }

  async fleet(): Promise<FleetSummary> {
    const [snapshots, pools] = await Promise.all([
      this.store.listWorkloads(),
      this.store.riskiestPools(RISKIEST_POOLS),
    ]);
    const services = snapshots.map(s => ({
      entityRef: s.entityRef,
      workload: s.workload,
      enabled: s.policy.enabled,
      replicas: s.replicas,
      spotReplicas: s.spotReplicas,
      hourlyCostUsd: s.hourlyCostUsd,
      onDemandHourlyCostUsd: s.onDemandHourlyCostUsd,
      savingsToDateUsd: s.savingsToDateUsd,
      availability: s.availability,
      availabilityTarget: s.availabilityTarget,
      maxInterruptionRisk: s.maxInterruptionRisk,
      migrationsTotal: s.migrationsTotal,
    }));
    return {
      services,
      totals: {
        services: services.length,
        replicas: sum(services.map(s => s.replicas)),
        spotReplicas: sum(services.map(s => s.spotReplicas)),
        hourlyCostUsd: sum(services.map(s => s.hourlyCostUsd)),
        onDemandHourlyCostUsd: sum(services.map(s => s.onDemandHourlyCostUsd)),
        savingsToDateUsd: sum(services.map(s => s.savingsToDateUsd)),
      },
      riskiestPools: pools,
      updatedAt: new Date(
        snapshots.length > 0
          ? Math.max(...snapshots.map(s => s.ingestedAt))
          : Date.now(),
      ).toISOString(),
    };
  }
}

/** Share of the error budget left: 1 untouched, 0 spent, below 0 when the target is missed. */
export function errorBudgetRemaining(observed: number, target: number): number {
  if (target >= 1) return observed >= 1 ? 1 : 0;
  return 1 - (1 - observed) / (1 - target);
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
