import { mockServices } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';
import { DemoOperator, EXAMPLE_WORKLOADS, ManualClock } from '@ferry/operator';
import {
  assertPostgresInCi,
  ferryTestDatabases,
} from '../../__testUtils__/databases';
import { component } from '../../__testUtils__/fixtures';
import { DatabaseFerryStore } from '../../database/DatabaseFerryStore';
import { ClusterRegistry } from '../Clusters/ClusterRegistry';
import { HistoryIngestion } from '../HistoryIngestion/HistoryIngestion';
import { WorkloadLocator } from '../WorkloadLocator/WorkloadLocator';
import { CATALOG_SYNC_ACTOR, PolicyService } from './PolicyService';

jest.setTimeout(60_000);

const REF = 'component:default/job-queue';
const annotations = {
  'backstage.io/kubernetes-id': 'job-queue',
  'backstage.io/kubernetes-namespace': 'jobs',
  'ferry.dev/spot': 'enabled',
  'ferry.dev/permanent-ratio': '0.3',
  'ferry.dev/migration': 'checkpoint',
};
const guest = { changedBy: 'user:default/guest', source: 'portal' as const };

describe('PolicyService', () => {
  const databases = ferryTestDatabases();
  it('runs on a real PostgreSQL in CI', () => {
    expect(assertPostgresInCi).not.toThrow();
  });

  describe.each(databases.eachSupportedId())('on %p', databaseId => {
    async function setUp() {
      const knex = await databases.init(databaseId);
      const store = await DatabaseFerryStore.create({
        database: mockServices.database({ knex }),
      });
      const clock = new ManualClock(Date.UTC(2026, 10, 22));
      const demo = new DemoOperator({
        workloads: EXAMPLE_WORKLOADS,
        clock,
        seed: 3,
      });
      const clusters = new ClusterRegistry(
        [{ name: 'demo', client: demo }],
        demo,
      );
      const logger = mockServices.logger.mock();
      const ingestion = new HistoryIngestion(clusters, store, logger, 400, () =>
        clock.now(),
      );
      const policies = new PolicyService(
        clusters,
        new WorkloadLocator(clusters),
        store,
        ingestion,
        logger,
      );
      return { store, demo, clock, clusters, ingestion, policies };
    }
    const entity = (overrides: Record<string, string> = {}): Entity =>
      component('job-queue', 'platform-team', { ...annotations, ...overrides });

    it('creates the SpotPolicy from the annotations once, and records it', async () => {
      const { policies, store, demo } = await setUp();
      expect(await policies.syncFromCatalog(entity())).toBe('created');
      expect(await policies.syncFromCatalog(entity())).toBe('unchanged');
      const policy = await demo.getSpotPolicy('jobs', 'job-queue');
      expect(policy?.spec).toMatchObject({
        enabled: true,
        permanentRatio: 0.3,
        availabilityTarget: 0.999,
        migration: 'checkpoint',
      });
      expect(policy?.metadata.annotations).toMatchObject({
        'ferry.dev/entity-ref': REF,
        'ferry.dev/policy-source': 'catalog',
      });
      const changes = await store.listPolicyChanges(REF, 10);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({
        source: 'catalog',
        changedBy: CATALOG_SYNC_ACTOR,
      });
      expect(changes[0].before).toBeUndefined();
      expect((await store.getWorkload(REF))?.workload).toEqual({
        cluster: 'demo',
        namespace: 'jobs',
        kind: 'StatefulSet',
        name: 'job-queue',
      });
    });

    it('keeps a portal change until the annotation of that field changes', async () => {
      const { policies, demo, store } = await setUp();
      await policies.syncFromCatalog(entity());
      await policies.update(entity(), { permanentRatio: 0.6 }, guest);
      // The sync sees the same annotations: the portal's ratio stays.
      expect(await policies.syncFromCatalog(entity())).toBe('unchanged');
      expect(
        (await demo.getSpotPolicy('jobs', 'job-queue'))?.spec.permanentRatio,
      ).toBe(0.6);
      // Another field's annotation changes: only that field follows the catalog.
      expect(
        await policies.syncFromCatalog(
          entity({ 'ferry.dev/migration': 'valkey' }),
        ),
      ).toBe('updated');
      let spec = (await demo.getSpotPolicy('jobs', 'job-queue'))!.spec;
      expect(spec).toMatchObject({ permanentRatio: 0.6, migration: 'valkey' });
      // The ratio's annotation changes: the catalog wins again for that field.
      await policies.syncFromCatalog(
        entity({
          'ferry.dev/migration': 'valkey',
          'ferry.dev/permanent-ratio': '0.4',
        }),
      );
      spec = (await demo.getSpotPolicy('jobs', 'job-queue'))!.spec;
      expect(spec).toMatchObject({ permanentRatio: 0.4, migration: 'valkey' });
      const sources = (await store.listPolicyChanges(REF, 10)).map(
        c => `${c.source}:${c.after.permanentRatio}`,
      );
      expect(sources).toEqual([
        'catalog:0.4',
        'catalog:0.6',
        'portal:0.6',
        'catalog:0.3',
      ]);
    });

    it('lets an owner opt in from the portal, starting from what the annotations say', async () => {
      const { policies, demo } = await setUp();
      const unannotated = component('agent-memory', 'data-team', {
        'backstage.io/kubernetes-id': 'agent-memory',
        'ferry.dev/permanent-ratio': '0.5',
      });
      // Only ferry.dev/spot creates a policy.
      expect(await policies.syncFromCatalog(unannotated)).toBe('skipped');
      await policies.update(unannotated, { enabled: true }, guest);
      expect(
        (await demo.getSpotPolicy('assistants', 'agent-memory'))?.spec,
      ).toMatchObject({ enabled: true, permanentRatio: 0.5 });
      // The annotation the portal started from does not count as a change later.
      expect(await policies.syncFromCatalog(unannotated)).toBe('unchanged');
    });

    it('ignores a malformed annotation and applies the others', async () => {
      const { policies, demo } = await setUp();
      await policies.syncFromCatalog(
        entity({ 'ferry.dev/permanent-ratio': 'most' }),
      );
      expect(
        (await demo.getSpotPolicy('jobs', 'job-queue'))?.spec.permanentRatio,
      ).toBe(0.3);
      // Fixing it counts as a change.
      await policies.syncFromCatalog(
        entity({ 'ferry.dev/permanent-ratio': '0.5' }),
      );
      expect(
        (await demo.getSpotPolicy('jobs', 'job-queue'))?.spec.permanentRatio,
      ).toBe(0.5);
    });

    it('applies ferry.dev/hibernate-after, and the portal sets and clears hibernateAfter, keeping the fields it does not edit', async () => {
      const { policies, demo, store } = await setUp();
      await policies.syncFromCatalog(
        entity({ 'ferry.dev/hibernate-after': '10m' }),
      );
      const created = (await demo.getSpotPolicy('jobs', 'job-queue'))!;
      expect(created.spec.hibernateAfter).toBe('10m');
      // Set outside the portal (kubectl, the chart): no portal write may drop it.
      const valkey = {
        authSecretRef: { name: 'job-queue-auth', passwordKey: 'password' },
      };
      await demo.applySpotPolicy('jobs', 'job-queue', {
        ...created.spec,
        valkey,
      });
      const specNow = async () =>
        (await demo.getSpotPolicy('jobs', 'job-queue'))!.spec;

      await policies.update(entity(), { hibernateAfter: '30m' }, guest);
      expect(await specNow()).toMatchObject({ hibernateAfter: '30m', valkey });
      await policies.update(entity(), { permanentRatio: 0.5 }, guest);
      expect(await specNow()).toMatchObject({
        permanentRatio: 0.5,
        hibernateAfter: '30m',
        valkey,
      });
      await policies.update(entity(), { hibernateAfter: null }, guest);
      const cleared = await specNow();
      expect(cleared.hibernateAfter).toBeUndefined();
      expect(cleared.valkey).toEqual(valkey);
      await expect(
        policies.update(entity(), { hibernateAfter: '1s' }, guest),
      ).rejects.toThrow(
        /hibernateAfter is '1s'; it must be between 5s and 168h/,
      );
      const changes = (await store.listPolicyChanges(REF, 10)).map(
        c => c.after.hibernateAfter ?? 'off',
      );
      expect(changes).toEqual(['off', '30m', '30m', '10m']);
    });

    it('shows in the policy view where each member is in hibernation and why one may not sleep', async () => {
      const { policies, demo } = await setUp();
      await policies.syncFromCatalog(
        entity({ 'ferry.dev/hibernate-after': '10m' }),
      );
      const policy = (await demo.getSpotPolicy('jobs', 'job-queue'))!;
      const refusal =
        'it keeps 2 connections of its own open to other services (10.0.0.7:5432), which would time out while it sleeps';
      jest.spyOn(demo, 'getSpotPolicy').mockResolvedValue({
        ...policy,
        status: {
          ...policy.status!,
          hibernation: [
            { pod: 'job-queue-0', phase: 'SCALED_DOWN' },
            { pod: 'job-queue-1', phase: 'RUNNING', refusal },
          ],
        },
      });
      const view = await policies.view(entity(), { canUpdate: true });
      expect(view.policy.hibernateAfter).toBe('10m');
      expect(view.hibernation).toEqual([
        { pod: 'job-queue-0', phase: 'SCALED_DOWN' },
        { pod: 'job-queue-1', phase: 'RUNNING', refusal },
      ]);
    });

    it('records nothing when a change changes nothing', async () => {
      const { policies, store } = await setUp();
      await policies.syncFromCatalog(entity());
      await policies.update(entity(), { permanentRatio: 0.3 }, guest);
      expect(await store.listPolicyChanges(REF, 10)).toHaveLength(1);
    });

    it('ingests samples and migrations without counting anything twice', async () => {
      const { policies, store, ingestion, clusters, clock, demo } =
        await setUp();
      await policies.syncFromCatalog(entity());
      for (let i = 0; i < 6; i++) {
        clock.advance(10 * 60_000);
        demo.tick();
        await ingestion.ingestAll();
        await ingestion.ingestAll();
      }
      const spot = demo.listSpotNodesInUse();
      if (spot.length > 0) demo.reclaimNode(spot[0]);
      clock.advance(10 * 60_000);
      demo.tick();
      await ingestion.ingestCluster(clusters.get('demo'));
      await ingestion.ingestCluster(clusters.get('demo'));
      const snapshot = (await store.getWorkload(REF))!;
      const cost = await store.costBuckets(
        REF,
        0,
        snapshot.reportedAt + 1,
        3_600_000,
      );
      const total = cost.reduce((a, b) => a + b.spotUsd + b.permanentUsd, 0);
      // The samples add up to what the operator says was spent since the first report.
      const first = Date.UTC(2026, 10, 22);
      expect(snapshot.reportedAt).toBeGreaterThan(first);
      expect(total).toBeGreaterThan(0);
      expect(total).toBeLessThanOrEqual(snapshot.spendToDateUsd + 1e-9);
      const availability = await store.availabilityBuckets(
        REF,
        0,
        snapshot.reportedAt + 1,
        3_600_000,
      );
      expect(availability.reduce((a, b) => a + b.coversMs, 0)).toBe(
        snapshot.reportedAt - (snapshot.reportedAt - 70 * 60_000),
      );
      const migrations = await store.listMigrations(REF, { limit: 500 });
      const operatorMigrations = (
        await demo.listMigrations({ namespace: 'jobs' })
      ).length;
      expect(migrations.totalCount).toBe(operatorMigrations);
    });
  });
});
