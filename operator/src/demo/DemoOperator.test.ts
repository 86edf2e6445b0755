import { ManualClock } from '../core/clock';
import { DemoOperator, quorumOf } from './DemoOperator';
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
