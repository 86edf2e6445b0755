import { CapacityPool, NodeView, WorkloadView } from './model';
import { permanentFloor, quorumOf } from './quorum';
import { planReplacement, REBALANCE_DEFAULTS, ReplacementMove, ReplacementWorkload, PRICE_MOVE_SAVINGS } from './replacement';
import { ClusterFixture, node, pool, workload } from './__testUtils__/cluster';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const ZONES = ['zone-a', 'zone-b', 'zone-c'];

/** Two spot and two permanent nodes in each of three zones. */
function fleet(): { cluster: ClusterFixture; pools: CapacityPool[] } {
  const pools = ZONES.flatMap(zone => [pool('t.large', zone, 'spot', 0.03), pool('od.large', zone, 'on-demand', 0.1)]);
  const nodes: NodeView[] = ZONES.flatMap(zone => [
    node(`spot-1-${zone}`, { instanceType: 't.large', zone }, 'spot'),
    node(`spot-2-${zone}`, { instanceType: 't.large', zone }, 'spot'),
    node(`od-1-${zone}`, { instanceType: 'od.large', zone }, 'on-demand'),
    node(`od-2-${zone}`, { instanceType: 'od.large', zone }, 'on-demand'),
  ]);
  return { cluster: new ClusterFixture(nodes), pools };
}

/** A five-member workload with every member on permanent nodes, as before it opts in. */
function onPermanent(cluster: ClusterFixture): WorkloadView {
  const w = workload('shop/sessions', 5);
  w.members.forEach((m, i) => cluster.move(m, { kind: 'node', node: `od-1-${ZONES[i % 3]}`, capacityType: 'on-demand', pool: { instanceType: 'od.large', zone: ZONES[i % 3] } }));
  return w;
}

function entry(view: WorkloadView, overrides: Partial<ReplacementWorkload> = {}): ReplacementWorkload {
  return { view, enabled: true, replicas: view.members.length, policyChanged: true, movesUnderWay: 0, recentRebalanceMoves: 0, ...overrides };
}

/** Runs passes as the controller would, carrying out each pass's moves before the next, until the workload is placed. */
function converge(cluster: ClusterFixture, pools: CapacityPool[], w: ReplacementWorkload): ReplacementMove[][] {
  const passes: ReplacementMove[][] = [];
  for (let i = 0; i < 20; i++) {
    const [outcome] = planReplacement({ now: NOW, workloads: [w], nodes: [...cluster.nodes.values()], pools });
    if (outcome.state === 'placed') return passes;
    expect(outcome.state).toBe('moving');
    passes.push(outcome.moves);
    for (const move of outcome.moves) cluster.move(w.view.members.find(m => m.pod === move.pod)!, move.target);
  }
  throw new Error('did not converge in 20 passes');
}

const capacityOf = (cluster: ClusterFixture, w: WorkloadView) => w.members.map(m => cluster.nodes.get(m.node!)!.capacityType);
const count = (types: string[], type: string) => types.filter(t => t === type).length;

describe('planReplacement', () => {
  it('moves members to spot on opt-in, back to the floor on 30 → 60 %, and all back on opt-out, one at a time with reason policy', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);

    const optIn = converge(cluster, pools, entry(view));
    expect(optIn.map(moves => moves.length)).toEqual([1, 1, 1]);
    expect(optIn.flat().every(m => m.reason === 'policy' && m.target.capacityType === 'spot')).toBe(true);
    expect(count(capacityOf(cluster, view), 'on-demand')).toBe(permanentFloor(5, 0.3));

    view.permanentRatio = 0.6;
    const raised = converge(cluster, pools, entry(view));
    expect(raised.flat()).toEqual([expect.objectContaining({ reason: 'policy', target: expect.objectContaining({ capacityType: 'on-demand' }) })]);
    expect(count(capacityOf(cluster, view), 'on-demand')).toBe(permanentFloor(5, 0.6));

    const optOut = converge(cluster, pools, entry(view, { enabled: false }));
    expect(optOut.flat()).toHaveLength(2);
    expect(capacityOf(cluster, view)).toEqual(Array(5).fill('on-demand'));
  });

  it('moves nothing while the workload rolls out (its members are about to be replaced), then moves', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    const during = planReplacement({ now: NOW, workloads: [entry(view, { rollingOut: true })], nodes: [...cluster.nodes.values()], pools });
    expect(during).toEqual([expect.objectContaining({ state: 'settling', moves: [] })]);
    const after = planReplacement({ now: NOW, workloads: [entry(view)], nodes: [...cluster.nodes.values()], pools });
    expect(after).toEqual([expect.objectContaining({ state: 'moving', moves: [expect.objectContaining({ reason: 'policy' })] })]);
  });

  it('moves no more members at once than the quorum and maxConcurrentMoves allow', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    view.maxConcurrentMoves = 10;
    const passes = converge(cluster, pools, entry(view));
    expect(Math.max(...passes.map(p => p.length))).toBe(5 - quorumOf(5));
    view.pdbMaxUnavailable = 1;
    view.permanentRatio = 1;
    expect(Math.max(...converge(cluster, pools, entry(view)).map(p => p.length))).toBe(1);
  });

  it('waits while a member is missing, not ready, moving, or on a node that is leaving, and while a move of the workload is under way', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    const plan = (w: WorkloadView, replicas = 5) =>
      planReplacement({ now: NOW, workloads: [entry(w, { replicas })], nodes: [...cluster.nodes.values()], pools })[0].state;
    expect(plan(view, 6)).toBe('settling');
    expect(planReplacement({ now: NOW, workloads: [entry(view, { movesUnderWay: 1 })], nodes: [...cluster.nodes.values()], pools })[0].state).toBe(
      'settling',
    );
    expect(plan({ ...view, members: view.members.map((m, i) => ({ ...m, ready: i !== 0 })) })).toBe('settling');
    expect(plan({ ...view, members: view.members.map((m, i) => ({ ...m, moving: i === 0 || undefined })) })).toBe('settling');
    cluster.nodes.set('od-1-zone-a', { ...cluster.nodes.get('od-1-zone-a')!, unschedulable: true });
    expect(plan(view)).toBe('settling');
  });

  it('restores a broken floor as a rebalance only after the hysteresis and within the budget', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    converge(cluster, pools, entry(view));
    // A permanent member lost its node and came back on spot.
    const permanent = view.members.find(m => cluster.nodes.get(m.node!)!.capacityType === 'on-demand')!;
    cluster.move(permanent, { kind: 'node', node: 'spot-2-zone-b', capacityType: 'spot', pool: { instanceType: 't.large', zone: 'zone-b' } });
    const plan = (overrides: Partial<ReplacementWorkload>) =>
      planReplacement({ now: NOW, workloads: [entry(view, { policyChanged: false, ...overrides })], nodes: [...cluster.nodes.values()], pools })[0];

    expect(plan({})).toMatchObject({ state: 'held', broken: true, moves: [] });
    expect(plan({ brokenSince: NOW - REBALANCE_DEFAULTS.settleMs + 1 })).toMatchObject({ state: 'held' });
    expect(plan({ brokenSince: NOW - REBALANCE_DEFAULTS.settleMs, recentRebalanceMoves: REBALANCE_DEFAULTS.maxMovesPerHour })).toMatchObject({
      state: 'held',
      detail: expect.stringMatching(/rebalance moves in the last hour/),
    });
    const moving = plan({ brokenSince: NOW - REBALANCE_DEFAULTS.settleMs });
    expect(moving.state).toBe('moving');
    expect(moving.moves).toEqual([expect.objectContaining({ reason: 'rebalance', target: expect.objectContaining({ capacityType: 'on-demand' }) })]);
  });

  it('restores a broken spread as a rebalance', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    converge(cluster, pools, entry(view));
    // Two spot members may share a zone at most (5 members, quorum 3): put a third there.
    const spot = view.members.filter(m => cluster.nodes.get(m.node!)!.capacityType === 'spot');
    for (const m of spot) cluster.move(m, { kind: 'node', node: 'spot-1-zone-a', capacityType: 'spot', pool: { instanceType: 't.large', zone: 'zone-a' } });
    const [outcome] = planReplacement({
      now: NOW,
      workloads: [entry(view, { policyChanged: false, brokenSince: 0 })],
      nodes: [...cluster.nodes.values()],
      pools,
    });
    expect(outcome).toMatchObject({ state: 'moving', broken: true });
    expect(outcome.moves).toEqual([expect.objectContaining({ reason: 'rebalance', sourceNode: 'spot-1-zone-a' })]);
  });

  it('never moves a member for price alone: members above the floor on permanent capacity stay until the policy changes', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    const [outcome] = planReplacement({
      now: NOW,
      workloads: [entry(view, { policyChanged: false, brokenSince: 0 })],
      nodes: [...cluster.nodes.values()],
      pools,
    });
    expect(outcome).toEqual({ workload: 'shop/sessions', state: 'placed', broken: false, moves: [] });
  });

  it('returns spot fallbacks to spot as a rebalance when spot is at least 10 % cheaper, within the budget, and not for less', () => {
    const plan = (spotPrice: number, overrides: Partial<ReplacementWorkload> = {}) => {
      const { cluster } = fleet();
      const pools = ZONES.flatMap(zone => [pool('t.large', zone, 'spot', spotPrice), pool('od.large', zone, 'on-demand', 0.1)]);
      const view = onPermanent(cluster);
      return planReplacement({
        now: NOW,
        workloads: [entry(view, { policyChanged: false, ...overrides })],
        nodes: [...cluster.nodes.values()],
        pools,
        rebalance: { ...REBALANCE_DEFAULTS, priceMoveSavings: PRICE_MOVE_SAVINGS },
      })[0];
    };
    // Fallbacks do not break the floor or the spread: no settling wait, one member at a time.
    expect(plan(0.03)).toMatchObject({
      state: 'moving',
      broken: false,
      moves: [expect.objectContaining({ reason: 'rebalance', target: expect.objectContaining({ capacityType: 'spot' }) })],
    });
    expect(plan(0.089).moves).toHaveLength(1);
    expect(plan(0.091)).toMatchObject({ state: 'placed', moves: [] });
    expect(plan(0.03, { recentRebalanceMoves: REBALANCE_DEFAULTS.maxMovesPerHour })).toMatchObject({ state: 'held', moves: [] });
  });

  it('moves a spot member out of a dear pool as a rebalance when another costs at least 10 % less', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    converge(cluster, pools, entry(view));
    const plan = (cheapPrice: number) =>
      planReplacement({
        now: NOW,
        workloads: [entry(view, { policyChanged: false })],
        nodes: [...cluster.nodes.values()],
        pools: [...pools, ...ZONES.map(zone => pool('c.large', zone, 'spot', cheapPrice))],
        rebalance: { ...REBALANCE_DEFAULTS, priceMoveSavings: PRICE_MOVE_SAVINGS },
      })[0];
    expect(plan(0.02)).toMatchObject({
      state: 'moving',
      moves: [expect.objectContaining({ reason: 'rebalance', target: expect.objectContaining({ capacityType: 'spot', pool: expect.objectContaining({ instanceType: 'c.large' }) }) })],
    });
    expect(plan(0.028)).toMatchObject({ state: 'placed', moves: [] });
  });

  it('says so when no capacity can take what the policy asks', () => {
    const { cluster, pools } = fleet();
    const view = onPermanent(cluster);
    converge(cluster, pools, entry(view));
    const spotOnly = pools.filter(p => p.capacityType === 'spot');
    const nodes = [...cluster.nodes.values()].map(n => (n.capacityType === 'on-demand' ? { ...n, free: { cpuMillis: 0, memoryMiB: 0 } } : n));
    const [outcome] = planReplacement({ now: NOW, workloads: [entry(view, { enabled: false })], nodes, pools: spotOnly });
    expect(outcome).toMatchObject({ state: 'unplaceable', moves: [], detail: expect.stringMatching(/No capacity/) });
  });
});
