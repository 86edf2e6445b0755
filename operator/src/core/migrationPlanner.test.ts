import fc from 'fast-check';
import type { MigrationReason } from '../api/v1alpha1';
import { CapacityPool, poolIdOf, WorkloadView } from './model';
import { planPlacement } from './placement';
import { concurrentMovesAllowed, DEFAULT_MOVE_TIMING, DisruptionSignal, planMigrations } from './migrationPlanner';
import { maxMembersPerFailureDomain } from './quorum';
import { arbitraryMarket, ClusterFixture, node, pool, workload } from './__testUtils__/cluster';

const NOW = Date.parse('2026-01-01T00:00:00Z');

function placedFleet(pools: CapacityPool[], sizes: { replicas: number; maxConcurrentMoves: number; pdb?: number; stateGiB: number; notReady: number }[]) {
  const cluster = new ClusterFixture();
  const workloads: WorkloadView[] = sizes.map((s, i) => {
    const w = workload(`ns/w${i}`, s.replicas, { maxConcurrentMoves: s.maxConcurrentMoves, pdbMaxUnavailable: s.pdb }, s.stateGiB * 2 ** 30);
    const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
    for (const a of plan.assignments) if (a.moves) cluster.move(w.members.find(m => m.pod === a.pod)!, a.target);
    w.members.slice(0, s.notReady).forEach(m => (m.ready = false));
    return w;
  });
  return { cluster, workloads };
}

const arbitraryFleet = fc.array(
  fc.record({
    replicas: fc.integer({ min: 1, max: 7 }),
    maxConcurrentMoves: fc.integer({ min: 1, max: 3 }),
    pdb: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    stateGiB: fc.double({ min: 0.01, max: 30, noNaN: true }),
    notReady: fc.integer({ min: 0, max: 1 }),
  }),
  { minLength: 1, maxLength: 8 },
);

const arbitrarySignals = fc.array(
  fc.record({
    pick: fc.nat(),
    reason: fc.constantFrom<MigrationReason>('notice', 'drain', 'rebalance', 'prediction'),
    deadlineS: fc.option(fc.constantFrom(30, 120, 600), { nil: undefined }),
  }),
  { minLength: 1, maxLength: 12 },
);

function signalsFor(cluster: ClusterFixture, picks: { pick: number; reason: MigrationReason; deadlineS?: number }[]): DisruptionSignal[] {
  const names = [...cluster.nodes.keys()].sort();
  return picks.map(p => {
    const signal: DisruptionSignal = {
      node: names[p.pick % names.length],
      reason: p.reason,
      deadline: p.reason === 'notice' ? NOW + (p.deadlineS ?? 120) * 1000 : p.deadlineS && NOW + p.deadlineS * 1000,
    };
    if (signal.deadline !== undefined) cluster.nodes.get(signal.node)!.terminatesAt = signal.deadline;
    return signal;
  });
}

describe('planMigrations', () => {
  it('plans every at-risk member before its deadline or reports it with a reason', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryFleet, arbitrarySignals, (pools, sizes, picks) => {
        const { cluster, workloads } = placedFleet(pools, sizes);
        const signals = signalsFor(cluster, picks);
        const signalled = new Set(signals.map(s => s.node));
        const plan = planMigrations({ now: NOW, signals, workloads, nodes: cluster.nodes.values(), pools });
        const reported = new Set(plan.unplanned.map(u => u.pod));
        for (const w of workloads) {
          for (const m of w.members.filter(x => x.node && signalled.has(x.node))) {
            const move = plan.moves.find(x => x.pod === m.pod);
            const onTime = move && move.meetsDeadline && (move.deadline === undefined || move.finishAt <= move.deadline);
            expect(onTime || reported.has(m.pod)).toBe(true);
          }
        }
        for (const move of plan.moves.filter(x => !x.meetsDeadline)) {
          expect(plan.unplanned).toContainEqual(expect.objectContaining({ pod: move.pod, cause: 'deadline' }));
        }
        for (const u of plan.unplanned) expect(u.detail.length).toBeGreaterThan(0);
      }),
    );
  });

  it('never has more members of a workload in motion than its quorum, PDB and move limit allow', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryFleet, arbitrarySignals, (pools, sizes, picks) => {
        const { cluster, workloads } = placedFleet(pools, sizes);
        const plan = planMigrations({ now: NOW, signals: signalsFor(cluster, picks), workloads, nodes: cluster.nodes.values(), pools });
        for (const w of workloads) {
          const moves = plan.moves.filter(m => m.workload === w.id);
          const allowed = concurrentMovesAllowed(w);
          const down = w.members.filter(m => !m.ready).length;
          expect(allowed).toBeLessThanOrEqual(Math.max(0, (w.pdbMaxUnavailable ?? Infinity) - down));
          for (const m of moves) {
            const inFlight = moves.filter(o => o.startAt <= m.startAt && o.finishAt > m.startAt).length;
            expect(inFlight).toBeLessThanOrEqual(allowed);
          }
        }
      }),
    );
  });

  it('keeps the spread: after the moves no spot pool or zone holds more than the quorum allows', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryFleet, arbitrarySignals, (pools, sizes, picks) => {
        const { cluster, workloads } = placedFleet(pools, sizes);
        const plan = planMigrations({ now: NOW, signals: signalsFor(cluster, picks), workloads, nodes: cluster.nodes.values(), pools });
        for (const w of workloads) {
          const final = w.members.map(m => {
            const move = plan.moves.find(x => x.pod === m.pod);
            if (move) return { capacityType: move.target.capacityType, ...move.target.pool };
            return cluster.nodes.get(m.node!)!;
          });
          const spot = final.filter(f => f.capacityType === 'spot');
          const cap = maxMembersPerFailureDomain(w.members.length);
          for (const p of new Set(spot.map(s => poolIdOf(s)))) {
            expect(spot.filter(s => poolIdOf(s) === p).length).toBeLessThanOrEqual(cap);
          }
          for (const z of new Set(spot.map(s => s.zone))) {
            expect(spot.filter(s => s.zone === z).length).toBeLessThanOrEqual(cap);
          }
        }
      }),
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(arbitraryMarket, arbitraryFleet, arbitrarySignals, (pools, sizes, picks) => {
        const run = () => {
          const { cluster, workloads } = placedFleet(pools, sizes);
          return planMigrations({ now: NOW, signals: signalsFor(cluster, picks), workloads, nodes: cluster.nodes.values(), pools });
        };
        expect(run()).toEqual(run());
      }),
    );
  });

  describe("with a lone member (the post's single Valkey)", () => {
    // As on a cluster: the nodes that are there, none launched by Ferry.
    const pools = [
      pool('m5.large', 'a', 'spot', 0.04, { launchable: false }),
      pool('m5.large', 'b', 'spot', 0.04, { launchable: false }),
      pool('m5.large', 'c', 'on-demand', 0.096, { launchable: false }),
    ];
    /** The nodes, with `drained` cordoned as `kubectl drain` leaves it. */
    const nodes = (drained: string) =>
      [node('spot-a', pools[0], 'spot'), node('spot-b', pools[1], 'spot'), node('on-demand-c', pools[2], 'on-demand')].map(n =>
        n.name === drained ? { ...n, unschedulable: true } : n,
      );

    it('moves it off a drained spot node to another spot pool when its ratio is 0', () => {
      const lone = workload('default/valkey', 1, { permanentRatio: 0 });
      lone.members[0].node = 'spot-a';
      const plan = planMigrations({ now: NOW, signals: [{ node: 'spot-a', reason: 'drain' }], workloads: [lone], nodes: nodes('spot-a'), pools });
      expect(plan.unplanned).toEqual([]);
      expect(plan.moves).toHaveLength(1);
      expect(plan.moves[0].target).toMatchObject({ kind: 'node', node: 'spot-b' });
    });

    it('moves a member off a drained spot node to a permanent node the workload uses when nothing else has room, not to a node nobody launches', () => {
      // The playground's agent-memory: one member per node, spot-b's pool full (one spot member per pool).
      const three = workload('assistants/agent-memory', 3);
      ['on-demand-c', 'spot-b', 'spot-a'].forEach((n, i) => (three.members[i].node = n));
      const plan = planMigrations({ now: NOW, signals: [{ node: 'spot-a', reason: 'drain' }], workloads: [three], nodes: nodes('spot-a'), pools });
      expect(plan.unplanned).toEqual([]);
      expect(plan.moves.map(m => [m.pod, m.target])).toEqual([
        [three.members[2].pod, expect.objectContaining({ kind: 'node', node: 'on-demand-c', capacityType: 'on-demand' })],
      ]);
    });

    it('gives it one move slot, however the quorum counts', () => {
      const lone = workload('default/valkey', 1);
      lone.members[0].node = 'spot-a';
      expect(concurrentMovesAllowed(lone)).toBe(1);
    });
  });

  describe('with a five-member workload on spot', () => {
    const zones = ['a', 'b', 'c'];
    const pools = [
      ...zones.map(z => pool('r5.large', z, 'spot', 0.04)),
      ...zones.map(z => pool('m5.large', z, 'spot', 0.05)),
      ...zones.map(z => pool('m5.large', z, 'on-demand', 0.096)),
    ];

    function setup(stateBytes = 1e9) {
      const cluster = new ClusterFixture();
      const w = workload('ns/db', 5, { maxConcurrentMoves: 1 }, stateBytes);
      const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
      for (const a of plan.assignments) if (a.moves) cluster.move(w.members.find(m => m.pod === a.pod)!, a.target);
      const spotMembers = w.members.filter(m => cluster.nodes.get(m.node!)!.capacityType === 'spot');
      return { cluster, w, spotMembers };
    }

    it('moves the most urgent member first', () => {
      const { cluster, w, spotMembers } = setup();
      const [late, urgent] = spotMembers;
      const plan = planMigrations({
        now: NOW,
        signals: [
          { node: late.node!, reason: 'notice', deadline: NOW + 600_000 },
          { node: urgent.node!, reason: 'notice', deadline: NOW + 120_000 },
        ],
        workloads: [w],
        nodes: cluster.nodes.values(),
        pools,
      });
      expect(plan.moves.map(m => m.pod)).toEqual([urgent.pod, late.pod]);
      expect(plan.moves[1].startAt).toBeGreaterThanOrEqual(plan.moves[0].finishAt);
    });

    it('uses an existing node when a 30-second notice leaves no time to launch one', () => {
      const { cluster, w, spotMembers } = setup();
      const spare = node('spare-spot', { instanceType: 'm5.large', zone: 'c' }, 'spot');
      cluster.nodes.set(spare.name, spare);
      const victim = spotMembers.find(m => cluster.nodes.get(m.node!)!.zone !== 'c') ?? spotMembers[0];
      const plan = planMigrations({
        now: NOW,
        signals: [{ node: victim.node!, reason: 'notice', deadline: NOW + 30_000 }],
        workloads: [w],
        nodes: cluster.nodes.values(),
        pools,
      });
      expect(plan.unplanned).toEqual([]);
      expect(plan.moves[0].target.kind).toBe('node');
      expect(plan.moves[0].finishAt).toBeLessThanOrEqual(NOW + 30_000);
    });

    it('falls back to a permanent node when every other spot pool has notices', () => {
      const { cluster, w, spotMembers } = setup();
      const standby = node('od-standby', { instanceType: 'm5.large', zone: 'a' }, 'on-demand');
      cluster.nodes.set(standby.name, standby);
      const signals: DisruptionSignal[] = [];
      for (const p of pools.filter(x => x.capacityType === 'spot')) {
        const name = `busy-${poolIdOf(p)}`;
        cluster.nodes.set(name, node(name, p, 'spot'));
        signals.push({ node: name, reason: 'notice', deadline: NOW + 120_000 });
      }
      signals.push({ node: spotMembers[0].node!, reason: 'notice', deadline: NOW + 120_000 });
      const plan = planMigrations({ now: NOW, signals, workloads: [w], nodes: cluster.nodes.values(), pools });
      expect(plan.moves).toEqual([
        expect.objectContaining({ pod: spotMembers[0].pod, permanentFallback: true, meetsDeadline: true }),
      ]);
    });

    it('reports a member whose state cannot be copied before the node goes', () => {
      const { cluster, w, spotMembers } = setup(64 * 2 ** 30);
      const plan = planMigrations({
        now: NOW,
        signals: [{ node: spotMembers[0].node!, reason: 'notice', deadline: NOW + 120_000 }],
        workloads: [w],
        nodes: cluster.nodes.values(),
        pools,
        timing: DEFAULT_MOVE_TIMING,
      });
      expect(plan.unplanned).toEqual([expect.objectContaining({ pod: spotMembers[0].pod, cause: 'deadline' })]);
      expect(plan.unplanned[0].detail).toMatch(/s after/);
    });

    it('refuses to move when the quorum has no room, and says so', () => {
      const { cluster, w, spotMembers } = setup();
      w.members.filter(m => m !== spotMembers[0]).slice(0, 2).forEach(m => (m.ready = false));
      const plan = planMigrations({
        now: NOW,
        signals: [{ node: spotMembers[0].node!, reason: 'rebalance' }],
        workloads: [w],
        nodes: cluster.nodes.values(),
        pools,
      });
      expect(plan.moves).toEqual([]);
      expect(plan.unplanned).toEqual([expect.objectContaining({ cause: 'quorum' })]);
    });
  });
});

describe('planMigrations on one busy node', () => {
  it('sends no more transfers at once from a node than its link allows', () => {
    const zones = ['a', 'b', 'c'];
    const pools = [...zones.map(z => pool('r5.large', z, 'spot', 0.04)), ...zones.map(z => pool('m5.large', z, 'on-demand', 0.096))];
    const shared = node('shared-spot', { instanceType: 'r5.large', zone: 'a' }, 'spot');
    shared.allocatable = shared.free = { cpuMillis: 64_000, memoryMiB: 262_144 };
    const cluster = new ClusterFixture([shared]);
    const workloads = [0, 1, 2, 3].map(i => {
      const w = workload(`ns/w${i}`, 3);
      const plan = planPlacement({ workload: w, nodes: cluster.nodes.values(), pools });
      for (const a of plan.assignments) if (a.moves) cluster.move(w.members.find(m => m.pod === a.pod)!, a.target);
      return w;
    });
    const onShared = workloads.flatMap(w => w.members.filter(m => m.node === 'shared-spot'));
    expect(onShared.length).toBeGreaterThan(2);
    const plan = planMigrations({
      now: NOW,
      signals: [{ node: 'shared-spot', reason: 'notice', deadline: NOW + 600_000 }],
      workloads,
      nodes: cluster.nodes.values(),
      pools,
      timing: { ...DEFAULT_MOVE_TIMING, transfersPerSourceNode: 2 },
    });
    for (const m of plan.moves) {
      const concurrent = plan.moves.filter(o => o.startAt <= m.startAt && o.finishAt - DEFAULT_MOVE_TIMING.switchoverMs > m.startAt);
      expect(concurrent.length).toBeLessThanOrEqual(2);
    }
    expect(plan.moves).toHaveLength(onShared.length);
  });
});
