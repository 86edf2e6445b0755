/**
 * A fleet of 50 stateful services (3–5 replicas each) on a replayed spot
 * market, side by side under four policies in one run:
 *
 * - `on-demand`: every member on on-demand nodes.
 * - `cheapest-spot`: every member on spot, in the one cheapest pool (no diversity).
 * - `spread`: every member on spot, spread over pools by price and capacity
 *   (EC2 Fleet's price-capacity-optimised style), no permanent floor, no prediction.
 * - `ferry`: the placement planner (permanent floor, spread by failure domain,
 *   pools ranked by price and predicted risk), the migration planner on notices,
 *   and proactive moves on predicted risk.
 *
 * Baselines have no live migration: a member whose node is reclaimed is
 * rescheduled and resyncs its state (what a plain StatefulSet with a node
 * termination handler does); Ferry moves members live within the notice.
 *
 *   npm run bench -- placement [--prices <csv>]... [--trace <json|dir>]... [--days 30] [--seed 1]
 *                              [--services 50] [--types r5.large,m5.large,...] [--only ferry,spread] [--ablations true]
 *                              [--cloud aws|gcp|azure]   (the notice: 2 min, or 30 s)
 *
 * By default: AWS eu-west-1 spot prices 2021-12 .. 2022-06 and the single-node
 * AWS traces of ../shared/data.
 */
import path from 'node:path';
import { CloudName, TERMINATION_NOTICE_MS } from '../src/cloud/CloudProvider';
import { loadMarketData } from '../src/cloud/marketFiles';
import { regionOfZone } from '../src/cloud/marketData';
import { SimulatedCloudProvider } from '../src/cloud/SimulatedCloudProvider';
import { SimulatedSpotMarket } from '../src/cloud/SimulatedSpotMarket';
import { CapacityBook } from '../src/core/capacity';
import { CapacityPool, nodeShareOf, poolIdOf } from '../src/core/model';
import { MemberAssignment, PlacementInput, PlacementPlan, planPlacement } from '../src/core/placement';
import { ProactiveMoveGovernor } from '../src/core/proactive';
import { quorumOf } from '../src/core/quorum';
import { seededRandom } from '../src/core/random';
import { fitRiskCoefficients, InterruptionRiskModel } from '../src/core/risk';
import { buildRiskSamples } from '../src/core/riskTraining';
import { FleetSimulation, FleetWorkloadSpec, PlacementStrategy } from '../src/demo/FleetSimulation';
import { numberOption, parseBenchArgs, round, sharedDataDir, singleNodeTraces, writeResults } from './lib/benchSupport';

const DAY = 24 * 3_600_000;
/** Control-loop step: notices are acted on within it, and availability is measured at it. */
const STEP_MS = 10_000;
const DEFAULT_TYPES = ['r5.large', 'r5.xlarge', 'r6i.large', 'r6i.xlarge', 'r6g.large', 'r6g.xlarge', 'm5.large', 'm5.xlarge', 'm6i.large', 'm6g.large'];
/** A member: a Valkey/queue/small-DB process of one vCPU and 6 GiB. */
const MEMBER_REQUESTS = { cpuMillis: 1000, memoryMiB: 6 * 1024 };
const STATE_GIB = { min: 0.5, max: 4 };

function main(): void {
  const args = parseBenchArgs(process.argv.slice(2));
  const data = sharedDataDir();
  const seed = numberOption(args, 'seed', 1);
  const days = numberOption(args, 'days', 30);
  const services = numberOption(args, 'services', 50);
  const types = args.options.get('types')?.split(',') ?? DEFAULT_TYPES;
  const cloudName = (args.options.get('cloud') ?? 'aws') as CloudName;
  if (!(cloudName in TERMINATION_NOTICE_MS)) throw new Error(`--cloud must be aws, gcp or azure (it sets the notice: 2 min or 30 s), got "${cloudName}"`);
  const noticeMs = TERMINATION_NOTICE_MS[cloudName];
  const priceFiles = args.prices.length > 0 ? args.prices : [path.join(data, 'aws_spot_price_history_eu-west-1_2021-12_2022-06.csv')];
  const traceFiles = args.traces.length > 0 ? args.traces : singleNodeTraces(data, 'aws');
  const marketData = loadMarketData({
    prices: priceFiles,
    traces: traceFiles,
    onDemand: path.join(data, 'aws_ondemand_prices_us-east-1_2026-07.csv'),
    advisor: path.join(data, 'aws_spot_advisor_linux_2025-06.csv'),
  });
  const probe = new SimulatedSpotMarket(marketData, { seed, noticeMs, instanceTypes: types });
  // A day in, so every pool's price log has started.
  const startAt = probe.startAt + DAY;
  const endAt = startAt + days * DAY;
  if (endAt > probe.endAt) {
    throw new Error(`the price data covers ${round((probe.endAt - probe.startAt) / DAY, 1)} days; ask for fewer --days or pass longer --prices`);
  }

  // The risk model learns from the first 70 % of each trace, as in the risk benchmark.
  const coefficients = fitRiskCoefficients(
    buildRiskSamples(
      marketData.traces.map(t => ({
        pool: t.source,
        zone: `${t.cloud}:${t.zone}`,
        advisorBand: marketData.advisor.get(`${regionOfZone(t.zone)}/${t.instanceType}`)?.band,
        startAt: t.startAt,
        tickMs: t.tickMs,
        unavailable: t.unavailable,
      })),
      { horizonMs: 20 * 60_000, sampleEveryMs: 5 * 60_000, heldOutShare: 0.3 },
    ).filter(s => !s.heldOut),
  );

  const random = seededRandom(seed);
  const fleet: FleetWorkloadSpec[] = Array.from({ length: services }, (_, i) => ({
    id: `svc/service-${String(i).padStart(2, '0')}`,
    replicas: 3 + Math.floor(random() * 3),
    permanentRatio: 0.3,
    maxConcurrentMoves: 1,
    requests: MEMBER_REQUESTS,
    stateBytes: Math.round((STATE_GIB.min + random() * (STATE_GIB.max - STATE_GIB.min)) * 2 ** 30),
    availabilityTarget: 0.999,
    enabled: true,
  }));

  type Policy = { placement: PlacementStrategy; ferry: boolean; permanentRatio?: number; prediction?: boolean; headroom?: boolean };
  const policies: Record<string, Policy> = {
    'on-demand': { placement: planPlacement, ferry: false, permanentRatio: 1 },
    'cheapest-spot': { placement: cheapestSpotPlacement, ferry: false },
    spread: { placement: priceCapacitySpreadPlacement, ferry: false },
    ferry: { placement: planPlacement, ferry: true },
  };
  // Ferry with one part switched off, to show what each part is worth (`--ablations true`).
  const ablations: Record<string, Policy> = {
    'ferry-without-prediction': { placement: planPlacement, ferry: true, prediction: false },
    'ferry-without-headroom': { placement: planPlacement, ferry: true, headroom: false },
  };
  const withAblations = args.options.get('ablations') === 'true';

  const results: Record<string, Record<string, number>> = {};
  // The first policy is all on-demand: the others' cost is a fraction of its spend.
  let allOnDemandSpend: number | undefined;
  console.log(
    `placement: ${services} services, ${fleet.reduce((a, w) => a + w.replicas, 0)} members, ${days} days from ${new Date(startAt).toISOString().slice(0, 10)}, ` +
      `${probe.pools.length} spot pools, ${marketData.traces.length} traces, ${noticeMs / 1000} s notices, seed ${seed}`,
  );
  const only = args.options.get('only')?.split(',');
  const ablationResults: Record<string, Record<string, number>> = {};
  const runs = [...Object.entries(policies), ...(withAblations ? Object.entries(ablations) : [])];
  for (const [name, policy] of runs) {
    // All on-demand always runs: it is what the others' cost is a fraction of.
    if (only && name !== 'on-demand' && !only.includes(name) && !(name in ablations)) continue;
    const market = new SimulatedSpotMarket(marketData, { seed, noticeMs, instanceTypes: types });
    const provider = new SimulatedCloudProvider(market, cloudName);
    const sim = new FleetSimulation({
      provider,
      startAt,
      workloads: fleet.map(w => ({ ...w, permanentRatio: policy.permanentRatio ?? w.permanentRatio })),
      placement: policy.placement,
      liveMigration: policy.ferry,
      riskModel: policy.ferry && policy.prediction !== false ? new InterruptionRiskModel(coefficients) : undefined,
      proactive: policy.ferry && policy.prediction !== false ? new ProactiveMoveGovernor() : undefined,
      headroom: policy.ferry && policy.headroom !== false,
    });
    const wallStart = Date.now();
    sim.advanceTo(endAt, STEP_MS);
    let spend = 0;
    let onDemand = 0;
    let quorumLosses = 0;
    let interruptionsHit = 0;
    let servicesWithLoss = 0;
    let downMs = 0;
    for (const w of sim.workloads.values()) {
      const cost = w.cost.totals();
      spend += cost.spendUsd;
      onDemand += cost.onDemandSpendUsd;
      const a = w.availability.totals();
      quorumLosses += a.outages;
      if (a.outages > 0) servicesWithLoss++;
      downMs += a.downMs;
      interruptionsHit += w.interruptionsHit;
    }
    const moves = sim.moves;
    // Spare room kept for fast moves is Ferry's cost too, though no workload uses it.
    spend += sim.headroomSpendUsd();
    allOnDemandSpend ??= spend;
    const target = name in ablations ? ablationResults : results;
    target[name] = {
      costRatio: round(spend / allOnDemandSpend, 4),
      costRatioVsSameNodesOnDemand: round(spend / onDemand, 4),
      headroomSpendUsd: round(sim.headroomSpendUsd(), 2),
      availability: round(sim.fleetAvailability(), 6),
      quorumLosses,
      interruptionsHit,
      migrations: moves.length,
      servicesWithQuorumLoss: servicesWithLoss,
      quorumDownMinutes: round(downMs / 60_000, 1),
      spendUsd: round(spend, 2),
      onDemandSpendUsd: round(onDemand, 2),
      liveMovesMissedDeadline: moves.filter(m => m.live && !m.meetsDeadline).length,
      failedMoves: moves.filter(m => m.outcome === 'Failed').length,
      permanentShareOfMembers: round(permanentShare(sim), 3),
      proactiveMoves: moves.filter(m => m.reason === 'prediction').length,
      noticeMoves: moves.filter(m => m.reason === 'notice').length,
      reschedules: moves.filter(m => m.reason === 'reschedule').length,
      wallSeconds: round((Date.now() - wallStart) / 1000, 1),
    };
    const r = target[name];
    console.log(
      `  ${name.padEnd(14)} cost ${r.costRatio.toFixed(3)} of on-demand  availability ${r.availability.toFixed(6)}  quorum losses ${r.quorumLosses}` +
        `  interruptions hit ${r.interruptionsHit}  migrations ${r.migrations}  (${r.wallSeconds}s)`,
    );
  }
  const file = writeResults('placement', {
    policies: results,
    ...(withAblations ? { ablations: ablationResults } : {}),
    services,
    members: fleet.reduce((a, w) => a + w.replicas, 0),
    days,
    seed,
    cloud: cloudName,
    noticeSeconds: noticeMs / 1000,
    startAt: new Date(startAt).toISOString(),
    spotPools: probe.pools.length,
    traces: marketData.traces.length,
    interruptionsInWindow: probe.pools.reduce(
      (a, p) => a + probe.interruptionsOf(p.id).filter(i => i.reclaimAt >= startAt && i.reclaimAt < endAt).length,
      0,
    ),
    priceFiles: priceFiles.map(f => path.basename(f)),
  });
  console.log(`wrote ${file}`);
}

/** Members on permanent capacity at the end, over all members. */
function permanentShare(sim: FleetSimulation): number {
  let permanent = 0;
  let all = 0;
  for (const w of sim.workloads.values()) {
    for (const m of w.members) {
      const node = m.node ? sim.node(m.node) : undefined;
      if (!node) continue;
      all++;
      if (node.capacityType === 'on-demand') permanent++;
    }
  }
  return all === 0 ? 0 : permanent / all;
}

/** Baseline: keep members where they are; put each new one in the single cheapest spot pool that can launch. */
function cheapestSpotPlacement(input: PlacementInput): PlacementPlan {
  return baselinePlacement(input, (spot, used) => {
    void used;
    return spot.slice(0, 1);
  });
}

/** Baseline: keep members where they are; spread new ones one per pool, zones least used first, then price. */
function priceCapacitySpreadPlacement(input: PlacementInput): PlacementPlan {
  return baselinePlacement(input, (spot, used) => {
    const zoneUse = new Map<string, number>();
    for (const p of used) zoneUse.set(p.zone, (zoneUse.get(p.zone) ?? 0) + 1);
    const unusedPools = spot.filter(p => !used.some(u => poolIdOf(u) === poolIdOf(p)));
    const candidates = unusedPools.length > 0 ? unusedPools : spot;
    return [...candidates].sort((a, b) => (zoneUse.get(a.zone) ?? 0) - (zoneUse.get(b.zone) ?? 0));
  });
}

/** A placement of every member on spot, in the pools `choose` orders, falling back to on-demand. */
function baselinePlacement(
  input: PlacementInput,
  choose: (spotByPrice: CapacityPool[], usedPools: CapacityPool[]) => CapacityPool[],
): PlacementPlan {
  const { workload, pools } = input;
  const book = input.nodes instanceof CapacityBook ? input.nodes : new CapacityBook(input.nodes);
  const requests = workload.members[0]?.requests ?? MEMBER_REQUESTS;
  const spot = pools
    .filter(p => p.capacityType === 'spot' && p.launchable)
    .sort((a, b) => a.priceUsdPerHour * nodeShareOf(requests, a.allocatable) - b.priceUsdPerHour * nodeShareOf(requests, b.allocatable));
  const usedNodes = new Set<string>();
  const usedPools: CapacityPool[] = [];
  const assignments: MemberAssignment[] = [];
  for (const m of workload.members) {
    const node = m.node ? book.node(m.node) : undefined;
    if (node) {
      usedNodes.add(node.name);
      const pool = pools.find(p => p.capacityType === node.capacityType && poolIdOf(p) === poolIdOf(node));
      if (pool) usedPools.push(pool);
      assignments.push({ pod: m.pod, from: m.node, target: { kind: 'node', node: node.name, capacityType: node.capacityType, pool: { instanceType: node.instanceType, zone: node.zone } }, moves: false, reason: 'kept' });
    }
  }
  for (const m of workload.members) {
    if (m.node && book.node(m.node)) continue;
    const ordered = choose(spot, usedPools);
    const fallback = pools.filter(p => p.capacityType === 'on-demand').sort((a, b) => a.priceUsdPerHour - b.priceUsdPerHour);
    let placed = false;
    for (const pool of [...ordered, ...fallback]) {
      const room = book.findRoom(pool.capacityType, pool, m.requests, usedNodes);
      const target = room
        ? { kind: 'node' as const, node: room.name, capacityType: pool.capacityType, pool: { instanceType: pool.instanceType, zone: pool.zone } }
        : { kind: 'new-node' as const, capacityType: pool.capacityType, pool: { instanceType: pool.instanceType, zone: pool.zone } };
      if (room) {
        book.book(room.name, m.requests);
        usedNodes.add(room.name);
      }
      usedPools.push(pool);
      assignments.push({ pod: m.pod, from: m.node, target, moves: true, reason: m.node ? 'node-leaving' : 'unscheduled' });
      placed = true;
      break;
    }
    if (!placed) throw new Error(`no pool can take ${workload.id}/${m.pod}`);
  }
  const order = new Map(workload.members.map((m, i) => [m.pod, i]));
  assignments.sort((a, b) => order.get(a.pod)! - order.get(b.pod)!);
  const n = workload.members.length;
  return { workload: workload.id, quorum: quorumOf(n), permanentFloor: 0, maxPerFailureDomain: n, assignments, spotFallbacks: 0 };
}

main();
