import type {
  AvailabilitySeries,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  MigrationPage,
} from '@ferry/plugin-ferry-common';
import type { SpotPolicyStatus } from '@ferry/plugin-ferry-node';
import {
  DatabaseFerryStore,
  MigrationFilter,
  WorkloadSnapshot,
} from '../../database/DatabaseFerryStore';
import { CachedBody, ResponseCache } from './ResponseCache';
import { parseTimeRange } from './timeRange';

/** How many pools the fleet summary lists as riskiest. */
export const RISKIEST_POOLS = 5;
/**
 * How long a serialized status or fleet summary is served from memory. Writes
 * through this process invalidate it at once; this bounds how stale it can be
 * when another instance ingested (ingestion itself runs every 15 s by default).
 */
export const RESPONSE_CACHE_MS = 5_000;
/** How many at-risk moments an availability series lists. */
export const MAX_AT_RISK_MOMENTS = 100;

/** Tells which of some entities the catalog no longer has. */
export interface CatalogPresence {
  missing(entityRefs: string[]): Promise<Set<string>>;
}

/**
 * The portal's read views over the history store: an entity's status, cost,
 * availability and migrations, and the fleet. Each is served from the store,
 * so it answers while a cluster is down (with the time of the last report).
 */
export class SpotReports {
  private readonly cache: ResponseCache;

  constructor(
    private readonly store: DatabaseFerryStore,
    now: () => number = Date.now,
    /** Which entities the catalog no longer has; without it no service is called orphaned. */
    private readonly catalog?: CatalogPresence,
  ) {
    this.cache = new ResponseCache(
      () => store.generation,
      RESPONSE_CACHE_MS,
      now,
    );
  }

  /**
   * The fleet summary, serialized: every request for it reads the same 1,000
   * rows, so it is built once per change (see {@link ResponseCache}).
   */
  async fleetBody(): Promise<CachedBody> {
    return (await this.cache.get('fleet', () => this.fleet()))!;
  }

  /** An entity's status, serialized, or undefined when it has no report yet. */
  async statusBody(entityRef: string): Promise<CachedBody | undefined> {
    return this.cache.get(`status:${entityRef}`, async () => {
      const snapshot = await this.store.getWorkload(entityRef);
      return snapshot && this.status(snapshot);
    });
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

  /**
   * The fleet. A service whose entity the catalog no longer has is `orphaned`:
   * its SpotPolicy stays in force (Ferry opts nothing out on its own) until
   * someone deletes it.
   */
  async fleet(): Promise<FleetSummary> {
    const [snapshots, pools] = await Promise.all([
      this.store.listWorkloads(),
      this.store.riskiestPools(RISKIEST_POOLS),
    ]);
    const orphaned = await this.orphanedOf(snapshots.map(s => s.entityRef));
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
      ...(orphaned.has(s.entityRef) ? { orphaned: true } : {}),
    }));
    return {
      ...fleetOf(services),
      riskiestPools: pools,
      updatedAt: new Date(
        snapshots.length > 0
          ? Math.max(...snapshots.map(s => s.ingestedAt))
          : Date.now(),
      ).toISOString(),
    };
  }

  /** The fleet as a caller who may read only some of its services sees it: those, and their totals. */
  async fleetLimitedTo(
    readable: (entityRefs: string[]) => Promise<Set<string>>,
  ): Promise<FleetSummary> {
    const fleet = await this.fleet();
    const allowed = await readable(fleet.services.map(s => s.entityRef));
    return {
      ...fleet,
      ...fleetOf(fleet.services.filter(s => allowed.has(s.entityRef))),
    };
  }

  private async orphanedOf(entityRefs: string[]): Promise<Set<string>> {
    if (!this.catalog || entityRefs.length === 0) return new Set();
    try {
      return await this.catalog.missing(entityRefs);
    } catch {
      // A catalog that does not answer orphans nothing; the next build asks again.
      return new Set();
    }
  }
}

/** Services and their totals. */
function fleetOf(
  services: FleetSummary['services'],
): Pick<FleetSummary, 'services' | 'totals'> {
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
  };
}

/** Share of the error budget left: 1 untouched, 0 spent, below 0 when the target is missed. */
export function errorBudgetRemaining(observed: number, target: number): number {
  if (target >= 1) return observed >= 1 ? 1 : 0;
  return 1 - (1 - observed) / (1 - target);
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
