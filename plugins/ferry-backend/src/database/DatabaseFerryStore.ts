import {
  DatabaseService,
  resolvePackagePath,
} from '@backstage/backend-plugin-api';
import { NotFoundError } from '@backstage/errors';
import type {
  MigrationOutcome,
  MigrationReason,
  MigrationRecord,
  PolicyChange,
  PolicySource,
  SpotPolicySettings,
  WorkloadLocation,
} from '@ferry/plugin-ferry-common';
import { Knex } from 'knex';

const MIGRATIONS_DIRECTORY = resolvePackagePath(
  '@ferry/plugin-ferry-backend',
  'migrations',
);

/** Rows written per statement; SQLite allows 999 bound values per statement. */
const BATCH_ROWS = 40;

/** The latest report of one entity's SpotPolicy. */
export interface WorkloadSnapshot {
  entityRef: string;
  workload: WorkloadLocation;
  policy: SpotPolicySettings;
  policySource: PolicySource;
  /** The SpotPolicy's status as the operator wrote it, if it did. */
  status?: unknown;
  replicas: number;
  spotReplicas: number;
  hourlyCostUsd: number;
  onDemandHourlyCostUsd: number;
  spendToDateUsd: number;
  savingsToDateUsd: number;
  availability: number;
  availabilityTarget: number;
  maxInterruptionRisk: number;
  migrationsTotal: number;
  /** When the operator last reported, epoch ms. */
  reportedAt: number;
  ingestedAt: number;
}

/** Spend over the interval that ends at `sampledAt`. */
export interface CostSample {
  entityRef: string;
  sampledAt: number;
  coversMs: number;
  spotUsd: number;
  permanentUsd: number;
  onDemandUsd: number;
}

/** Ready members over the interval that ends at `sampledAt`. */
export interface AvailabilitySample {
  entityRef: string;
  sampledAt: number;
  coversMs: number;
  quorumMs: number;
  readyMembers: number;
  requiredMembers: number;
}

/** A spot pool as last reported. */
export interface PoolSnapshot {
  cluster: string;
  zone: string;
  instanceType: string;
  spotPriceUsdPerHour: number;
  onDemandPriceUsdPerHour: number;
  interruptionRisk: number;
  replicas: number;
}

/** Sums of cost samples per bucket. */
export interface CostBucket {
  bucketStart: number;
  spotUsd: number;
  permanentUsd: number;
  onDemandUsd: number;
}

/** Sums of availability samples per bucket. */
export interface AvailabilityBucket {
  bucketStart: number;
  coversMs: number;
  quorumMs: number;
  minReadyMembers: number;
  requiredMembers: number;
}

/** Filter and page of a migrations query. */
export interface MigrationFilter {
  reason?: MigrationReason;
  driver?: string;
  outcome?: MigrationOutcome;
  limit: number;
  cursor?: string;
}

/** A policy change to record. */
export interface NewPolicyChange {
  entityRef: string;
  source: PolicySource;
  changedBy: string;
  changedAt: number;
  before?: SpotPolicySettings;
  after: SpotPolicySettings;
}

/**
 * Ferry's history: cost and availability samples, migrations, policy changes,
 * and the latest report of each workload and spot pool.
 *
 * SQLite (in memory by default) and PostgreSQL differ in three places, each
 * handled here: PostgreSQL returns BIGINT and COUNT as strings (converted with
 * `Number`), SQLite limits bound values per statement (writes are batched), and
 * PostgreSQL's integer division of BIGINT is what bucketing relies on, which
 * SQLite does for INTEGER columns too.
 */
export class DatabaseFerryStore {
  static async create(options: {
    database: DatabaseService;
    skipMigrations?: boolean;
  }): Promise<DatabaseFerryStore> {
    const client = await options.database.getClient();
    if (!options.skipMigrations && !options.database.migrations?.skip) {
      await client.migrate.latest({ directory: MIGRATIONS_DIRECTORY });
    }
    return new DatabaseFerryStore(client);
  }

  /** Where the migrations are, for tests that step them. */
  static readonly migrationsDirectory = MIGRATIONS_DIRECTORY;

  private constructor(private readonly db: Knex) {}

  private workloadsGeneration = 0;

  /**
   * Goes up whenever this process writes workload or pool snapshots, so that a
   * reader can cache what it built from them (see SpotReports.fleet).
   */
  get generation(): number {
    return this.workloadsGeneration;
  }

  async upsertWorkloads(
    snapshots: WorkloadSnapshot[],
    db: Knex = this.db,
  ): Promise<void> {
    this.workloadsGeneration += 1;
    for (const batch of chunks(snapshots)) {
      await db('ferry_workloads')
        .insert(batch.map(toWorkloadRow))
        .onConflict('entity_ref')
        .merge();
    }
  }

  /** Removes the snapshots of a cluster's entities that are no longer in `keep`. */
  async removeWorkloadsExcept(
    cluster: string,
    keep: string[],
  ): Promise<number> {
    const rows = await this.db('ferry_workloads')
      .where({ cluster })
      .select('entity_ref');
    const kept = new Set(keep);
    const gone = rows
      .map(r => r.entity_ref as string)
      .filter(ref => !kept.has(ref));
    if (gone.length > 0) this.workloadsGeneration += 1;
    for (const batch of chunks(gone, 500)) {
      await this.db('ferry_workloads').whereIn('entity_ref', batch).delete();
    }
    return gone.length;
  }

  async getWorkload(entityRef: string): Promise<WorkloadSnapshot | undefined> {
    const row = await this.db('ferry_workloads')
      .where({ entity_ref: entityRef })
      .first();
    return row ? fromWorkloadRow(row, true) : undefined;
  }

  /** Every snapshot, without the status document (the fleet does not need it). */
  async listWorkloads(cluster?: string): Promise<WorkloadSnapshot[]> {
    const query = this.db('ferry_workloads')
      .select(
        'entity_ref',
        'cluster',
        'namespace',
        'kind',
        'name',
        'enabled',
        'policy',
        'policy_source',
        'replicas',
        'spot_replicas',
        'hourly_cost_usd',
        'on_demand_hourly_cost_usd',
        'spend_to_date_usd',
        'savings_to_date_usd',
        'availability',
        'availability_target',
        'max_interruption_risk',
        'migrations_total',
        'reported_at',
        'ingested_at',
      )
      .orderBy('entity_ref');
    if (cluster) query.where({ cluster });
    return (await query).map(row => fromWorkloadRow(row, false));
  }

  /**
   * Writes new snapshots and the samples they produced in one transaction.
   * A sample for an entity and hour already stored is added to: the hour's
   * spend and covered time grow, its fewest ready members is kept.
   */
  async recordReports(
    snapshots: WorkloadSnapshot[],
    cost: CostSample[],
    availability: AvailabilitySample[],
  ): Promise<void> {
    await this.db.transaction(async tx => {
      await this.addSamples(cost, availability, tx);
      await this.upsertWorkloads(snapshots, tx);
    });
  }

  /** Adds samples to their entity's hour (see {@link DatabaseFerryStore.recordReports}). */
  async addSamples(
    cost: CostSample[],
    availability: AvailabilitySample[],
    db: Knex = this.db,
  ): Promise<void> {
    // Qualified column names work in the upsert of both SQLite and PostgreSQL.
    const add = (table: string, column: string) =>
      db.raw(`${table}.${column} + excluded.${column}`);
    for (const batch of chunks(cost)) {
      await db('ferry_cost_samples')
        .insert(
          batch.map(s => ({
            entity_ref: s.entityRef,
            sampled_at: s.sampledAt,
            covers_ms: s.coversMs,
            spot_usd: s.spotUsd,
            permanent_usd: s.permanentUsd,
            on_demand_usd: s.onDemandUsd,
          })),
        )
        .onConflict(['entity_ref', 'sampled_at'])
        .merge({
          covers_ms: add('ferry_cost_samples', 'covers_ms'),
          spot_usd: add('ferry_cost_samples', 'spot_usd'),
          permanent_usd: add('ferry_cost_samples', 'permanent_usd'),
          on_demand_usd: add('ferry_cost_samples', 'on_demand_usd'),
        });
    }
    for (const batch of chunks(availability)) {
      await db('ferry_availability_samples')
        .insert(
          batch.map(s => ({
            entity_ref: s.entityRef,
            sampled_at: s.sampledAt,
            covers_ms: s.coversMs,
            quorum_ms: s.quorumMs,
            ready_members: s.readyMembers,
            required_members: s.requiredMembers,
          })),
        )
        .onConflict(['entity_ref', 'sampled_at'])
        .merge({
          covers_ms: add('ferry_availability_samples', 'covers_ms'),
          quorum_ms: add('ferry_availability_samples', 'quorum_ms'),
          ready_members: db.raw(
            'CASE WHEN excluded.ready_members < ferry_availability_samples.ready_members THEN excluded.ready_members ELSE ferry_availability_samples.ready_members END',
          ),
          required_members: db.raw('excluded.required_members'),
        });
    }
  }

  /** Cost per bucket of `bucketMs` in [from, to). */
  async costBuckets(
    entityRef: string,
    from: number,
    to: number,
    bucketMs: number,
  ): Promise<CostBucket[]> {
    const bucket = this.bucketExpression(bucketMs);
    const rows = await this.db('ferry_cost_samples')
      .where('entity_ref', entityRef)
      .andWhere('sampled_at', '>=', from)
      .andWhere('sampled_at', '<', to)
      .select({ bucket_start: bucket })
      .sum({
        spot_usd: 'spot_usd',
        permanent_usd: 'permanent_usd',
        on_demand_usd: 'on_demand_usd',
      })
      .groupByRaw('1')
      .orderByRaw('1');
    return rows.map((r: any) => ({
      bucketStart: Number(r.bucket_start),
      spotUsd: Number(r.spot_usd),
      permanentUsd: Number(r.permanent_usd),
      onDemandUsd: Number(r.on_demand_usd),
    }));
  }

  /**
   * The start of a sample's bucket. better-sqlite3 binds a JS number as REAL,
   * which would make SQLite divide in floating point; the casts keep it the
   * integer division PostgreSQL does on BIGINT.
   */
  private bucketExpression(bucketMs: number) {
    return this.db.raw('(sampled_at / CAST(? AS BIGINT)) * CAST(? AS BIGINT)', [
      Math.trunc(bucketMs),
      Math.trunc(bucketMs),
    ]);
  }

  /** Availability per bucket of `bucketMs` in [from, to). */
  async availabilityBuckets(
    entityRef: string,
    from: number,
    to: number,
    bucketMs: number,
  ): Promise<AvailabilityBucket[]> {
    const bucket = this.bucketExpression(bucketMs);
    const rows = await this.db('ferry_availability_samples')
      .where('entity_ref', entityRef)
      .andWhere('sampled_at', '>=', from)
      .andWhere('sampled_at', '<', to)
      .select({ bucket_start: bucket })
      .sum({ covers_ms: 'covers_ms', quorum_ms: 'quorum_ms' })
      .min({ min_ready: 'ready_members' })
      .max({ required: 'required_members' })
      .groupByRaw('1')
      .orderByRaw('1');
    return rows.map((r: any) => ({
      bucketStart: Number(r.bucket_start),
      coversMs: Number(r.covers_ms),
      quorumMs: Number(r.quorum_ms),
      minReadyMembers: Number(r.min_ready),
      requiredMembers: Number(r.required),
    }));
  }

  /** Samples in [from, to) with at most the required members ready, newest first. */
  async atRiskMoments(
    entityRef: string,
    from: number,
    to: number,
    limit: number,
  ) {
    const rows = await this.db('ferry_availability_samples')
      .where('entity_ref', entityRef)
      .andWhere('sampled_at', '>=', from)
      .andWhere('sampled_at', '<', to)
      .andWhereRaw('ready_members <= required_members')
      .orderBy('sampled_at', 'desc')
      .limit(limit)
      .select('sampled_at', 'ready_members', 'required_members');
    return rows.map(r => ({
      time: Number(r.sampled_at),
      readyMembers: Number(r.ready_members),
      requiredMembers: Number(r.required_members),
    }));
  }

  /** Inserts migrations, or updates them as they progress; the same report twice changes nothing. */
  async upsertMigrations(records: MigrationRecord[]): Promise<void> {
    for (const batch of chunks(records, 20)) {
      await this.db('ferry_migrations')
        .insert(batch.map(toMigrationRow))
        .onConflict('id')
        .merge();
    }
  }

  /** Stored migrations per entity. */
  async countMigrations(entityRefs: string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const batch of chunks(entityRefs, 500)) {
      const rows = await this.db('ferry_migrations')
        .whereIn('entity_ref', batch)
        .groupBy('entity_ref')
        .select('entity_ref')
        .count({ n: '*' });
      for (const row of rows as any[])
        counts.set(String(row.entity_ref), Number(row.n));
    }
    return counts;
  }

  /** A page of an entity's migrations, newest first, by keyset on (started_at, id). */
  async listMigrations(entityRef: string, filter: MigrationFilter) {
    const base = this.db('ferry_migrations').where('entity_ref', entityRef);
    if (filter.reason) base.andWhere('reason', filter.reason);
    if (filter.driver) base.andWhere('driver', filter.driver);
    if (filter.outcome) base.andWhere('outcome', filter.outcome);
    const [{ n }] = await base.clone().count({ n: '*' });
    const page = base.clone();
    if (filter.cursor) {
      const after = decodeCursor(filter.cursor);
      page.andWhere(q =>
        q
          .where('started_at', '<', after.startedAt)
          .orWhere(q2 =>
            q2
              .where('started_at', after.startedAt)
              .andWhere('id', '<', after.id),
          ),
      );
    }
    const rows = await page
      .orderBy([
        { column: 'started_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(filter.limit + 1)
      .select('*');
    const items = rows.slice(0, filter.limit).map(fromMigrationRow);
    const last =
      rows.length > filter.limit ? rows[filter.limit - 1] : undefined;
    return {
      items,
      totalCount: Number(n),
      nextCursor: last
        ? encodeCursor({ startedAt: Number(last.started_at), id: last.id })
        : undefined,
    };
  }

  /** Migrations by id, for the demo's reclaim answer. */
  async getMigrations(ids: string[]): Promise<MigrationRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.db('ferry_migrations')
      .whereIn('id', ids)
      .orderBy('started_at');
    return rows.map(fromMigrationRow);
  }

  async recordPolicyChange(change: NewPolicyChange): Promise<void> {
    await this.db('ferry_policy_changes').insert({
      entity_ref: change.entityRef,
      source: change.source,
      changed_by: change.changedBy,
      changed_at: change.changedAt,
      before: change.before ? JSON.stringify(change.before) : null,
      after: JSON.stringify(change.after),
    });
  }

  /** An entity's policy changes, newest first. */
  async listPolicyChanges(
    entityRef: string,
    limit: number,
  ): Promise<PolicyChange[]> {
    const rows = await this.db('ferry_policy_changes')
      .where('entity_ref', entityRef)
      .orderBy([
        { column: 'changed_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(limit);
    return rows.map(r => ({
      id: String(r.id),
      entityRef: r.entity_ref,
      source: r.source,
      changedBy: r.changed_by,
      changedAt: new Date(Number(r.changed_at)).toISOString(),
      ...(r.before ? { before: JSON.parse(r.before) } : {}),
      after: JSON.parse(r.after),
    }));
  }

  /** Replaces the pools of a cluster. */
  async replacePools(
    cluster: string,
    pools: PoolSnapshot[],
    now: number,
  ): Promise<void> {
    this.workloadsGeneration += 1;
    await this.db.transaction(async tx => {
      await tx('ferry_pools').where({ cluster }).delete();
      for (const batch of chunks(pools)) {
        await tx('ferry_pools').insert(
          batch.map(p => ({
            cluster,
            zone: p.zone,
            instance_type: p.instanceType,
            spot_price_usd_per_hour: p.spotPriceUsdPerHour,
            on_demand_price_usd_per_hour: p.onDemandPriceUsdPerHour,
            interruption_risk: p.interruptionRisk,
            replicas: p.replicas,
            updated_at: now,
          })),
        );
      }
    });
  }

  /** The pools most likely to be interrupted, those running replicas first. */
  async riskiestPools(limit: number): Promise<PoolSnapshot[]> {
    const rows = await this.db('ferry_pools')
      .orderByRaw('CASE WHEN replicas > 0 THEN 0 ELSE 1 END')
      .orderBy('interruption_risk', 'desc')
      .orderBy('spot_price_usd_per_hour', 'asc')
      .limit(limit);
    return rows.map(r => ({
      cluster: r.cluster,
      zone: r.zone,
      instanceType: r.instance_type,
      spotPriceUsdPerHour: Number(r.spot_price_usd_per_hour),
      onDemandPriceUsdPerHour: Number(r.on_demand_price_usd_per_hour),
      interruptionRisk: Number(r.interruption_risk),
      replicas: Number(r.replicas),
    }));
  }

  /** Deletes samples and migrations older than `cutoff` (epoch ms); policy changes are kept as the audit trail. */
  async deleteHistoryBefore(cutoff: number): Promise<number> {
    let deleted = 0;
    deleted += await this.db('ferry_cost_samples')
      .where('sampled_at', '<', cutoff)
      .delete();
    deleted += await this.db('ferry_availability_samples')
      .where('sampled_at', '<', cutoff)
      .delete();
    deleted += await this.db('ferry_migrations')
      .where('started_at', '<', cutoff)
      .delete();
    return deleted;
  }
}

function chunks<T>(items: T[], size = BATCH_ROWS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(items.slice(i, i + size));
  return out;
}

function toWorkloadRow(s: WorkloadSnapshot) {
  return {
    entity_ref: s.entityRef,
    cluster: s.workload.cluster,
    namespace: s.workload.namespace,
    kind: s.workload.kind,
    name: s.workload.name,
    enabled: s.policy.enabled,
    policy: JSON.stringify(s.policy),
    policy_source: s.policySource,
    status: s.status === undefined ? null : JSON.stringify(s.status),
    replicas: s.replicas,
    spot_replicas: s.spotReplicas,
    hourly_cost_usd: s.hourlyCostUsd,
    on_demand_hourly_cost_usd: s.onDemandHourlyCostUsd,
    spend_to_date_usd: s.spendToDateUsd,
    savings_to_date_usd: s.savingsToDateUsd,
    availability: s.availability,
    availability_target: s.availabilityTarget,
    max_interruption_risk: s.maxInterruptionRisk,
    migrations_total: s.migrationsTotal,
    reported_at: s.reportedAt,
    ingested_at: s.ingestedAt,
  };
}

function fromWorkloadRow(r: any, withStatus: boolean): WorkloadSnapshot {
  return {
    entityRef: r.entity_ref,
    workload: {
      cluster: r.cluster,
      namespace: r.namespace,
      kind: r.kind,
      name: r.name,
    },
    policy: JSON.parse(r.policy),
    policySource: r.policy_source,
    ...(withStatus && r.status ? { status: JSON.parse(r.status) } : {}),
    replicas: Number(r.replicas),
    spotReplicas: Number(r.spot_replicas),
    hourlyCostUsd: Number(r.hourly_cost_usd),
    onDemandHourlyCostUsd: Number(r.on_demand_hourly_cost_usd),
    spendToDateUsd: Number(r.spend_to_date_usd),
    savingsToDateUsd: Number(r.savings_to_date_usd),
    availability: Number(r.availability),
    availabilityTarget: Number(r.availability_target),
    maxInterruptionRisk: Number(r.max_interruption_risk),
    migrationsTotal: Number(r.migrations_total),
    reportedAt: Number(r.reported_at),
    ingestedAt: Number(r.ingested_at),
  };
}

function toMigrationRow(m: MigrationRecord) {
  return {
    id: m.id,
    entity_ref: m.entityRef,
    cluster: m.cluster,
    namespace: m.namespace,
    workload: m.workload,
    pod: m.pod,
    source_node: m.sourceNode,
    target_node: m.targetNode ?? null,
    reason: m.reason,
    driver: m.driver,
    phase: m.phase,
    outcome: m.outcome,
    phases: JSON.stringify(m.phases),
    bytes_moved: Math.round(m.bytesMoved),
    write_pause_ms: m.writePauseMs ?? null,
    message: m.message ?? null,
    started_at: Date.parse(m.startedAt),
    finished_at: m.finishedAt ? Date.parse(m.finishedAt) : null,
  };
}

function fromMigrationRow(r: any): MigrationRecord {
  return {
    id: r.id,
    entityRef: r.entity_ref,
    cluster: r.cluster,
    namespace: r.namespace,
    workload: r.workload,
    pod: r.pod,
    sourceNode: r.source_node,
    ...(r.target_node ? { targetNode: r.target_node } : {}),
    reason: r.reason,
    driver: r.driver,
    phase: r.phase,
    outcome: r.outcome,
    phases: JSON.parse(r.phases),
    bytesMoved: Number(r.bytes_moved),
    ...(r.write_pause_ms !== null && r.write_pause_ms !== undefined
      ? { writePauseMs: Number(r.write_pause_ms) }
      : {}),
    ...(r.message ? { message: r.message } : {}),
    startedAt: new Date(Number(r.started_at)).toISOString(),
    ...(r.finished_at !== null && r.finished_at !== undefined
      ? { finishedAt: new Date(Number(r.finished_at)).toISOString() }
      : {}),
  };
}

function encodeCursor(cursor: { startedAt: number; id: string }): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { startedAt: number; id: string } {
  try {
    const parsed = JSON.parse(
      Buffer.from(cursor, 'base64url').toString('utf8'),
    );
    if (typeof parsed.startedAt === 'number' && typeof parsed.id === 'string') {
      return parsed;
    }
  } catch {
    // reported below
  }
  // A cursor is an opaque name of a page; one that names no page is a 404, as the
  // contract lets any cursor-shaped string through.
  throw new NotFoundError(
    'The cursor is not one this API gave out; pass the nextCursor of the previous page, or no cursor for the first page',
  );
}
