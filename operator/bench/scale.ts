/**
 * The decision core at scale: 5,000 nodes and 50,000 pods (10 % stateful, opted
 * in) in the simulated cluster, and a mass reclaim of 10 % of the spot nodes at
 * once. Measures, from the notices: the time to a complete migration plan (p50
 * and p99 over repeated reclaims of different node sets), the time until the
 * first move is started, the operator's peak RSS, and how many at-risk stateful
 * pods the plan fits inside the notice (30 s, as on GCP and Azure, by default).
 *
 *   npm run bench -- scale [--prices <csv>]... [--trace <json|dir>]... [--nodes 5000] [--pods 50000]
 *                          [--stateful-share 0.1] [--reclaim-share 0.1] [--notice-seconds 30] [--repeats 40] [--seed 1]
 *                          [--reclaim-by node|pool]
 *
 * `--reclaim-by node` (default) picks the reclaimed nodes at random over every
 * spot pool, so every pool has notices and the planner, which never targets a
 * pool with notices, falls back to permanent nodes; `pool` reclaims whole pools
 * (as capacity is really taken back) until the share is reached.
 */
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { TERMINATION_NOTICE_MS } from '../src/cloud/CloudProvider';
import { loadMarketData } from '../src/cloud/marketFiles';
import { SimulatedCloudProvider } from '../src/cloud/SimulatedCloudProvider';
import { SimulatedSpotMarket } from '../src/cloud/SimulatedSpotMarket';
import { CapacityBook } from '../src/core/capacity';
import { DisruptionSignal, planMigrations, PlannedMove } from '../src/core/migrationPlanner';
import { CapacityPool, MemberView, NodeView, poolIdOf, Resources, WorkloadView } from '../src/core/model';
import { planPlacement } from '../src/core/placement';
import { seededRandom } from '../src/core/random';
import { InterruptionRiskModel } from '../src/core/risk';
import { SHIPPED_RISK_COEFFICIENTS } from '../src/core/shippedRiskCoefficients';
import { numberOption, parseBenchArgs, round, sharedDataDir, singleNodeTraces, writeResults } from './lib/benchSupport';

const TYPES = ['r5.2xlarge', 'm5.2xlarge', 'r6i.2xlarge', 'm6i.2xlarge', 'r6g.2xlarge', 'm6g.2xlarge'];
const STATELESS_REQUESTS: Resources = { cpuMillis: 500, memoryMiB: 2048 };
const STATEFUL_REQUESTS: Resources = { cpuMillis: 500, memoryMiB: 2048 };
const STATE_GIB = { min: 0.25, max: 4 };
/** Share of nodes that are permanent (on-demand). */
const PERMANENT_NODE_SHARE = 0.3;

function main(): void {
  const args = parseBenchArgs(process.argv.slice(2));
  const data = sharedDataDir();
  const seed = numberOption(args, 'seed', 1);
  const nodeCount = numberOption(args, 'nodes', 5000);
  const podCount = numberOption(args, 'pods', 50000);
  const statefulShare = numberOption(args, 'stateful-share', 0.1);
  const reclaimShare = numberOption(args, 'reclaim-share', 0.1);
  const noticeMs = numberOption(args, 'notice-seconds', 30) * 1000;
  const repeats = numberOption(args, 'repeats', 40);
  const reclaimBy = args.options.get('reclaim-by') ?? 'node';
  if (reclaimBy !== 'node' && reclaimBy !== 'pool') throw new Error(`--reclaim-by must be node or pool, got "${reclaimBy}"`);
  const marketData = loadMarketData({
    prices: args.prices.length > 0 ? args.prices : [path.join(data, 'aws_spot_price_history_eu-west-1_2021-12_2022-06.csv')],
    traces: args.traces.length > 0 ? args.traces : singleNodeTraces(data, 'aws'),
    onDemand: path.join(data, 'aws_ondemand_prices_us-east-1_2026-07.csv'),
    advisor: path.join(data, 'aws_spot_advisor_linux_2025-06.csv'),
  });
  const market = new SimulatedSpotMarket(marketData, { seed, noticeMs: TERMINATION_NOTICE_MS.aws, instanceTypes: TYPES });
  const cloud = new SimulatedCloudProvider(market, 'aws');
  const now = market.startAt + 7 * 24 * 3_600_000;
  const random = seededRandom(seed);

  // The cluster: nodes spread evenly over pools, stateless pods scattered, then the stateful workloads placed by the planner.
  const offers = cloud.spotPoolsAt(now);
  const nodes: NodeView[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const offer = offers[i % offers.length];
    const capacityType = i < nodeCount * PERMANENT_NODE_SHARE ? 'on-demand' : 'spot';
    const node = cloud.adopt(offer, capacityType, now);
    nodes.push({ name: node.name, instanceType: node.instanceType, zone: node.zone, capacityType, allocatable: node.allocatable, free: { ...node.allocatable } });
  }
  const statefulPods = Math.round(podCount * statefulShare);
  for (let i = 0; i < podCount - statefulPods; i++) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const node = nodes[Math.floor(random() * nodes.length)];
      if (node.free.cpuMillis >= STATELESS_REQUESTS.cpuMillis && node.free.memoryMiB >= STATELESS_REQUESTS.memoryMiB) {
        node.free.cpuMillis -= STATELESS_REQUESTS.cpuMillis;
        node.free.memoryMiB -= STATELESS_REQUESTS.memoryMiB;
        break;
      }
    }
  }
  const nodeByName = new Map(nodes.map(n => [n.name, n]));
  const risk = new InterruptionRiskModel(SHIPPED_RISK_COEFFICIENTS);
  for (const p of market.pools) risk.track({ pool: p.id, zone: p.zone, advisorBand: p.advisorBand }, now - 7 * 24 * 3_600_000);
  const pools = capacityPools(cloud, risk, now);
  const workloads: WorkloadView[] = [];
  let book = new CapacityBook(nodes);
  const fleetMembersPerPool = new Map<string, number>();
  let grown = 0;
  for (let placed = 0, i = 0; placed < statefulPods; i++) {
    const replicas = Math.min(3 + Math.floor(random() * 3), statefulPods - placed);
    const members: MemberView[] = Array.from({ length: replicas }, (_, r) => ({
      pod: `stateful-${i}-${r}`,
      requests: STATEFUL_REQUESTS,
      ready: true,
      stateBytes: Math.round((STATE_GIB.min + random() * (STATE_GIB.max - STATE_GIB.min)) * 2 ** 30),
    }));
    const workload: WorkloadView = { id: `ns/stateful-${i}`, members, permanentRatio: 0.3, maxConcurrentMoves: 1 };
    const plan = planPlacement({ workload, nodes: book, pools, fleetMembersPerPool });
    for (const a of plan.assignments) {
      let nodeName: string;
      if (a.target.kind === 'node') nodeName = a.target.node;
      else {
        // The planner asked for a node in its best pool: the cluster grows, as Karpenter would grow it.
        const added = cloud.adopt(a.target.pool, a.target.capacityType, now);
        nodes.push({ name: added.name, instanceType: added.instanceType, zone: added.zone, capacityType: a.target.capacityType, allocatable: added.allocatable, free: { ...added.allocatable } });
        nodeName = added.name;
        grown++;
      }
      members.find(m => m.pod === a.pod)!.node = nodeName;
      const node = nodeByName.get(nodeName) ?? nodes[nodes.length - 1];
      nodeByName.set(nodeName, node);
      node.free.cpuMillis -= STATEFUL_REQUESTS.cpuMillis;
      node.free.memoryMiB -= STATEFUL_REQUESTS.memoryMiB;
      if (a.target.capacityType === 'spot') {
        const id = poolIdOf(a.target.pool);
        fleetMembersPerPool.set(id, (fleetMembersPerPool.get(id) ?? 0) + 1);
      }
    }
    // New nodes join the book for the next workloads.
    if (launchedNodes(plan)) book = new CapacityBook(nodes);
    workloads.push(workload);
    placed += replicas;
  }
  const spotNodes = nodes.filter(n => n.capacityType === 'spot');
  if (grown > 0) console.log(`  placing the stateful workloads added ${grown} nodes`);
  const reclaimCount = Math.round(spotNodes.length * reclaimShare);
  console.log(
    `scale: ${nodes.length} nodes (${spotNodes.length} spot), ${podCount} pods, ${statefulPods} stateful in ${workloads.length} workloads; ` +
      `reclaiming ${reclaimCount} spot nodes at once with a ${noticeMs / 1000} s notice, ${repeats} times`,
  );

  const planMs: number[] = [];
  // CPU time of the same span: what the plan costs when the machine is not shared.
  const planCpuMs: number[] = [];
  const firstMoveMs: number[] = [];
  let atRisk = 0;
  let within = 0;
  let unplanned = 0;
  let permanentFallbacks = 0;
  for (let rep = 0; rep < repeats; rep++) {
    const pick = seededRandom(seed * 1000 + rep);
    const reclaimed = new Set<string>();
    if (reclaimBy === 'pool') {
      const byPool = new Map<string, NodeView[]>();
      for (const n of spotNodes) byPool.set(poolIdOf(n), [...(byPool.get(poolIdOf(n)) ?? []), n]);
      const order = [...byPool.keys()].sort().map(k => ({ k, r: pick() })).sort((a, b) => a.r - b.r);
      for (const { k } of order) {
        for (const n of byPool.get(k)!) if (reclaimed.size < reclaimCount) reclaimed.add(n.name);
      }
    } else {
      while (reclaimed.size < reclaimCount) reclaimed.add(spotNodes[Math.floor(pick() * spotNodes.length)].name);
    }
    const deadline = now + noticeMs;
    let firstMoveAt: number | undefined;
    const started: PlannedMove[] = [];
    const dispatch = (move: PlannedMove) => {
      started.push(move);
      firstMoveAt ??= performance.now();
    };

    // From the notices: the picture with the notices applied, pool risks, the plan, and the first move out.
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const signals: DisruptionSignal[] = [];
    const views = nodes.map(n => {
      if (!reclaimed.has(n.name)) return n;
      signals.push({ node: n.name, reason: 'notice', deadline });
      return { ...n, terminatesAt: deadline };
    });
    for (const name of reclaimed) risk.recordInterruption(poolIdOf(nodeByName.get(name)!), now);
    const plan = planMigrations({ now, signals, workloads, nodes: views, pools: capacityPools(cloud, risk, now) });
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    for (const move of plan.moves) if (move.startAt <= now) dispatch(move);
    planMs.push(t1 - t0);
    planCpuMs.push((cpu.user + cpu.system) / 1000);
    firstMoveMs.push((firstMoveAt ?? t1) - t0);

    if (rep === 0) {
      atRisk = workloads.reduce((a, w) => a + w.members.filter(m => m.node && reclaimed.has(m.node)).length, 0);
      within = plan.moves.filter(m => m.meetsDeadline && m.finishAt <= deadline).length;
      unplanned = plan.unplanned.length;
      permanentFallbacks = plan.moves.filter(m => m.permanentFallback).length;
      const causes = new Map<string, number>();
      for (const u of plan.unplanned) causes.set(u.cause, (causes.get(u.cause) ?? 0) + 1);
      if (process.env.FERRY_SCALE_DEBUG) {
        const hist = new Map<string, number>();
        for (const m of plan.moves) {
          const k = `start+${Math.round((m.startAt - now) / 5000) * 5}s dur ${Math.round((m.finishAt - m.startAt) / 5000) * 5}s ${m.target.kind}`;
          hist.set(k, (hist.get(k) ?? 0) + 1);
        }
        console.log([...hist.entries()].sort().slice(0, 12).join('\n'));
        const perNode = new Map<string, number>();
        const perWorkload = new Map<string, number>();
        for (const w of workloads) for (const m of w.members) if (m.node && reclaimed.has(m.node)) {
          perNode.set(m.node, (perNode.get(m.node) ?? 0) + 1);
          perWorkload.set(w.id, (perWorkload.get(w.id) ?? 0) + 1);
        }
        const dist = (m: Map<string, number>) => { const d: Record<number, number> = {}; for (const v of m.values()) d[v] = (d[v] ?? 0) + 1; return JSON.stringify(d); };
        console.log('at-risk per reclaimed node', dist(perNode), 'per workload', dist(perWorkload));
        const late = plan.unplanned.slice(0, 3).map(u => u.detail);
        console.log(late.join('\n'));
      }
      console.log(`  first reclaim: ${atRisk} stateful pods at risk, ${within} planned to finish inside the notice, ${started.length} moves started at once; reported: ${JSON.stringify(Object.fromEntries(causes))}`);
    }
  }
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const results = {
    planP99Ms: round(percentile(planMs, 0.99), 1),
    planP50Ms: round(percentile(planMs, 0.5), 1),
    planCpuP99Ms: round(percentile(planCpuMs, 0.99), 1),
    loadAverage1m: round(os.loadavg()[0], 2),
    cpus: os.cpus().length,
    firstMoveMs: round(percentile(firstMoveMs, 0.99), 1),
    peakRssMiB: round(peakRssMiB, 1),
    atRiskStateful: atRisk,
    plannedWithinNotice: within,
    reportedNotInTime: unplanned,
    permanentFallbacks,
    nodes: nodes.length,
    nodesAddedByPlacement: grown,
    spotNodes: spotNodes.length,
    reclaimedNodes: reclaimCount,
    pods: podCount,
    statefulPods,
    statefulWorkloads: workloads.length,
    noticeSeconds: noticeMs / 1000,
    reclaimBy,
    repeats,
  };
  console.log(
    `  plan after notices: p50 ${results.planP50Ms} ms, p99 ${results.planP99Ms} ms (target < 200 ms); CPU time p99 ${results.planCpuP99Ms} ms; load ${results.loadAverage1m} on ${results.cpus} CPUs`,
  );
  console.log(`  first move started: p99 ${results.firstMoveMs} ms after the notices (target < 1000 ms)`);
  console.log(`  peak RSS ${results.peakRssMiB} MiB (target < 1024 MiB)`);
  console.log(`  at-risk stateful pods ${results.atRiskStateful}, planned within the ${noticeMs / 1000} s notice ${results.plannedWithinNotice}`);
  console.log(`wrote ${writeResults('scale', results)}`);
}

function capacityPools(cloud: SimulatedCloudProvider, risk: InterruptionRiskModel, at: number): CapacityPool[] {
  return cloud.spotPoolsAt(at).flatMap(offer => [
    {
      instanceType: offer.instanceType,
      zone: offer.zone,
      capacityType: 'spot' as const,
      priceUsdPerHour: offer.spotPriceUsdPerHour,
      onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
      interruptionRisk: risk.risk(poolIdOf(offer), at),
      allocatable: offer.allocatable,
      launchable: offer.launchable,
    },
    {
      instanceType: offer.instanceType,
      zone: offer.zone,
      capacityType: 'on-demand' as const,
      priceUsdPerHour: offer.onDemandPriceUsdPerHour,
      onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
      interruptionRisk: 0,
      allocatable: offer.allocatable,
      launchable: true,
    },
  ]);
}

function launchedNodes(plan: { assignments: { target: { kind: string } }[] }): boolean {
  return plan.assignments.some(a => a.target.kind === 'new-node');
}

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

main();
