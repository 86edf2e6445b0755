import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import {
  DatabaseFerryStore,
  WorkloadSnapshot,
} from '../../database/DatabaseFerryStore';
import { RESPONSE_CACHE_MS, SpotReports } from './SpotReports';
import { parseTimeRange } from './timeRange';

const snapshot = (entityRef: string, savings: number): WorkloadSnapshot => ({
  entityRef,
  workload: {
    cluster: 'demo',
    namespace: 'ns',
    kind: 'StatefulSet',
    name: entityRef.split('/')[1],
  },
  policy: {
    enabled: true,
    permanentRatio: 0.3,
    availabilityTarget: 0.999,
    migration: 'auto',
  },
  policySource: 'catalog',
  replicas: 3,
  spotReplicas: 2,
  hourlyCostUsd: 0.1,
  onDemandHourlyCostUsd: 0.3,
  spendToDateUsd: 1,
  savingsToDateUsd: savings,
  availability: 1,
  availabilityTarget: 0.999,
  maxInterruptionRisk: 0.01,
  migrationsTotal: 0,
  reportedAt: 1,
  ingestedAt: 1,
});

describe('SpotReports', () => {
  const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

  it('serves the fleet from memory, rebuilt at once after a write of its own', async () => {
    const knex = await databases.init('SQLITE_3');
    const store = await DatabaseFerryStore.create({
      database: mockServices.database({ knex }),
    });
    let now = 0;
    const reports = new SpotReports(store, () => now);
    await store.upsertWorkloads([snapshot('component:default/a', 1)]);
    const first = JSON.parse((await reports.fleetBody()).body.toString());
    expect(first.totals).toMatchObject({ services: 1, savingsToDateUsd: 1 });

    // A write by another instance is not seen until the cache is old…
    await knex('ferry_workloads').update({ savings_to_date_usd: 5 });
    expect(
      JSON.parse((await reports.fleetBody()).body.toString()).totals
        .savingsToDateUsd,
    ).toBe(1);
    // …then the stale copy is served once while it is rebuilt.
    now += RESPONSE_CACHE_MS;
    expect(
      JSON.parse((await reports.fleetBody()).body.toString()).totals
        .savingsToDateUsd,
    ).toBe(1);
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(
      JSON.parse((await reports.fleetBody()).body.toString()).totals
        .savingsToDateUsd,
    ).toBe(5);

    // A write through this process is seen at once.
    await store.upsertWorkloads([snapshot('component:default/b', 2)]);
    expect(
      JSON.parse((await reports.fleetBody()).body.toString()).totals,
    ).toMatchObject({
      services: 2,
      savingsToDateUsd: 7,
    });
  });
});

describe('parseTimeRange', () => {
  const DAY = 86_400_000;
  it('defaults to the 7 days up to now, or up to the latest report when that is later', () => {
    const range = parseTimeRange({}, Date.now() + 3 * DAY);
    expect(range.to).toBeGreaterThan(Date.now() + 3 * DAY - 1000);
    expect(range.to - range.from).toBe(7 * DAY);
    expect(range.bucket).toBe('hour');
  });
  it('reads dates, and times with their offset', () => {
    expect(
      parseTimeRange({ from: '2028-02-29', to: '2028-03-01T01:30+01:00' }),
    ).toMatchObject({
      from: Date.UTC(2028, 1, 29),
      to: Date.UTC(2028, 2, 1, 0, 30),
    });
  });
  it('picks daily buckets beyond 14 days', () => {
    expect(
      parseTimeRange({
        from: '2026-01-01T00:00:00Z',
        to: '2026-03-01T00:00:00Z',
      }).bucket,
    ).toBe('day');
  });
  it.each([
    [{ from: 'last week' }, /use an ISO-8601 date such as 2026-11-01/],
    [{ from: '2026-12-01junk' }, /use an ISO-8601 date/],
    [{ from: '2026-02-30' }, /a day that 2026-02 does not have/],
    [{ from: '2028-02-30T00:00:00Z' }, /a day that 2028-02 does not have/],
    [{ to: '2026-11-01T12:60:00Z' }, /a time of day that does not exist/],
    [{ to: '2026-11-01T12:00:00+24:00' }, /an offset that does not exist/],
    [
      { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
      /must be before/,
    ],
    [
      { from: '2020-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
      /longer than 400 days/,
    ],
    [
      {
        from: '2025-01-01T00:00:00Z',
        to: '2026-01-01T00:00:00Z',
        bucket: 'hour',
      },
      /use bucket=day/,
    ],
  ])('rejects %p', (query, message) => {
    expect(() => parseTimeRange(query)).toThrow(message);
  });
});
