import type { CompoundEntityRef } from '@backstage/catalog-model';
import type {
  AvailabilitySeries,
  CostPoint,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  HealthStatus,
  MigrationPage,
  MigrationReason,
  MigrationRecord,
  PolicyUpdate,
  PolicyView,
} from '@ferry/plugin-ferry-common';
import { applyPolicyUpdate } from '@ferry/plugin-ferry-common';
import type { FerryApi, MigrationQuery, TimeRange } from '../src/api';
import {
  entityStatus,
  fleetSummary,
  policyView,
  sessionsEntity,
} from './sampleService';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Ranges up to this long come in hourly buckets, like the backend's. */
const HOURLY_UP_TO_MS = 7 * DAY;

/** A small deterministic generator, so every start shows the same history. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A Ferry API over a year of made-up history for one service, for the dev
 * harness and the UI benchmark: no backend needed.
 */
export class FakeFerryApi implements FerryApi {
  private status: EntitySpotStatus;
  private view: PolicyView;
  private readonly migrations: MigrationRecord[];
  private readonly now = Date.now();

  constructor(options: { readOnly?: boolean } = {}) {
    this.status = {
      ...entityStatus,
      updatedAt: new Date(this.now).toISOString(),
    };
    this.view = {
      ...policyView,
      canUpdate: !options.readOnly,
      readOnlyReason: options.readOnly
        ? `Only the owners of ${policyView.entityRef} (${sessionsEntity.spec?.owner}) may change its policy.`
        : undefined,
    };
    const rnd = random(7);
    const reasons: MigrationReason[] = [
      'notice',
      'recommendation',
      'prediction',
      'drain',
    ];
    this.migrations = Array.from({ length: 140 }, (_, i) => {
      const started = this.now - (i + 0.3) * 2.6 * DAY;
      const sync = 20_000 + rnd() * 60_000;
      const pause = 300 + rnd() * 900;
      const failed = i % 37 === 5;
      return {
        id: `mig-${i}`,
        entityRef: this.status.entityRef,
        cluster: 'demo',
        namespace: 'shop',
        workload: 'sessions',
        pod: `sessions-${1 + (i % 2)}`,
        sourceNode: `ip-10-0-${2 + (i % 2)}-${10 + i}`,
        targetNode: `ip-10-0-${2 + ((i + 1) % 2)}-${11 + i}`,
        reason: reasons[i % reasons.length],
        driver: i % 9 === 4 ? 'checkpoint' : 'valkey',
        phase: failed ? 'rolled-back' : 'done',
        outcome: failed ? 'rolled-back' : 'succeeded',
        phases: [
          {
            phase: 'prepare',
            startedAt: new Date(started).toISOString(),
            durationMs: 2_000,
          },
          {
            phase: 'sync',
            startedAt: new Date(started + 2_000).toISOString(),
            durationMs: sync,
          },
          {
            phase: 'switch',
            startedAt: new Date(started + 2_000 + sync).toISOString(),
            durationMs: pause,
          },
        ],
        bytesMoved: Math.round((0.5 + rnd() * 2) * 1024 ** 3),
        writePauseMs: Math.round(pause),
        message: failed
          ? 'Target node was reclaimed during sync; the source member kept serving.'
          : undefined,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(started + 2_000 + sync + pause).toISOString(),
      };
    });
    this.status.migrationsTotal = this.migrations.length;
  }

  async getStatus(_entity: CompoundEntityRef): Promise<EntitySpotStatus> {
    return this.status;
  }

  async getCost(
    _entity: CompoundEntityRef,
    range: TimeRange,
  ): Promise<CostSeries> {
    const { bucket, times } = buckets(range);
    const hours = bucket === 'day' ? 24 : 1;
    const rnd = random(11);
    const points: CostPoint[] = times.map(t => {
      const spot = (0.079 + (rnd() - 0.5) * 0.02) * hours;
      return {
        time: new Date(t).toISOString(),
        spotUsd: spot,
        permanentUsd: 0.107 * hours,
        onDemandUsd: 0.321 * hours,
      };
    });
    const totalUsd = sum(points.map(p => p.spotUsd + p.permanentUsd));
    const onDemandUsd = sum(points.map(p => p.onDemandUsd));
    return {
      entityRef: this.status.entityRef,
      ...range,
      bucket,
      points,
      totalUsd,
      onDemandUsd,
      savingsUsd: onDemandUsd - totalUsd,
    };
  }

  async getAvailability(
    _entity: CompoundEntityRef,
    range: TimeRange,
  ): Promise<AvailabilitySeries> {
    const { bucket, times } = buckets(range);
    const rnd = random(13);
    const points = times.map(t => {
      const dip = rnd() < 0.04;
      return {
        time: new Date(t).toISOString(),
        availability: dip ? 0.9985 + rnd() * 0.0014 : 1,
        minReadyMembers: dip ? 2 : 3,
        requiredMembers: 2,
      };
    });
    const atRisk = points
      .filter(p => p.minReadyMembers <= p.requiredMembers)
      .map(p => ({
        time: p.time,
        readyMembers: p.minReadyMembers,
        requiredMembers: p.requiredMembers,
      }));
    const observed = points.length
      ? sum(points.map(p => p.availability)) / points.length
      : 1;
    return {
      entityRef: this.status.entityRef,
      ...range,
      bucket,
      target: 0.999,
      observed,
      errorBudgetRemaining: 1 - (1 - observed) / (1 - 0.999),
      points,
      atRisk,
    };
  }

  async getMigrations(
    _entity: CompoundEntityRef,
    query: MigrationQuery = {},
  ): Promise<MigrationPage> {
    const matching = this.migrations.filter(
      m =>
        (!query.reason || m.reason === query.reason) &&
        (!query.driver || m.driver === query.driver) &&
        (!query.outcome || m.outcome === query.outcome),
    );
    const start = query.cursor ? Number(query.cursor) : 0;
    const limit = query.limit ?? 20;
    const end = start + limit;
    return {
      items: matching.slice(start, end),
      totalCount: matching.length,
      nextCursor: end < matching.length ? String(end) : undefined,
    };
  }

  async getPolicy(_entity: CompoundEntityRef): Promise<PolicyView> {
    return this.view;
  }

  async updatePolicy(
    _entity: CompoundEntityRef,
    update: PolicyUpdate,
  ): Promise<PolicyView> {
    const before = this.view.policy;
    const after = applyPolicyUpdate(before, update);
    this.view = {
      ...this.view,
      policy: after,
      source: 'portal',
      history: [
        {
          id: `chg-${this.view.history.length}`,
          entityRef: this.view.entityRef,
          source: 'portal',
          changedBy: 'user:default/guest',
          changedAt: new Date().toISOString(),
          before,
          after,
        },
        ...this.view.history,
      ],
    };
    this.status = { ...this.status, policy: after, policySource: 'portal' };
    return this.view;
  }

  async getFleet(): Promise<FleetSummary> {
    // The sample fleet, with the sample service as this API has it now.
    const s = this.status;
    const services = fleetSummary.services.map(service =>
      service.entityRef === s.entityRef
        ? {
            ...service,
            enabled: s.policy.enabled,
            migrationsTotal: s.migrationsTotal,
          }
        : service,
    );
    return {
      ...fleetSummary,
      services,
      updatedAt: new Date(this.now).toISOString(),
    };
  }

  async getHealth(): Promise<HealthStatus> {
    return {
      status: 'ok',
      mode: 'demo',
      clusters: [{ name: 'demo', reachable: true }],
    };
  }
}

function buckets(range: TimeRange): {
  bucket: 'hour' | 'day';
  times: number[];
} {
  const from = Date.parse(range.from);
  const to = Date.parse(range.to);
  const bucket = to - from <= HOURLY_UP_TO_MS ? 'hour' : 'day';
  const step = bucket === 'hour' ? HOUR : DAY;
  const times: number[] = [];
  for (let t = Math.floor(from / step) * step; t < to; t += step) times.push(t);
  return { bucket, times };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
