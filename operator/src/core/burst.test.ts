import fc from 'fast-check';
import { policyCostBound } from './costBound';
import { planMigrations } from './migrationPlanner';
import { CapacityPool, poolIdOf } from './model';
import { planPlacement } from './placement';
import { maxMembersPerFailureDomain, permanentFloor, quorumOf } from './quorum';
import { arbitraryMarket, ClusterFixture, MEMBER_REQUESTS, pool, workload } from './__testUtils__/cluster';

const arbitraryWorkload = fc.record({
  replicas: fc.integer({ min: 1, max: 9 }),
  ratio: fc.double({ min: 0, max: 1, noNaN: true }),
});

/** Places the workload and carries the plan out on the fixture. */
function placed(pools: CapacityPool[], replicas: number, ratio: number) {
  const cluster = new ClusterFixture();
  const w = workload('ns/db', replicas, { permanentRatio: ratio });
  const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
  for (const a of plan.assignments) if (a.moves) cluster.move(w.members.find(m => m.pod === a.pod)!, a.target);
  return { cluster, w };
}

describe('a reclaim burst', () => {
  it('leaves the quorum standing whenever it leaves a majority of the workload’s pools intact', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }), (pools, { replicas, ratio }, takes) => {
        const { cluster, w } = placed(pools, replicas, ratio);
        const poolOf = (m: (typeof w.members)[number]) => {
          const n = cluster.nodes.get(m.node!)!;
          return `${n.capacityType}:${poolIdOf(n)}`;
        };
        // The burst takes any set of spot pools at once (bursts take whole pools).
        const spotPools = pools.filter(p => p.capacityType === 'spot').map(p => `spot:${poolIdOf(p)}`);
        const burst = new Set(spotPools.filter((_, i) => takes[i]));
        const workloadPools = new Set(w.members.map(poolOf));
        const intact = [...workloadPools].filter(p => !burst.has(p)).length;
        fc.pre(intact > workloadPools.size / 2);
        const standing = w.members.filter(m => !burst.has(poolOf(m))).length;
        expect(standing).toBeGreaterThanOrEqual(quorumOf(replicas));
      }),
    );
  });

  it('gets every member it hits a target outside the burst and within the spread, a permanent one when spot is short', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }), (pools, { replicas, ratio }, takes) => {
        const { cluster, w } = placed(pools, replicas, ratio);
        const spotPools = pools.filter(p => p.capacityType === 'spot');
        const burst = new Set(spotPools.filter((_, i) => takes[i]).map(poolIdOf));
        const now = 1_000_000;
        const signals = [...cluster.nodes.values()]
          .filter(n => n.capacityType === 'spot' && burst.has(poolIdOf(n)))
          .map(n => ({ node: n.name, reason: 'notice' as const, deadline: now + 120_000 }));
        for (const s of signals) cluster.nodes.get(s.node)!.terminatesAt = s.deadline;
        // The pools of the burst cannot launch any more.
        const market = pools.map(p => (p.capacityType === 'spot' && burst.has(poolIdOf(p)) ? { ...p, launchable: false } : p));
        const plan = planMigrations({ now, signals, workloads: [w], nodes: cluster.nodes.values(), pools: market });
        const hit = w.members.filter(m => signals.some(s => s.node === m.node));
        // Each hit member is planned (moves run one after another within the quorum) or reported;
        // a move that cannot meet the deadline is both planned (best effort) and reported.
        expect(plan.moves.length + plan.unplanned.filter(u => u.cause !== 'deadline').length).toBe(hit.length);
        const spotTargets = new Map<string, number>();
        for (const m of w.members) {
          const n = cluster.nodes.get(m.node!)!;
          if (n.capacityType === 'spot' && !burst.has(poolIdOf(n))) spotTargets.set(poolIdOf(n), (spotTargets.get(poolIdOf(n)) ?? 0) + 1);
        }
        for (const move of plan.moves) {
          if (move.target.capacityType !== 'spot') continue;
          const id = poolIdOf(move.target.pool);
          expect(burst.has(id)).toBe(false);
          spotTargets.set(id, (spotTargets.get(id) ?? 0) + 1);
        }
        for (const count of spotTargets.values()) expect(count).toBeLessThanOrEqual(1);
        expect(plan.moves.filter(m => !m.meetsDeadline && !m.lateReason)).toEqual([]);
        for (const u of plan.unplanned) expect(['quorum', 'no-capacity', 'deadline']).toContain(u.cause);
      }),
    );
  });
});

describe('policyCostBound', () => {
  it('puts the floor on the cheapest permanent pool and the rest one per spot pool, at most replicas - quorum per zone', () => {
    const pools = [
      pool('r5.large', 'a', 'spot', 0.03),
      pool('m5.large', 'a', 'spot', 0.035),
      pool('r5.large', 'b', 'spot', 0.04),
      pool('r5.large', 'c', 'spot', 0.05),
      pool('m5.large', 'a', 'on-demand', 0.1),
      pool('r5.large', 'b', 'on-demand', 0.12),
    ];
    // 5 replicas, ratio 0.3: floor 2, three on spot, at most two per zone: 0.03 + 0.035 (zone a) + 0.04 (zone b).
    const bound = policyCostBound({ replicas: 5, permanentRatio: 0.3, requests: MEMBER_REQUESTS }, pools);
    const share = MEMBER_REQUESTS.cpuMillis / 4000;
    expect(bound.spotMembers).toBe(3);
    expect(bound.usdPerHour).toBeCloseTo((2 * 0.1 + 0.03 + 0.035 + 0.04) * share, 10);
  });

  it('is never above what the planner’s own placement costs with the same pools', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryWorkload, (pools, { replicas, ratio }) => {
        const launchable = pools.map(p => ({ ...p, launchable: true }));
        const { cluster, w } = placed(launchable, replicas, ratio);
        let cost = 0;
        for (const m of w.members) {
          const n = cluster.nodes.get(m.node!)!;
          const p = launchable.find(q => q.capacityType === n.capacityType && poolIdOf(q) === poolIdOf(n))!;
          cost += p.priceUsdPerHour * (MEMBER_REQUESTS.cpuMillis / 4000);
        }
        const bound = policyCostBound({ replicas, permanentRatio: ratio, requests: MEMBER_REQUESTS }, launchable);
        expect(bound.usdPerHour).toBeLessThanOrEqual(cost + 1e-9);
        expect(bound.permanentMembers).toBeGreaterThanOrEqual(permanentFloor(replicas, ratio));
        expect(bound.spotMembers).toBeLessThanOrEqual(replicas - permanentFloor(replicas, ratio));
        expect(maxMembersPerFailureDomain(replicas)).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
