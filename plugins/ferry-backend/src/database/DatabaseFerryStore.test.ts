import { mockServices } from '@backstage/backend-test-utils';
import type { MigrationRecord } from '@ferry/plugin-ferry-common';
import { Knex } from 'knex';
import fs from 'node:fs';
import {
  ferryTestDatabases,
  assertPostgresInCi,
} from '../__testUtils__/databases';
import { DatabaseFerryStore, WorkloadSnapshot } from './DatabaseFerryStore';

jest.setTimeout(60_000);

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 1);
const REF = 'component:default/session-store';

function migration(
  id: number,
  overrides: Partial<MigrationRecord> = {},
): MigrationRecord {
  return {
    id: `demo/payments/m-${String(id).padStart(4, '0')}`,
    entityRef: REF,
    cluster: 'demo',
    namespace: 'payments',
    workload: 'session-store',
    pod: 'session-store-1',
    sourceNode: 'node-a',
    targetNode: 'node-b',
    reason: 'notice',
    driver: 'valkey',
    phase: 'Succeeded',
    outcome: 'succeeded',
    phases: [
      { phase: 'Succeeded', startedAt: new Date(T0 + id * HOUR).toISOString() },
    ],
    bytesMoved: 1024,
    writePauseMs: 12,
    startedAt: new Date(T0 + id * HOUR).toISOString(),
    finishedAt: new Date(T0 + id * HOUR + 5000).toISOString(),
    ...overrides,
  };
}

function snapshot(overrides: Partial<WorkloadSnapshot> = {}): WorkloadSnapshot {
  return {
    entityRef: REF,
    workload: {
      cluster: 'demo',
      namespace: 'payments',
      kind: 'StatefulSet',
      name: 'session-store',
    },
    policy: {
      enabled: true,
      permanentRatio: 0.34,
      availabilityTarget: 0.999,
      migration: 'valkey',
    },
    policySource: 'catalog',
    status: { replicas: [] },
    replicas: 3,
    spotReplicas: 2,
    hourlyCostUsd: 0.2,
    onDemandHourlyCostUsd: 0.4,
    spendToDateUsd: 10,
    savingsToDateUsd: 12.5,
    availability: 0.9995,
    availabilityTarget: 0.999,
    maxInterruptionRisk: 0.01,
    migrationsTotal: 4,
    reportedAt: T0,
    ingestedAt: T0,
    ...overrides,
  };
}

describe('DatabaseFerryStore', () => {
  const databases = ferryTestDatabases();
  it('runs on a real PostgreSQL in CI', () => {
    expect(assertPostgresInCi).not.toThrow();
  });

  async function createStore(databaseId: Parameters<typeof databases.init>[0]) {
    const knex = await databases.init(databaseId);
    const store = await DatabaseFerryStore.create({
      database: mockServices.database({ knex, migrations: { skip: false } }),
    });
    return { knex, store };
  }

  describe.each(databases.eachSupportedId())('on %p', databaseId => {
    it('steps every migration up and down and up again', async () => {
      const knex: Knex = await databases.init(databaseId);
      const directory = DatabaseFerryStore.migrationsDirectory;
      const files = fs
        .readdirSync(directory)
        .filter(f => f.endsWith('.js'))
        .sort();
      expect(files.length).toBeGreaterThanOrEqual(2);
      for (const _ of files) await knex.migrate.up({ directory });
      for (const table of [
        'ferry_cost_samples',
        'ferry_migrations',
        'ferry_workloads',
        'ferry_pools',
      ]) {
        expect(await knex.schema.hasTable(table)).toBe(true);
      }
      await knex.migrate.down({ directory });
      expect(await knex.schema.hasTable('ferry_workloads')).toBe(false);
      expect(await knex.schema.hasTable('ferry_migrations')).toBe(true);
      await knex.migrate.down({ directory });
      expect(await knex.schema.hasTable('ferry_migrations')).toBe(false);
      await knex.migrate.latest({ directory });
      expect(await knex.schema.hasTable('ferry_workloads')).toBe(true);
    });

    it('keeps the latest snapshot of each workload and forgets those no longer reported', async () => {
      const { store } = await createStore(databaseId);
      await store.upsertWorkloads([
        snapshot(),
        snapshot({ entityRef: 'component:default/job-queue' }),
      ]);
      await store.upsertWorkloads([
        snapshot({ spendToDateUsd: 11, reportedAt: T0 + HOUR }),
      ]);
      const stored = await store.getWorkload(REF);
      expect(stored).toMatchObject({
        spendToDateUsd: 11,
        reportedAt: T0 + HOUR,
        status: { replicas: [] },
      });
      expect(await store.listWorkloads()).toHaveLength(2);
      expect(await store.removeWorkloadsExcept('demo', [REF])).toBe(1);
      expect((await store.listWorkloads()).map(w => w.entityRef)).toEqual([
        REF,
      ]);
    });

    it('adds samples to their hour, and sums them per bucket', async () => {
      const { store } = await createStore(databaseId);
      const cost = Array.from({ length: 48 }, (_, i) => ({
        entityRef: REF,
        sampledAt: T0 + i * HOUR,
        coversMs: HOUR,
        spotUsd: 0.1,
        permanentUsd: 0.05,
        onDemandUsd: 0.4,
      }));
      const availability = cost.map((c, i) => ({
        entityRef: REF,
        sampledAt: c.sampledAt,
        coversMs: HOUR,
        quorumMs: i === 5 ? 0 : HOUR,
        readyMembers: i === 5 ? 1 : 3,
        requiredMembers: 2,
      }));
      // Two reports in each hour, the second with the same figures.
      await store.recordReports([snapshot()], cost, availability);
      await store.addSamples(cost, availability);
      const days = await store.costBuckets(REF, T0, T0 + 48 * HOUR, 24 * HOUR);
      expect(days).toHaveLength(2);
      expect(days[0].bucketStart).toBe(T0);
      expect(days[0].spotUsd).toBeCloseTo(4.8);
      expect(days[0].onDemandUsd).toBeCloseTo(19.2);
      const hours = await store.availabilityBuckets(
        REF,
        T0,
        T0 + 24 * HOUR,
        HOUR,
      );
      expect(hours).toHaveLength(24);
      expect(hours[5]).toEqual({
        bucketStart: T0 + 5 * HOUR,
        coversMs: 2 * HOUR,
        quorumMs: 0,
        minReadyMembers: 1,
        requiredMembers: 2,
      });
      expect(hours[4]).toMatchObject({
        coversMs: 2 * HOUR,
        quorumMs: 2 * HOUR,
        minReadyMembers: 3,
      });
      expect(await store.getWorkload(REF)).toBeDefined();
      expect(await store.atRiskMoments(REF, T0, T0 + 48 * HOUR, 10)).toEqual([
        { time: T0 + 5 * HOUR, readyMembers: 1, requiredMembers: 2 },
      ]);
    });

    it('pages migrations newest first, filtered, and updates one as it progresses', async () => {
      const { store } = await createStore(databaseId);
      await store.upsertMigrations(
        Array.from({ length: 25 }, (_, i) =>
          migration(
            i,
            i % 5 === 0 ? { reason: 'rebalance', driver: 'checkpoint' } : {},
          ),
        ),
      );
      await store.upsertMigrations([
        migration(24, { phase: 'Failed', outcome: 'failed' }),
      ]);
      const first = await store.listMigrations(REF, { limit: 10 });
      expect(first.totalCount).toBe(25);
      expect(first.items.map(m => m.id)[0]).toBe('demo/payments/m-0024');
      expect(first.items[0].outcome).toBe('failed');
      const second = await store.listMigrations(REF, {
        limit: 10,
        cursor: first.nextCursor,
      });
      const third = await store.listMigrations(REF, {
        limit: 10,
        cursor: second.nextCursor,
      });
      expect(third.items).toHaveLength(5);
      expect(third.nextCursor).toBeUndefined();
      const ids = [...first.items, ...second.items, ...third.items].map(
        m => m.id,
      );
      expect(new Set(ids).size).toBe(25);
      const rebalances = await store.listMigrations(REF, {
        limit: 50,
        reason: 'rebalance',
        driver: 'checkpoint',
      });
      expect(rebalances.totalCount).toBe(5);
      expect(
        await store.listMigrations(REF, { limit: 50, outcome: 'failed' }),
      ).toMatchObject({ totalCount: 1 });
      expect(
        (await store.countMigrations([REF, 'component:default/none'])).get(REF),
      ).toBe(25);
      await expect(
        store.listMigrations(REF, { limit: 5, cursor: 'garbage' }),
      ).rejects.toThrow(/cursor is not one this API gave out/);
    });

    it('records policy changes with who, when, from where, before and after', async () => {
      const { store } = await createStore(databaseId);
      const after = {
        enabled: true,
        permanentRatio: 0.5,
        availabilityTarget: 0.999,
        migration: 'auto' as const,
      };
      await store.recordPolicyChange({
        entityRef: REF,
        source: 'catalog',
        changedBy: 'plugin:ferry/catalog-sync',
        changedAt: T0,
        after,
      });
      await store.recordPolicyChange({
        entityRef: REF,
        source: 'portal',
        changedBy: 'user:default/guest',
        changedAt: T0 + HOUR,
        before: after,
        after: { ...after, enabled: false },
      });
      const changes = await store.listPolicyChanges(REF, 10);
      expect(changes).toHaveLength(2);
      expect(changes[0]).toMatchObject({
        source: 'portal',
        changedBy: 'user:default/guest',
        changedAt: new Date(T0 + HOUR).toISOString(),
        before: after,
        after: { ...after, enabled: false },
      });
      expect(changes[1].before).toBeUndefined();
    });

    it('deletes samples and migrations past the retention and keeps policy changes', async () => {
      const { store } = await createStore(databaseId);
      await store.addSamples(
        [
          {
            entityRef: REF,
            sampledAt: T0,
            coversMs: HOUR,
            spotUsd: 1,
            permanentUsd: 1,
            onDemandUsd: 3,
          },
          {
            entityRef: REF,
            sampledAt: T0 + 10 * HOUR,
            coversMs: HOUR,
            spotUsd: 1,
            permanentUsd: 1,
            onDemandUsd: 3,
          },
        ],
        [
          {
            entityRef: REF,
            sampledAt: T0,
            coversMs: HOUR,
            quorumMs: HOUR,
            readyMembers: 3,
            requiredMembers: 2,
          },
        ],
      );
      await store.upsertMigrations([migration(0), migration(20)]);
      await store.recordPolicyChange({
        entityRef: REF,
        source: 'api',
        changedBy: 'plugin:x',
        changedAt: T0,
        after: {
          enabled: true,
          permanentRatio: 0.3,
          availabilityTarget: 0.99,
          migration: 'auto',
        },
      });
      expect(await store.deleteHistoryBefore(T0 + 5 * HOUR)).toBe(3);
      expect(
        await store.costBuckets(REF, 0, T0 + 100 * HOUR, HOUR),
      ).toHaveLength(1);
      expect((await store.listMigrations(REF, { limit: 10 })).totalCount).toBe(
        1,
      );
      expect(await store.listPolicyChanges(REF, 10)).toHaveLength(1);
    });

    it('lists the riskiest pools, those running replicas first', async () => {
      const { store } = await createStore(databaseId);
      const pool = {
        cluster: 'demo',
        spotPriceUsdPerHour: 0.04,
        onDemandPriceUsdPerHour: 0.1,
      };
      await store.replacePools(
        'demo',
        [
          {
            ...pool,
            zone: 'a',
            instanceType: 'm5.large',
            interruptionRisk: 0.9,
            replicas: 0,
          },
          {
            ...pool,
            zone: 'b',
            instanceType: 'm5.large',
            interruptionRisk: 0.2,
            replicas: 1,
          },
          {
            ...pool,
            zone: 'c',
            instanceType: 'm5.large',
            interruptionRisk: 0.5,
            replicas: 2,
          },
        ],
        T0,
      );
      await store.replacePools(
        'demo',
        [
          {
            ...pool,
            zone: 'a',
            instanceType: 'm5.large',
            interruptionRisk: 0.9,
            replicas: 0,
          },
          {
            ...pool,
            zone: 'b',
            instanceType: 'm5.large',
            interruptionRisk: 0.2,
            replicas: 1,
          },
          {
            ...pool,
            zone: 'c',
            instanceType: 'm5.large',
            interruptionRisk: 0.5,
            replicas: 2,
          },
        ],
        T0 + HOUR,
      );
      expect((await store.riskiestPools(2)).map(p => p.zone)).toEqual([
        'c',
        'b',
      ]);
    });
  });
});
