import { ManualClock } from '../core/clock';
import { DemoOperator, quorumOf } from './DemoOperator';
import { SPOT_POLICY_DEFAULTS, SpotPolicySpec } from '../api/v1alpha1';

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
});
