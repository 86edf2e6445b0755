import fc from 'fast-check';
import { CapacityPool, poolIdOf } from './model';
import { planPlacement, PlacementPlan } from './placement';
import { isLoneMember, maxMembersPerFailureDomain, permanentFloor, quorumOf } from './quorum';
import { arbitraryMarket, ClusterFixture, node, pool, workload } from './__testUtils__/cluster';

function placeAll(cluster: ClusterFixture, w: ReturnType<typeof workload>, pools: CapacityPool[]): PlacementPlan {
  const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
  for (const a of plan.assignments) {
    if (a.moves) cluster.move(w.members.find(m => m.pod === a.pod)!, a.target);
  }
  return plan;
}

function capacityTypeOf(cluster: ClusterFixture, nodeName: string) {
  return cluster.nodes.get(nodeName)!;
}

const arbitraryWorkload = fc.record({
  replicas: fc.integer({ min: 1, max: 9 }),
  ratio: fc.double({ min: 0, max: 1, noNaN: true }),
});

describe('planPlacement', () => {
  it('keeps the permanent floor, and spot members spread so no pool or zone loss breaks quorum', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, (pools, { replicas, ratio }) => {
        const cluster = new ClusterFixture();
        const w = workload('ns/db', replicas, { permanentRatio: ratio });
        placeAll(cluster, w, pools);
        const placed = w.members.map(m => capacityTypeOf(cluster, m.node!));
        const permanent = placed.filter(n => n.capacityType === 'on-demand').length;
        expect(permanent).toBeGreaterThanOrEqual(permanentFloor(replicas, ratio));
        const spot = placed.filter(n => n.capacityType === 'spot');
        // A lone member has no quorum to keep; a live move keeps it (isLoneMember).
        const quorum = isLoneMember(replicas) ? 0 : quorumOf(replicas);
        for (const lost of new Set(spot.map(n => poolIdOf(n)))) {
          expect(replicas - spot.filter(n => poolIdOf(n) === lost).length).toBeGreaterThanOrEqual(quorum);
        }
        for (const zone of new Set(spot.map(n => n.zone))) {
          expect(replicas - spot.filter(n => n.zone === zone).length).toBeGreaterThanOrEqual(quorum);
        }
        // One member per node: a node loss is never more than one member.
        expect(new Set(w.members.map(m => m.node)).size).toBe(replicas);
      }),
    );
  });

  it('never books a node beyond its capacity, across several workloads', () => {
    fc.assert(
      fc.property(arbitraryMarket, fc.array(arbitraryWorkload, { minLength: 1, maxLength: 6 }), (pools, specs) => {
        const cluster = new ClusterFixture();
        specs.forEach((s, i) => placeAll(cluster, workload(`ns/w${i}`, s.replicas, { permanentRatio: s.ratio }), pools));
        for (const n of cluster.nodes.values()) {
          expect(n.free.cpuMillis).toBeGreaterThanOrEqual(0);
          expect(n.free.memoryMiB).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });

  it('moves nothing when planned again on its own result (minimal churn)', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, (pools, { replicas, ratio }) => {
        const cluster = new ClusterFixture();
        const w = workload('ns/db', replicas, { permanentRatio: ratio });
        placeAll(cluster, w, pools);
        const again = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
        expect(again.assignments.filter(a => a.moves)).toEqual([]);
      }),
    );
  });

  it('is deterministic: the same picture gives the same plan', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, (pools, { replicas, ratio }) => {
        const plan = () => planPlacement({ workload: workload('ns/db', replicas, { permanentRatio: ratio }), nodes: [], pools });
        expect(plan()).toEqual(plan());
      }),
    );
  });

  it('puts ceil(0.3·5) = 2 members of five on permanent nodes and three on spot', () => {
    const pools = [
      ...['a', 'b', 'c'].map(z => pool('r5.large', z, 'spot', 0.04)),
      ...['a', 'b', 'c'].map(z => pool('m5.large', z, 'on-demand', 0.096)),
    ];
    const plan = planPlacement({ workload: workload('ns/db', 5), nodes: [], pools });
    expect(plan.assignments.filter(a => a.target.capacityType === 'on-demand')).toHaveLength(2);
    expect(plan.assignments.filter(a => a.target.capacityType === 'spot')).toHaveLength(3);
    expect(plan.maxPerFailureDomain).toBe(maxMembersPerFailureDomain(5));
  });

  it('prefers a cheap pool, but not one whose risk outweighs its price', () => {
    const pools = [
      pool('cheap.large', 'a', 'spot', 0.03, { interruptionRisk: 0.2 }),
      pool('safe.large', 'a', 'spot', 0.04, { interruptionRisk: 0.001 }),
      pool('od.large', 'a', 'on-demand', 0.1),
    ];
    // Three replicas: one permanent, two spot, at most one spot per zone.
    const plan = planPlacement({ workload: workload('ns/db', 3), nodes: [], pools });
    const spot = plan.assignments.filter(a => a.target.capacityType === 'spot');
    expect(spot.map(a => a.target.pool.instanceType)).toEqual(['safe.large']);
    expect(plan.spotFallbacks).toBe(1);
  });

  it('falls back to permanent nodes when no spot pool can launch', () => {
    const pools = [
      pool('r5.large', 'a', 'spot', 0.04, { launchable: false }),
      pool('r5.large', 'b', 'spot', 0.04, { launchable: false }),
      pool('m5.large', 'a', 'on-demand', 0.096),
    ];
    const plan = planPlacement({ workload: workload('ns/db', 3), nodes: [], pools });
    expect(plan.assignments.every(a => a.target.capacityType === 'on-demand')).toBe(true);
    expect(plan.spotFallbacks).toBe(2);
  });

  it('uses room on existing nodes before launching new ones', () => {
    const spotPool = pool('r5.large', 'a', 'spot', 0.04);
    const pools = [spotPool, pool('m5.large', 'b', 'on-demand', 0.096)];
    const existing = node('spot-1', spotPool, 'spot', 1);
    const plan = planPlacement({ workload: workload('ns/db', 3), nodes: [existing], pools });
    expect(plan.assignments.find(a => a.target.capacityType === 'spot')!.target).toEqual({
      kind: 'node',
      node: 'spot-1',
      capacityType: 'spot',
      pool: { instanceType: 'r5.large', zone: 'a' },
    });
  });

  it('moves members off a node that got a termination notice', () => {
    const pools = [...['a', 'b', 'c'].map(z => pool('r5.large', z, 'spot', 0.04)), pool('m5.large', 'a', 'on-demand', 0.096)];
    const cluster = new ClusterFixture();
    const w = workload('ns/db', 3);
    placeAll(cluster, w, pools);
    const victim = w.members.find(m => cluster.nodes.get(m.node!)!.capacityType === 'spot')!;
    cluster.nodes.get(victim.node!)!.terminatesAt = 1;
    const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
    expect(plan.assignments.filter(a => a.moves)).toEqual([
      expect.objectContaining({ pod: victim.pod, reason: 'node-leaving' }),
    ]);
  });
});

describe('planPlacement with cheaperSpotSavings', () => {
  it('moves a spot member to a pool at least that much cheaper, and keeps it for less', () => {
    const zones = ['a', 'b', 'c'];
    const plan = (cheapPrice: number, cheaperSpotSavings?: number) => {
      const pools = [
        ...zones.map(z => pool('dear.large', z, 'spot', 0.05)),
        pool('cheap.large', 'b', 'spot', cheapPrice),
        ...zones.map(z => pool('od.large', z, 'on-demand', 0.1)),
      ];
      const cluster = new ClusterFixture([
        node('od-a', { instanceType: 'od.large', zone: 'a' }, 'on-demand'),
        node('dear-b', { instanceType: 'dear.large', zone: 'b' }, 'spot'),
        node('dear-c', { instanceType: 'dear.large', zone: 'c' }, 'spot'),
      ]);
      const w = workload('ns/w', 3);
      ['od-a', 'dear-b', 'dear-c'].forEach((n, i) => {
        const v = cluster.nodes.get(n)!;
        cluster.move(w.members[i], { kind: 'node', node: n, capacityType: v.capacityType, pool: { instanceType: v.instanceType, zone: v.zone } });
      });
      return planPlacement({ workload: w, nodes: cluster.nodes.values(), pools, cheaperSpotSavings }).assignments;
    };
    expect(plan(0.03).every(a => !a.moves)).toBe(true);
    expect(plan(0.03, 0.1).filter(a => a.moves)).toEqual([
      expect.objectContaining({ from: 'dear-b', reason: 'cheaper-spot', target: expect.objectContaining({ capacityType: 'spot', pool: { instanceType: 'cheap.large', zone: 'b' } }) }),
    ]);
    expect(plan(0.046, 0.1).every(a => !a.moves)).toBe(true);
  });
});
