import {
  parsePolicyAnnotations,
  policyAnnotationChanges,
  SPOT_POLICY_ANNOTATIONS,
} from '@ferry/plugin-ferry-common';
import type { DemoClusterReport } from '@ferry/plugin-ferry-node';
import type {
  FerryClusterClient,
  MigrationQuery,
  SpotPoolSummary,
} from '../api/FerryClusterClient';
import {
  Condition,
  FERRY_API_VERSION,
  Migration,
  MigrationPhase,
  ReplicaPlacement,
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
  SpotPolicySpec,
  SpotPolicyStatus,
  WorkloadSummary,
} from '../api/v1alpha1';
import { TERMINATION_NOTICE_MS } from '../cloud/CloudProvider';
import { loadMarketData, shippedMarketFiles } from '../cloud/marketFiles';
import { SimulatedCloudProvider } from '../cloud/SimulatedCloudProvider';
import { SimulatedMarketData, SimulatedSpotMarket } from '../cloud/SimulatedSpotMarket';
import { AcceleratedClock, Clock } from '../core/clock';
import { nodeShareOf, poolIdOf, Resources } from '../core/model';
import { quorumOf as majorityOf } from '../core/quorum';
import { seededRandom } from '../core/random';
import { InterruptionRiskModel, RiskCoefficients } from '../core/risk';
import { ProactiveMoveGovernor } from '../core/proactive';
import { FleetMove, FleetSimulation, FleetWorkload } from './FleetSimulation';
import type { DemoWorkloadSeed } from './DemoCluster';
import { SHIPPED_RISK_COEFFICIENTS } from '../core/shippedRiskCoefficients';

/**
 * Demo mode: the operator's decision core running against an in-memory cluster
 * on the `simulated` cloud, which replays real spot prices (AWS eu-west-1) and
 * real measured interruption traces shipped in `operator/data`, so the portal has
 * something real to show with no cluster.
 */

/** Members of a workload needed to serve: a majority. */
export function quorumOf(replicas: number): number {
  return majorityOf(replicas);
}

export type { DemoWorkloadSeed };

/** Options of the demo operator. */
export interface DemoOperatorOptions {
  workloads: DemoWorkloadSeed[];
  /** Simulated time per wall-clock time; 60 makes a wall second a minute. */
  speedup?: number;
  /**
   * Simulated minutes between extra reclaims of a random spot node in use, on
   * top of the replayed interruptions; none when omitted.
   */
  reclaimEveryMinutes?: number;
  /** Seed of the market replay and the random choices, for a repeatable demo. */
  seed?: number;
  clock?: Clock;
  /** Market data to replay; the data shipped in `operator/data` when omitted. */
  market?: SimulatedMarketData;
  /** Learned coefficients of the risk model; the ones fitted on the shipped traces when omitted. */
  riskCoefficients?: RiskCoefficients;
  /**
   * Days of the market replayed before the clock's now, so that the cluster
   * starts with that much past: see {@link DemoOperator.replayHistory}. None
   * when omitted.
   */
  historyDays?: number;
}

/** Requests of a demo member: a small Valkey/queue member. */
const DEMO_MEMBER_REQUESTS: Resources = { cpuMillis: 1000, memoryMiB: 6 * 1024 };
const DEMO_STATE_BYTES = 2 ** 30;
/** Instance types of the demo market: memory-optimised and general-purpose, x86 and Graviton. */
const DEMO_INSTANCE_TYPES = ['r5.large', 'r6i.large', 'r6g.large', 'm5.large', 'm6i.large', 'm6g.large', 'r5.xlarge'];
/** Replay starts a day into the data so the risk model has seen some prices. */
const REPLAY_WARMUP_MS = 24 * 3_600_000;
/** Largest simulated step of one tick: notices are acted on within it. */
const DEMO_STEP_MS = 5_000;
const TICK_WALL_MS = 1000;
const DAY_MS = 24 * 3_600_000;
/**
 * Simulated time between two regular reports of the replayed history. The
 * portal keeps its samples by the hour and takes spend from the operator's
 * running totals, so an hour loses nothing there; what it reads as an instant
 * (the ready members) is reported whenever it changes.
 */
export const HISTORY_REPORT_EVERY_MS = 60 * 60_000;
/** Order of phases of a move and what ends each: see `phasesOf`. */
const MOVE_PHASES: MigrationPhase[] = ['Planned', 'PreparingTarget', 'Transferring', 'SwitchingOver', 'Verifying', 'CleaningUp'];

let shippedMarket: SimulatedMarketData | undefined;

interface DemoWorkload {
  seed: DemoWorkloadSeed;
  id: string;
}

/** The operator in demo mode: an in-memory cluster that implements the portal's view of a cluster. */
export class DemoOperator implements FerryClusterClient {
  private readonly clock: Clock;
  private readonly fleet: FleetSimulation;
  private readonly provider: SimulatedCloudProvider;
  private readonly risk: InterruptionRiskModel;
  private readonly workloads = new Map<string, DemoWorkload>();
  private readonly policies = new Map<string, SpotPolicy>();
  private readonly random: () => number;
  private readonly reclaimEveryMs?: number;
  /** Market time minus clock time. */
  private readonly offsetMs: number;
  /** Market time at which the replayed history ends and the live demo begins. */
  private readonly historyEnd: number;
  /** True while {@link DemoOperator.replayHistory} runs; ticks wait for it. */
  private replaying = false;
  private lastReclaim: number;
  private timer?: NodeJS.Timeout;

  constructor(options: DemoOperatorOptions) {
    this.clock = options.clock ?? new AcceleratedClock(Date.now(), options.speedup ?? 60);
    const seed = options.seed ?? 1;
    this.random = seededRandom(seed ^ 0x5eed);
    this.reclaimEveryMs = options.reclaimEveryMinutes === undefined ? undefined : options.reclaimEveryMinutes * 60_000;
    const data = options.market ?? (shippedMarket ??= loadMarketData(shippedMarketFiles()));
    const market = new SimulatedSpotMarket(data, {
      seed,
      noticeMs: TERMINATION_NOTICE_MS.aws,
      instanceTypes: options.market ? undefined : DEMO_INSTANCE_TYPES,
    });
    const historyDays = options.historyDays ?? 0;
    if (!(historyDays >= 0)) {
      throw new Error(`historyDays must be zero or a positive number of days, got ${options.historyDays}`);
    }
    const start = market.startAt + REPLAY_WARMUP_MS;
    this.historyEnd = start + historyDays * DAY_MS;
    if (this.historyEnd >= market.endAt) {
      const days = Math.floor((market.endAt - start) / DAY_MS);
      throw new Error(`historyDays is ${historyDays}, but the market data covers ${days} days after its first; ask for fewer`);
    }
    this.offsetMs = this.historyEnd - this.clock.now();
    this.provider = new SimulatedCloudProvider(market, 'aws');
    this.risk = new InterruptionRiskModel(options.riskCoefficients ?? SHIPPED_RISK_COEFFICIENTS);
    this.fleet = new FleetSimulation({
      provider: this.provider,
      workloads: [],
      startAt: start,
      riskModel: this.risk,
      proactive: new ProactiveMoveGovernor(),
      headroom: true,
    });
    for (const s of options.workloads) {
      const id = key(s.namespace, s.name);
      this.workloads.set(id, { seed: s, id });
      this.fleet.addWorkload({
        id,
        replicas: s.replicas,
        permanentRatio: 1,
        maxConcurrentMoves: 1,
        requests: DEMO_MEMBER_REQUESTS,
        stateBytes: s.stateBytes ?? DEMO_STATE_BYTES,
        availabilityTarget: 0.999,
        enabled: false,
      });
    }
    if (historyDays > 0) {
      for (const s of options.workloads) this.optInFromCatalog(s);
      this.fleet.decideNow();
    }
    this.lastReclaim = this.clock.now();
  }

  /**
   * Runs the history that `historyDays` asked for, from its first day to the
   * clock's now, and yields the cluster's SpotPolicies every `everyMs` of it and
   * whenever the ready members of an opted-in workload change, oldest first:
   * what a portal that had watched the cluster all along would have read. The
   * history runs once; when it has run (a tick runs it too, unobserved) this
   * yields nothing.
   */
  *replayHistory(everyMs = HISTORY_REPORT_EVERY_MS): Generator<DemoClusterReport> {
    if (!(everyMs > 0)) throw new Error(`a history report needs a positive interval, got ${everyMs} ms`);
    if (this.replaying) throw new Error('the demo history is already being replayed');
    this.replaying = true;
    try {
      let ready = this.readyMembers();
      while (this.fleet.time < this.historyEnd) {
        const reportAt = Math.min(this.historyEnd, this.fleet.time + everyMs);
        while (this.fleet.time < reportAt) {
          this.fleet.advanceTo(Math.min(reportAt, this.fleet.time + DEMO_STEP_MS), DEMO_STEP_MS);
          const now = this.readyMembers();
          if (now === ready) continue;
          ready = now;
          if (this.fleet.time < reportAt) yield this.report();
        }
        yield this.report();
      }
    } finally {
      this.replaying = false;
    }
  }

  /** Ready members of each opted-in workload, as one comparable string. */
  private readyMembers(): string {
    const counts: number[] = [];
    for (const w of this.fleet.workloads.values()) {
      if (w.spec.enabled) counts.push(w.members.filter(m => m.ready && m.node).length);
    }
    return counts.join(',');
  }

  private report(): DemoClusterReport {
    this.refreshStatuses();
    return {
      at: this.fleet.time - this.offsetMs,
      policies: [...this.policies.values()].map(p => structuredClone(p)),
    };
  }

  /** A workload whose catalog entity opts it in has been on Ferry since the history began. */
  private optInFromCatalog(seed: DemoWorkloadSeed): void {
    if (!seed.entity) return;
    const annotations = parsePolicyAnnotations(seed.entity.annotations);
    if (annotations.errors.length > 0) {
      throw new Error(`The demo workload ${seed.namespace}/${seed.name} has malformed annotations: ${annotations.errors.join('; ')}`);
    }
    if (annotations.settings.enabled !== true) return;
    const { applied } = policyAnnotationChanges(annotations, {});
    this.writePolicy(
      seed.namespace,
      seed.name,
      {
        ...SPOT_POLICY_DEFAULTS,
        workloadRef: { kind: seed.kind, name: seed.name },
        ...annotations.settings,
        enabled: true,
      },
      // As the portal's catalog sync writes them (PolicyService), so that its
      // first sync finds the policy as it would have left it.
      {
        [SPOT_POLICY_ANNOTATIONS.entityRef]: seed.entity.ref,
        [SPOT_POLICY_ANNOTATIONS.source]: 'catalog',
        [SPOT_POLICY_ANNOTATIONS.catalogAnnotations]: JSON.stringify(applied),
      },
    );
  }

  /** Starts the simulation loop. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), TICK_WALL_MS);
    this.timer.unref?.();
  }

  /** Stops the simulation loop. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Advances the simulation to the clock's now: reclaims, moves, placement, accounting. */
  tick(): void {
    if (this.replaying) return;
    const now = this.clock.now();
    while (this.reclaimEveryMs !== undefined && now - this.lastReclaim >= this.reclaimEveryMs) {
      this.lastReclaim += this.reclaimEveryMs;
      this.fleet.advanceTo(this.lastReclaim + this.offsetMs, DEMO_STEP_MS);
      const inUse = this.listReclaimableSpotNodes();
      if (inUse.length > 0) this.fleet.noticeNode(inUse[Math.floor(this.random() * inUse.length)]);
    }
    this.fleet.advanceTo(now + this.offsetMs, DEMO_STEP_MS);
    this.refreshStatuses();
  }

  /** Sends a termination notice to a spot node, as the cloud would before a reclaim, and plans the moves at once. */
  reclaimNode(nodeName: string): void {
    this.fleet.advanceTo(this.clock.now() + this.offsetMs, DEMO_STEP_MS);
    this.fleet.noticeNode(nodeName);
    this.fleet.decideNow();
    this.refreshStatuses();
  }

  /** Spot nodes that currently run replicas of opted-in workloads. */
  listSpotNodesInUse(): string[] {
    const nodes = new Set<string>();
    for (const w of this.fleet.workloads.values()) {
      if (!w.spec.enabled) continue;
      for (const m of w.members) {
        if (m.node && this.provider.node(m.node)?.capacityType === 'spot') nodes.add(m.node);
      }
    }
    return [...nodes].sort();
  }

  /** Spot nodes in use that have no termination notice yet: the ones a reclaim would still move replicas off. */
  listReclaimableSpotNodes(): string[] {
    return this.listSpotNodesInUse().filter(n => this.provider.node(n)?.terminatesAt === undefined);
  }

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    return [...this.workloads.values()]
      .map(w => this.summaryOf(w))
      .filter(w => !query.namespace || w.namespace === query.namespace)
      .filter(w => Object.entries(query.labelSelector).every(([k, v]) => w.labels[k] === v));
  }

  async listSpotPolicies(namespace?: string): Promise<SpotPolicy[]> {
    return [...this.policies.values()]
      .filter(p => !namespace || p.metadata.namespace === namespace)
      .map(p => structuredClone(p));
  }

  async getSpotPolicy(namespace: string, name: string): Promise<SpotPolicy | undefined> {
    const policy = [...this.policies.values()].find(
      p => p.metadata.namespace === namespace && p.metadata.name === name,
    );
    return policy && structuredClone(policy);
  }

  async applySpotPolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
  ): Promise<SpotPolicy> {
    const k = key(namespace, spec.workloadRef.name);
    const workload = this.workloads.get(k);
    if (!workload) {
      throw new Error(`No ${spec.workloadRef.kind} ${spec.workloadRef.name} in namespace ${namespace}`);
    }
    this.fleet.advanceTo(this.clock.now() + this.offsetMs, DEMO_STEP_MS);
    return structuredClone(this.writePolicy(namespace, name, spec, annotations));
  }

  /** Creates or replaces a SpotPolicy at the simulation's time and plans for it at once. */
  private writePolicy(
    namespace: string,
    name: string,
    spec: SpotPolicySpec,
    annotations?: Record<string, string>,
  ): SpotPolicy {
    const k = key(namespace, spec.workloadRef.name);
    const existing = this.policies.get(k);
    const policy: SpotPolicy = {
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: {
        name,
        namespace,
        generation: (existing?.metadata.generation ?? 0) + 1,
        creationTimestamp: existing?.metadata.creationTimestamp ?? this.simulatedNow(),
        annotations: { ...existing?.metadata.annotations, ...annotations },
      },
      spec: structuredClone(spec),
      status: existing?.status,
    };
    this.policies.set(k, policy);
    this.fleet.updateWorkload(k, {
      enabled: spec.enabled,
      permanentRatio: spec.permanentRatio,
      availabilityTarget: spec.availabilityTarget,
      maxConcurrentMoves: spec.maxConcurrentMoves,
    });
    this.fleet.decideNow();
    policy.status = this.statusOf(this.fleet.workloads.get(k)!, policy);
    return policy;
  }

  async listMigrations(query: MigrationQuery = {}): Promise<Migration[]> {
    return this.fleet.moves
      .filter(m => m.live && m.reason !== 'placement')
      .map(m => this.migrationOf(m))
      .filter(m => !query.namespace || m.metadata.namespace === query.namespace)
      .filter(m => !query.workloadName || m.spec.workloadRef.name === query.workloadName)
      .filter(m => !query.since || (m.metadata.creationTimestamp ?? '') >= query.since);
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    const at = this.fleet.time;
    const replicas = new Map<string, number>();
    for (const w of this.fleet.workloads.values()) {
      if (!w.spec.enabled) continue;
      for (const m of w.members) {
        const node = m.node ? this.provider.node(m.node) : undefined;
        if (node?.capacityType === 'spot') replicas.set(poolIdOf(node), (replicas.get(poolIdOf(node)) ?? 0) + 1);
      }
    }
    return this.provider.spotPoolsAt(at).map(p => ({
      provider: 'simulated' as const,
      region: p.region,
      zone: p.zone,
      instanceType: p.instanceType,
      spotPriceUsdPerHour: p.spotPriceUsdPerHour,
      onDemandPriceUsdPerHour: p.onDemandPriceUsdPerHour,
      interruptionRisk: this.risk.risk(poolIdOf(p), at),
      replicas: replicas.get(poolIdOf(p)) ?? 0,
    }));
  }

  private summaryOf(w: DemoWorkload): WorkloadSummary {
    const fleet = this.fleet.workloads.get(w.id)!;
    return {
      kind: w.seed.kind,
      namespace: w.seed.namespace,
      name: w.seed.name,
      labels: { 'backstage.io/kubernetes-id': w.seed.kubernetesId },
      replicas: w.seed.replicas,
      readyReplicas: fleet.members.filter(m => m.ready && m.node).length,
    };
  }

  private refreshStatuses(): void {
    for (const [k, policy] of this.policies) {
      const fleet = this.fleet.workloads.get(k);
      if (fleet) policy.status = this.statusOf(fleet, policy);
    }
  }

  private statusOf(workload: FleetWorkload, policy: SpotPolicy): SpotPolicyStatus {
    const at = this.fleet.time;
    const replicas: ReplicaPlacement[] = [];
    let onDemandHourly = 0;
    for (const m of workload.members) {
      const node = m.node ? this.provider.node(m.node) : undefined;
      if (!node) continue;
      const pool = this.provider.market.pool(poolIdOf(node));
      const share = nodeShareOf(workload.spec.requests, node.allocatable);
      const spot = node.capacityType === 'spot';
      replicas.push({
        pod: m.pod,
        node: node.name,
        capacityType: node.capacityType,
        instanceType: node.instanceType,
        zone: node.zone,
        hourlyCostUsd: (spot ? this.provider.market.spotPrice(pool.id, at) : pool.onDemandUsdPerHour) * share,
        interruptionRisk: spot ? this.risk.risk(pool.id, at) : 0,
        ready: m.ready,
      });
      onDemandHourly += pool.onDemandUsdPerHour * share;
    }
    const cost = workload.cost.totals();
    const availability = workload.availability.totals();
    const required = quorumOf(workload.members.length);
    const ready = replicas.filter(r => r.ready).length;
    const migrations = this.fleet.moves.filter(m => m.workload === workload.spec.id && m.live && m.reason !== 'placement');
    const spotCount = replicas.filter(r => r.capacityType === 'spot').length;
    const condition: Condition = {
      type: 'Ready',
      status: ready >= required ? 'True' : 'False',
      reason: policy.spec.enabled ? 'Placed' : 'OptedOut',
      message: policy.spec.enabled
        ? `${spotCount} of ${workload.members.length} replicas on spot`
        : 'Spot placement is disabled for this workload',
      lastTransitionTime: this.simulatedNow(),
      observedGeneration: policy.metadata.generation,
    };
    return {
      observedGeneration: policy.metadata.generation,
      replicas,
      cost: {
        hourlyCostUsd: replicas.reduce((a, r) => a + r.hourlyCostUsd, 0),
        onDemandHourlyCostUsd: onDemandHourly,
        spendToDateUsd: cost.spendUsd,
        savingsToDateUsd: cost.savingsUsd,
      },
      availability: {
        target: policy.spec.availabilityTarget,
        observed: availability.availability,
        errorBudgetRemaining: availability.errorBudgetRemaining,
        requiredMembers: required,
        readyMembers: ready,
      },
      migrationsTotal: migrations.length,
      lastMigration: migrations.length > 0 ? migrationName(migrations[migrations.length - 1]) : undefined,
      conditions: [condition],
    };
  }

  /** The simulation's time on the demo's clock (the two differ by the market's offset). */
  private simulatedNow(): string {
    return new Date(this.fleet.time - this.offsetMs).toISOString();
  }

  private migrationOf(move: FleetMove): Migration {
    const w = this.workloads.get(move.workload)!;
    const toClock = (t: number) => new Date(t - this.offsetMs).toISOString();
    const now = this.fleet.time;
    const phases = phasesOf(move).filter(p => p.startedAt <= now);
    const finished = move.outcome && move.finishAt <= now;
    const finalPhase = move.outcome === 'Succeeded' ? 'Succeeded' : 'Failed';
    const current = finished ? finalPhase : phases[phases.length - 1].phase;
    return {
      apiVersion: FERRY_API_VERSION,
      kind: 'Migration',
      metadata: { name: migrationName(move), namespace: w.seed.namespace, creationTimestamp: toClock(move.startAt) },
      spec: {
        workloadRef: { kind: w.seed.kind, name: w.seed.name },
        pod: move.pod,
        sourceNode: move.sourceNode ?? '',
        targetNode: move.targetNode,
        reason: move.reason === 'placement' || move.reason === 'reschedule' ? 'notice' : move.reason,
        driver: 'valkey',
        deadline: move.deadline === undefined ? undefined : toClock(move.deadline),
      },
      status: {
        phase: current,
        phases: phases.map(p => ({
          phase: p.phase,
          startedAt: toClock(p.startedAt),
          finishedAt: p.finishedAt <= now ? toClock(p.finishedAt) : undefined,
        })),
        targetNode: move.targetNode,
        targetPod: `${move.pod}-ferry-${move.id}`,
        bytesMoved: now >= move.switchoverAt ? move.bytes : 0,
        writePauseMs: now >= move.finishAt ? move.finishAt - move.switchoverAt : undefined,
        message: move.meetsDeadline ? undefined : 'the move could not finish before the node went away',
        completedAt: move.outcome ? toClock(move.finishAt) : undefined,
      },
    };
  }
}

/** The phases of a move with their simulated times. */
function phasesOf(move: FleetMove): { phase: MigrationPhase; startedAt: number; finishedAt: number }[] {
  const ends = [move.startAt, move.transferStartAt, move.switchoverAt, move.finishAt, move.finishAt, move.finishAt];
  let start = move.startAt;
  return MOVE_PHASES.map((phase, i) => {
    const out = { phase, startedAt: start, finishedAt: ends[i] };
    start = ends[i];
    return out;
  });
}

function migrationName(move: FleetMove): string {
  return `${move.pod}-${move.id}`;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
