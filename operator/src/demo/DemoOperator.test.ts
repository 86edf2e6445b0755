import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { DemoClusterReport } from '@ferry/plugin-ferry-node';
import { ManualClock } from '../core/clock';
import { DemoOperator, HISTORY_REPORT_EVERY_MS, quorumOf } from './DemoOperator';
import { SPOT_POLICY_DEFAULTS, SpotPolicySpec } from '../api/v1alpha1';
import { EXAMPLE_WORKLOADS } from './exampleWorkloads';

const spec = (overrides: Partial<SpotPolicySpec> = {}): SpotPolicySpec => ({
  ...SPOT_POLICY_DEFAULTS,
  workloadRef: { kind: 'StatefulSet', name: 'cache' },
  enabled: true,
  ...overrides,
});

function demo(replicas = 5) {
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const operator = new DemoOperator({
    clock,
    reclaimEveryMinutes: 10_000,
    workloads: [
      { kind: 'StatefulSet', namespace: 'ns', name: 'cache', replicas, kubernetesId: 'cache' },
    ],
  });
  return { clock, operator };
}

describe('DemoOperator', () => {
  it('finds workloads by the Kubernetes plugin label', async () => {
    const { operator } = demo();
    expect(
      await operator.listWorkloads({ labelSelector: { 'backstage.io/kubernetes-id': 'cache' } }),
    ).toEqual([expect.objectContaining({ name: 'cache', namespace: 'ns', replicas: 5 })]);
    expect(
      await operator.listWorkloads({ labelSelector: { 'backstage.io/kubernetes-id': 'other' } }),
    ).toEqual([]);
  });

  it('keeps the permanent floor and moves the rest to spot when a workload opts in', async () => {
    const { clock, operator } = demo(5);
    await operator.applySpotPolicy('ns', 'cache', spec({ permanentRatio: 0.3 }));
    // The moves to spot are live hand-offs: a node launch, a pod start and the state copy.
    clock.advance(5 * 60 * 1000);
    operator.tick();
    const policy = (await operator.getSpotPolicy('ns', 'cache'))!;
    const replicas = policy.status!.replicas;
    expect(replicas.filter(r => r.capacityType === 'on-demand')).toHaveLength(2);
    expect(replicas.filter(r => r.capacityType === 'spot')).toHaveLength(3);
    expect(policy.status!.cost.hourlyCostUsd).toBeLessThan(
      policy.status!.cost.onDemandHourlyCostUsd,
    );
  });

  it('moves the replicas of a reclaimed node and records a migration', async () => {
    const { clock, operator } = demo(3);
    await operator.applySpotPolicy('ns', 'cache', spec());
    clock.advance(5 * 60 * 1000);
    operator.tick();
    const [node] = operator.listSpotNodesInUse();
    expect(node).toBeDefined();
    operator.reclaimNode(node);
    clock.advance(3 * 60 * 1000);
    operator.tick();
    const [migration] = await operator.listMigrations({ namespace: 'ns' });
    expect(migration.spec).toMatchObject({ sourceNode: node, reason: 'notice' });
    const policy = await operator.getSpotPolicy('ns', 'cache');
    expect(policy!.status!.replicas.map(r => r.node)).not.toContain(node);
    expect(policy!.status!.availability.readyMembers).toBeGreaterThanOrEqual(quorumOf(3));
  });

  it('accrues savings as simulated time passes', async () => {
    const { clock, operator } = demo(3);
    await operator.applySpotPolicy('ns', 'cache', spec());
    clock.advance(10 * 3_600_000);
    operator.tick();
    const policy = await operator.getSpotPolicy('ns', 'cache');
    expect(policy!.status!.cost.savingsToDateUsd).toBeGreaterThan(0);
    expect(policy!.status!.availability.observed).toBe(1);
  });

  it('reports a migration through its phases until it succeeds', async () => {
    const { clock, operator } = demo(3);
    await operator.applySpotPolicy('ns', 'cache', spec());
    clock.advance(5 * 60 * 1000);
    operator.tick();
    operator.reclaimNode(operator.listSpotNodesInUse()[0]);
    const [started] = await operator.listMigrations();
    expect(started.status!.phase).not.toBe('Succeeded');
    clock.advance(3 * 60 * 1000);
    operator.tick();
    const [done] = await operator.listMigrations();
    expect(done.status!.phase).toBe('Succeeded');
    expect(done.status!.phases.map(p => p.phase)).toEqual([
      'Planned',
      'PreparingTarget',
      'Transferring',
      'SwitchingOver',
      'Verifying',
      'CleaningUp',
    ]);
    expect(Date.parse(done.status!.completedAt!)).toBeLessThanOrEqual(Date.parse(done.spec.deadline!));
  });

  it('replays the same market and makes the same moves for the same seed', async () => {
    const run = async (seed: number) => {
      const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
      const operator = new DemoOperator({ clock, seed, workloads: EXAMPLE_WORKLOADS });
      for (const w of EXAMPLE_WORKLOADS) {
        await operator.applySpotPolicy(w.namespace, w.name, spec({ workloadRef: { kind: w.kind, name: w.name } }));
      }
      for (let hour = 0; hour < 48; hour++) {
        clock.advance(3_600_000);
        operator.tick();
      }
      return (await operator.listMigrations()).map(m => [m.spec.pod, m.spec.sourceNode, m.spec.targetNode, m.status!.phase]);
    };
    const first = await run(7);
    expect(first.length).toBeGreaterThan(0);
    expect(await run(7)).toEqual(first);
  });

  it('keeps every example workload at quorum through two days of replayed reclaims', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const operator = new DemoOperator({ clock, seed: 3, workloads: EXAMPLE_WORKLOADS });
    for (const w of EXAMPLE_WORKLOADS) {
      await operator.applySpotPolicy(w.namespace, w.name, spec({ workloadRef: { kind: w.kind, name: w.name } }));
    }
    for (let hour = 0; hour < 48; hour++) {
      clock.advance(3_600_000);
      operator.tick();
    }
    const noticed = (await operator.listMigrations()).filter(m => m.spec.reason === 'notice');
    expect(noticed.length).toBeGreaterThan(0);
    for (const policy of await operator.listSpotPolicies()) {
      expect(policy.status!.availability.observed).toBe(1);
      expect(policy.status!.cost.savingsToDateUsd).toBeGreaterThan(0);
    }
  });
});

describe('DemoOperator with a replayed month', () => {
  const NOW = Date.parse('2026-12-01T00:00:00Z');
  const DAY = 24 * 3_600_000;
  let operator: DemoOperator;
  let reports: DemoClusterReport[];

  beforeAll(() => {
    // The portal's demo: seed 14, thirty days before the clock's now.
    operator = new DemoOperator({ clock: new ManualClock(NOW), seed: 14, historyDays: 30, workloads: EXAMPLE_WORKLOADS });
    reports = [...operator.replayHistory()];
  }, 120_000);

  it('reports the month from its first hour to now, in order', () => {
    expect(reports[0].at).toBe(NOW - 30 * DAY + HISTORY_REPORT_EVERY_MS);
    expect(reports[reports.length - 1].at).toBe(NOW);
    for (let i = 1; i < reports.length; i++) expect(reports[i].at).toBeGreaterThan(reports[i - 1].at);
    // A report every hour, and more where members came and went.
    expect(reports.length).toBeGreaterThanOrEqual((30 * DAY) / HISTORY_REPORT_EVERY_MS);
  });

  it('has the services their catalog entity opts in on Ferry all month, under the policy the catalog sync writes', () => {
    const [first] = reports;
    expect(first.policies.map(p => p.metadata.name).sort()).toEqual(['job-queue', 'session-store']);
    const sessions = first.policies.find(p => p.metadata.name === 'session-store')!;
    expect(sessions.metadata.creationTimestamp).toBe(new Date(NOW - 30 * DAY).toISOString());
    expect(sessions.spec).toMatchObject({ enabled: true, permanentRatio: 0.3, availabilityTarget: 0.999, migration: 'valkey' });
    expect(sessions.metadata.annotations).toEqual({
      'ferry.dev/entity-ref': 'component:default/session-store',
      'ferry.dev/policy-source': 'catalog',
      'ferry.dev/catalog-annotations': JSON.stringify(EXAMPLE_WORKLOADS[0].entity!.annotations),
    });
  });

  it('saves money on spot over the month', () => {
    const last = reports[reports.length - 1];
    for (const policy of last.policies) {
      expect(policy.status!.replicas.filter(r => r.capacityType === 'spot')).toHaveLength(2);
      expect(policy.status!.cost.savingsToDateUsd).toBeGreaterThan(0);
      // Spot at these prices is over 40 % cheaper than the same replicas on demand.
      expect(policy.status!.cost.savingsToDateUsd).toBeGreaterThan(0.4 * policy.status!.cost.spendToDateUsd);
    }
  });

  it('moved members through the month’s reclaims, each a Migration that succeeded', async () => {
    const migrations = await operator.listMigrations();
    const notices = migrations.filter(m => m.spec.reason === 'notice');
    expect(notices.length).toBeGreaterThan(10);
    expect(notices.every(m => m.status!.phase === 'Succeeded')).toBe(true);
    const started = notices.map(m => Date.parse(m.metadata.creationTimestamp!));
    expect(Math.min(...started)).toBeGreaterThanOrEqual(NOW - 30 * DAY);
    expect(Math.max(...started)).toBeLessThanOrEqual(NOW);
    // Spread over the month, not bunched in a day.
    expect(Math.max(...started) - Math.min(...started)).toBeGreaterThan(20 * DAY);
    for (const name of ['session-store', 'job-queue']) {
      expect(notices.some(m => m.spec.workloadRef.name === name)).toBe(true);
    }
  });

  it('reports the moment a reclaim came too fast, while the quorum held', () => {
    const atRisk = reports.flatMap(r =>
      r.policies
        .filter(p => p.status!.availability.readyMembers <= p.status!.availability.requiredMembers)
        .map(p => ({ at: r.at, name: p.metadata.name, ready: p.status!.availability.readyMembers })),
    );
    expect(atRisk.length).toBeGreaterThan(0);
    expect(atRisk.every(m => m.ready === 2)).toBe(true);
    const last = reports[reports.length - 1];
    for (const policy of last.policies) expect(policy.status!.availability.observed).toBe(1);
  });

  it('runs the month once: the live demo goes on from now', async () => {
    expect([...operator.replayHistory()]).toEqual([]);
    const before = (await operator.listMigrations()).length;
    operator.tick();
    expect((await operator.listMigrations()).length).toBeGreaterThanOrEqual(before);
  });

  it('carries the annotations of the example entities in examples/entities.yaml', () => {
    const file = fs.readFileSync(path.resolve(__dirname, '../../../examples/entities.yaml'), 'utf8');
    const entities = parseAllDocuments(file).map(d => d.toJS());
    for (const seed of EXAMPLE_WORKLOADS) {
      const entity = entities.find(e => `${e.kind}:default/${e.metadata.name}`.toLowerCase() === seed.entity!.ref);
      expect(entity).toBeDefined();
      const annotations: Record<string, string> = entity.metadata.annotations;
      expect(annotations['backstage.io/kubernetes-id']).toBe(seed.kubernetesId);
      expect(Object.fromEntries(Object.entries(annotations).filter(([k]) => k.startsWith('ferry.dev/')))).toEqual(
        seed.entity!.annotations,
      );
    }
  });

  it('refuses a history the market data does not hold', () => {
    expect(() => new DemoOperator({ clock: new ManualClock(NOW), historyDays: 400, workloads: EXAMPLE_WORKLOADS })).toThrow(
      /historyDays is 400, but the market data covers \d+ days/,
    );
    expect(() => new DemoOperator({ clock: new ManualClock(NOW), historyDays: -1, workloads: EXAMPLE_WORKLOADS })).toThrow(
      /historyDays must be zero or a positive number/,
    );
  });
});
