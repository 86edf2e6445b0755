/**
 * The operator's control loop over an in-memory cluster on the simulated cloud:
 * the same decision core that runs against a real cluster (placement planner,
 * risk model, migration planner, proactive governor, accounting), with the
 * cluster and the cloud replaced by the simulator. Demo mode and the benchmarks
 * run on it.
 *
 * Time advances in steps; in each step the cloud's notices and reclaims are
 * applied, finished moves land, the planners decide, and cost and availability
 * accrue for the step at the prices and readiness of its start.
 */
import type { CapacityType, MigrationReason } from '../api/v1alpha1';
import { AvailabilityLedger, CostLedger } from '../core/accounting';
import type { PlacementTarget } from '../core/capacity';
import { DEFAULT_MOVE_TIMING, DisruptionSignal, LateMoveReason, MoveTiming, planMigrations, UnplannedMove } from '../core/migrationPlanner';
import { CapacityPool, MemberView, NodeView, nodeShareOf, poolIdOf, Resources, WorkloadView } from '../core/model';
import { PlacementInput, PlacementPlan, planPlacement } from '../core/placement';
import { ProactiveMoveGovernor } from '../core/proactive';
import { freeSlotsOf, headroomSlotsFor, planHeadroom } from '../core/headroom';
import { quorumOf } from '../core/quorum';
import { savingOf } from '../core/replacement';
import { InterruptionRiskModel } from '../core/risk';
import { SimulatedCloudProvider, SimulatedNode } from '../cloud/SimulatedCloudProvider';

/** A stateful workload of the simulated fleet. */
export interface FleetWorkloadSpec {
  /** `namespace/name`. */
  id: string;
  replicas: number;
  permanentRatio: number;
  maxConcurrentMoves: number;
  pdbMaxUnavailable?: number;
  requests: Resources;
  stateBytes: number;
  availabilityTarget: number;
  /** When false the workload is not opted in: it stays on permanent nodes and is not accounted. */
  enabled: boolean;
}

/** A member of a fleet workload. */
export interface FleetMember {
  pod: string;
  node?: string;
  ready: boolean;
}

/** A move the loop carried out or is carrying out. */
export interface FleetMove {
  id: number;
  workload: string;
  pod: string;
  sourceNode?: string;
  targetNode: string;
  reason: MigrationReason | 'placement' | 'reschedule';
  /** Live: the member serves until the switch-over. Otherwise it is down until the move ends. */
  live: boolean;
  startAt: number;
  /** When the target node is Ready (the start when it existed). */
  targetReadyAt: number;
  /** True when the move launched its target node. */
  targetLaunched: boolean;
  transferStartAt: number;
  switchoverAt: number;
  finishAt: number;
  deadline?: number;
  bytes: number;
  outcome?: 'Succeeded' | 'Failed';
  meetsDeadline: boolean;
  /** Why the planner knew it would miss its deadline, when it did. */
  lateReason?: LateMoveReason;
  /** A member on permanent capacity that goes back to spot. */
  returnsToSpot?: boolean;
  /** A spot member that goes to a cheaper spot pool. */
  toCheaperSpot?: boolean;
}

/** A fleet workload's state. */
export interface FleetWorkload {
  spec: FleetWorkloadSpec;
  members: FleetMember[];
  cost: CostLedger;
  availability: AvailabilityLedger;
  /** Times a reclaim took a node that held one of its members. */
  interruptionsHit: number;
}

/** A placement policy: the core planner for Ferry, something simpler for a baseline. */
export type PlacementStrategy = (input: PlacementInput) => PlacementPlan;

/** How the loop runs. */
export interface FleetOptions {
  provider: SimulatedCloudProvider;
  workloads: readonly FleetWorkloadSpec[];
  startAt: number;
  placement?: PlacementStrategy;
  /** Live moves on notices with the migration planner (Ferry); otherwise members are rescheduled after their node is gone. */
  liveMigration?: boolean;
  /** Predicted risk for ranking pools and proactive moves; without it every pool's risk is 0. */
  riskModel?: InterruptionRiskModel;
  proactive?: ProactiveMoveGovernor;
  timing?: MoveTiming;
  /** How often the placement planner revisits every workload (to return fallbacks to spot). */
  replanEveryMs?: number;
  /** Keep spare room on Ready spot nodes for moves on a notice (Ferry). */
  headroom?: boolean;
  /**
   * A member above the floor on permanent capacity returns to spot only when
   * that saves this share of its cost (the re-placement controller's
   * `RebalancePolicy.priceMoveSavings`); at any saving when omitted.
   */
  priceMoveSavings?: number;
  /** A spot member moves to another spot pool that saves this share (`PlacementInput.cheaperSpotSavings`); never when omitted. */
  cheaperSpotSavings?: number;
}

/** How often predicted risks are re-read when nothing else happened. */
export const PREDICTION_EVERY_MS = 60_000;

/** Default interval between full placement passes. */
export const DEFAULT_REPLAN_EVERY_MS = 15 * 60_000;

/** The control loop over the simulated cluster. */
export class FleetSimulation {
  readonly workloads = new Map<string, FleetWorkload>();
  readonly moves: FleetMove[] = [];
  readonly unplanned: (UnplannedMove & { at: number })[] = [];
  private readonly inFlight = new Map<string, FleetMove>();
  private readonly provider: SimulatedCloudProvider;
  private readonly placement: PlacementStrategy;
  private readonly timing: MoveTiming;
  private readonly replanEveryMs: number;
  private now: number;
  private lastReplan = -Infinity;
  private lastDecision = -Infinity;
  private moveSerial = 0;
  private dirty = true;
  /** Time during which every enabled workload had its quorum. */
  private fleetUpMs = 0;
  private fleetObservedMs = 0;
  private readonly headroomNodes = new Set<string>();
  private headroomSpend = 0;

  constructor(private readonly options: FleetOptions) {
    this.provider = options.provider;
    this.placement = options.placement ?? planPlacement;
    this.timing = options.timing ?? DEFAULT_MOVE_TIMING;
    this.replanEveryMs = options.replanEveryMs ?? DEFAULT_REPLAN_EVERY_MS;
    this.now = options.startAt;
    for (const pool of this.provider.market.pools) {
      options.riskModel?.track({ pool: pool.id, zone: pool.zone, advisorBand: pool.advisorBand, onDemandUsdPerHour: pool.onDemandUsdPerHour }, options.startAt);
      options.riskModel?.recordPrice(pool.id, options.startAt, this.provider.market.spotPrice(pool.id, options.startAt));
    }
    for (const spec of options.workloads) this.addWorkload(spec);
    // The cluster as found already has its headroom.
    if (options.headroom) this.keepHeadroom(this.capacityPools(), true);
  }

  /** The loop's current time. */
  get time(): number {
    return this.now;
  }

  /** Adds a workload, placed at once on nodes that are already running (the cluster as it was found). */
  addWorkload(spec: FleetWorkloadSpec): FleetWorkload {
    const name = spec.id.slice(spec.id.indexOf('/') + 1);
    const workload: FleetWorkload = {
      spec,
      members: Array.from({ length: spec.replicas }, (_, i) => ({ pod: `${name}-${i}`, ready: false })),
      cost: new CostLedger(),
      availability: new AvailabilityLedger(spec.availabilityTarget),
      interruptionsHit: 0,
    };
    this.workloads.set(spec.id, workload);
    const plan = this.placement({
      workload: this.view(workload, true),
      nodes: this.nodeViews(),
      pools: this.capacityPools(),
      fleetMembersPerPool: this.membersPerSpotPool(),
    });
    for (const a of plan.assignments) {
      const member = workload.members.find(m => m.pod === a.pod)!;
      const node =
        a.target.kind === 'node' ? a.target.node : this.provider.launch(a.target.pool, a.target.capacityType, this.now, this.now)?.name;
      if (!node) continue;
      member.node = node;
      member.ready = true;
    }
    this.dirty = true;
    return workload;
  }

  /** Changes a workload's policy; the next step re-plans it. */
  updateWorkload(id: string, change: Partial<Omit<FleetWorkloadSpec, 'id' | 'replicas'>>): void {
    const workload = this.requireWorkload(id);
    const wasEnabled = workload.spec.enabled;
    workload.spec = { ...workload.spec, ...change };
    if (!wasEnabled && workload.spec.enabled) workload.availability = new AvailabilityLedger(workload.spec.availabilityTarget);
    this.lastReplan = -Infinity;
    this.dirty = true;
  }

  /** Sends a termination notice to a spot node now. */
  noticeNode(name: string): void {
    this.provider.noticeNode(name, this.now);
    this.dirty = true;
  }

  /** Runs the loop up to `until` in steps of at most `stepMs`. */
  advanceTo(until: number, stepMs = 10_000): void {
    while (this.now < until) {
      const next = Math.min(until, this.now + stepMs);
      this.step(next);
    }
  }

  /** Runs the decisions at the current time without advancing it. */
  decideNow(): void {
    this.decide();
  }

  /** Nodes now, as the planners see them. */
  nodeViews(): NodeView[] {
    const used = new Map<string, Resources>();
    const add = (node: string | undefined, r: Resources) => {
      if (!node) return;
      const u = used.get(node) ?? { cpuMillis: 0, memoryMiB: 0 };
      used.set(node, { cpuMillis: u.cpuMillis + r.cpuMillis, memoryMiB: u.memoryMiB + r.memoryMiB });
    };
    for (const w of this.workloads.values()) for (const m of w.members) add(m.node, w.spec.requests);
    for (const move of this.inFlight.values()) add(move.targetNode, this.requireWorkload(move.workload).spec.requests);
    return this.provider.listNodes().map(n => {
      const u = used.get(n.name) ?? { cpuMillis: 0, memoryMiB: 0 };
      return {
        name: n.name,
        instanceType: n.instanceType,
        zone: n.zone,
        capacityType: n.capacityType,
        allocatable: n.allocatable,
        free: { cpuMillis: n.allocatable.cpuMillis - u.cpuMillis, memoryMiB: n.allocatable.memoryMiB - u.memoryMiB },
        terminatesAt: n.terminatesAt,
        readyAt: n.readyAt > this.now ? n.readyAt : undefined,
      };
    });
  }

  /** Spot and permanent pools at the current time, with the model's risk. */
  capacityPools(): CapacityPool[] {
    const pools: CapacityPool[] = [];
    for (const offer of this.provider.spotPoolsAt(this.now)) {
      const id = poolIdOf(offer);
      const risk = this.options.riskModel ? this.options.riskModel.risk(id, this.now) : 0;
      pools.push({
        instanceType: offer.instanceType,
        zone: offer.zone,
        capacityType: 'spot',
        priceUsdPerHour: offer.spotPriceUsdPerHour,
        onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
        interruptionRisk: risk,
        allocatable: offer.allocatable,
        launchable: offer.launchable,
      });
      pools.push({
        instanceType: offer.instanceType,
        zone: offer.zone,
        capacityType: 'on-demand',
        priceUsdPerHour: offer.onDemandPriceUsdPerHour,
        onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
        interruptionRisk: 0,
        allocatable: offer.allocatable,
        launchable: true,
      });
    }
    return pools;
  }

  /** What empty headroom nodes cost so far (not attributed to any workload). */
  headroomSpendUsd(): number {
    return this.headroomSpend;
  }

  /** Share of observed time during which every enabled workload had its quorum. */
  fleetAvailability(): number {
    return this.fleetObservedMs === 0 ? 1 : this.fleetUpMs / this.fleetObservedMs;
  }

  /** The node of the simulated cloud. */
  node(name: string): SimulatedNode | undefined {
    return this.provider.node(name);
  }

  /** The move of a pod under way, if any. */
  moveInFlight(workload: string, pod: string): FleetMove | undefined {
    return this.inFlight.get(`${workload}/${pod}`);
  }

  private step(next: number): void {
    this.account(next - this.now);
    const from = this.now;
    this.now = next;
    const model = this.options.riskModel;
    for (const signal of this.provider.signalsBetween(from, next)) {
      this.dirty = true;
      if (signal.kind === 'capacity-lost') model?.recordInterruption(poolIdOf(signal.pool), signal.at);
      else if (signal.kind === 'capacity-restored') model?.recordRecovery(poolIdOf(signal.pool), signal.at);
      else if (signal.kind === 'termination-notice') {
        for (const w of this.workloads.values()) {
          if (w.spec.enabled) w.interruptionsHit += w.members.filter(m => m.node === signal.node).length;
        }
      } else if (signal.kind === 'terminated') this.nodeGone(signal.node, signal.at);
    }
    if (model) {
      for (const pool of this.provider.market.pools) {
        for (const change of this.provider.market.priceChanges(pool.id, from, next)) model.recordPrice(pool.id, change.at, change.price);
      }
    }
    for (const [key, move] of this.inFlight) {
      if (move.finishAt > next) continue;
      this.inFlight.delete(key);
      this.dirty = true;
      const member = this.member(move);
      if (!this.provider.node(move.targetNode)) {
        move.outcome = 'Failed';
        continue;
      }
      move.outcome = 'Succeeded';
      member.node = move.targetNode;
      member.ready = true;
    }
    if (this.dirty) this.releaseEmptyNodes();
    const predictionDue = !!this.options.riskModel && next - this.lastDecision >= PREDICTION_EVERY_MS;
    if (this.dirty || predictionDue || next - this.lastReplan >= this.replanEveryMs) this.decide();
  }

  private nodeGone(name: string, at: number): void {
    for (const w of this.workloads.values()) {
      for (const m of w.members) {
        if (m.node !== name) continue;
        m.node = undefined;
        m.ready = false;
      }
    }
    for (const [key, move] of this.inFlight) {
      if (move.targetNode === name) {
        move.outcome = 'Failed';
        move.finishAt = at;
        this.inFlight.delete(key);
      }
    }
  }

  private decide(): void {
    this.dirty = false;
    this.lastDecision = this.now;
    const pools = this.capacityPools();
    if (this.options.liveMigration !== false) this.planMoves(pools);
    const replanAll = this.now - this.lastReplan >= this.replanEveryMs;
    if (replanAll) this.lastReplan = this.now;
    const fleetMembersPerPool = this.membersPerSpotPool();
    for (const w of this.workloads.values()) {
      const needsPlace = w.members.some(m => !m.node && !this.inFlight.has(`${w.spec.id}/${m.pod}`));
      if (!needsPlace && !replanAll) continue;
      const view = this.view(w, true);
      const nodes = this.nodeViews();
      const plan = this.placement({ workload: view, nodes, pools, fleetMembersPerPool, cheaperSpotSavings: this.options.cheaperSpotSavings });
      for (const a of plan.assignments) {
        if (a.moves && a.target.capacityType === 'spot') {
          const id = poolIdOf(a.target.pool);
          fleetMembersPerPool.set(id, (fleetMembersPerPool.get(id) ?? 0) + 1);
        }
        if (!a.moves || this.inFlight.has(`${w.spec.id}/${a.pod}`)) continue;
        const member = w.members.find(m => m.pod === a.pod)!;
        // A placed member moves only live: when Ferry manages it, or back to permanent nodes when its workload opted out.
        const movesLive = this.options.liveMigration !== false && (w.spec.enabled || a.target.capacityType === 'on-demand');
        if (member.node && !movesLive) continue;
        // A fallback returns to spot as the re-placement controller returns it: when that saves enough.
        const from = member.node ? nodes.find(n => n.name === member.node) : undefined;
        if (
          this.options.priceMoveSavings !== undefined &&
          from?.capacityType === 'on-demand' &&
          a.target.capacityType === 'spot' &&
          savingOf(from, a.target, w.spec.requests, pools) < this.options.priceMoveSavings
        ) {
          continue;
        }
        this.startMove(w, member, a.target, member.node ? 'placement' : 'reschedule', !!member.node);
        const started = this.inFlight.get(`${w.spec.id}/${a.pod}`);
        if (started && from?.capacityType === 'on-demand' && a.target.capacityType === 'spot') started.returnsToSpot = true;
        if (started && a.reason === 'cheaper-spot') started.toCheaperSpot = true;
      }
    }
    if (this.options.headroom) this.keepHeadroom(pools);
  }

  /** Members of enabled workloads per spot pool, counting moving members where they go. */
  private membersPerSpotPool(): Map<string, number> {
    const perPool = new Map<string, number>();
    for (const w of this.workloads.values()) {
      if (!w.spec.enabled) continue;
      for (const m of w.members) {
        const at = this.inFlight.get(`${w.spec.id}/${m.pod}`)?.targetNode ?? m.node;
        const node = at ? this.provider.node(at) : undefined;
        if (node?.capacityType === 'spot') perPool.set(poolIdOf(node), (perPool.get(poolIdOf(node)) ?? 0) + 1);
      }
    }
    return perPool;
  }

  private keepHeadroom(pools: CapacityPool[], readyNow = false): void {
    const perPool = this.membersPerSpotPool();
    let requests: Resources = { cpuMillis: 0, memoryMiB: 0 };
    for (const w of this.workloads.values()) {
      if (!w.spec.enabled) continue;
      requests = {
        cpuMillis: Math.max(requests.cpuMillis, w.spec.requests.cpuMillis),
        memoryMiB: Math.max(requests.memoryMiB, w.spec.requests.memoryMiB),
      };
    }
    for (const name of this.headroomNodes) if (!this.provider.node(name)) this.headroomNodes.delete(name);
    const slots = headroomSlotsFor(perPool.values());
    if (requests.cpuMillis === 0) return;
    const nodes = this.nodeViews();
    const plan = planHeadroom({ nodes, pools, requests, slots, membersPerPool: perPool });
    for (const pool of plan.launch) {
      const node = this.provider.launch(pool, 'spot', this.now, readyNow ? this.now : undefined);
      if (node) this.headroomNodes.add(node.name);
    }
    let spare = plan.freeSlots;
    for (const node of nodes) {
      if (!this.headroomNodes.has(node.name) || node.free.cpuMillis !== node.allocatable.cpuMillis) continue;
      const own = freeSlotsOf(node.free, requests);
      if (spare - own < slots || node.terminatesAt !== undefined) continue;
      spare -= own;
      this.headroomNodes.delete(node.name);
      this.provider.release(node.name);
    }
  }

  private planMoves(pools: CapacityPool[]): void {
    const signals: DisruptionSignal[] = [];
    const nodes = this.nodeViews();
    for (const n of nodes) if (n.terminatesAt !== undefined) signals.push({ node: n.name, reason: 'notice', deadline: n.terminatesAt });
    const enabled = [...this.workloads.values()].filter(w => w.spec.enabled);
    if (this.options.proactive && this.options.riskModel) {
      const risk = new Map(pools.filter(p => p.capacityType === 'spot').map(p => [poolIdOf(p), p.interruptionRisk]));
      const membersOn = new Map<string, number>();
      for (const w of enabled) for (const m of w.members) if (m.node) membersOn.set(m.node, (membersOn.get(m.node) ?? 0) + 1);
      const candidates = nodes
        .filter(n => n.capacityType === 'spot' && n.terminatesAt === undefined)
        .map(n => ({ node: n.name, pool: poolIdOf(n), risk: risk.get(poolIdOf(n)) ?? 0, members: membersOn.get(n.name) ?? 0 }));
      signals.push(...this.options.proactive.decide(this.now, candidates));
    }
    if (signals.length === 0) return;
    const views = enabled.map(w => this.view(w, false));
    const plan = planMigrations({ now: this.now, signals, workloads: views, nodes, pools, timing: this.timing });
    for (const u of plan.unplanned) {
      if (u.cause !== 'quorum') this.unplanned.push({ ...u, at: this.now });
    }
    for (const move of plan.moves) {
      if (move.startAt > this.now) continue; // planned again when its turn comes, with the cluster as it is then
      const w = this.workloads.get(move.workload)!;
      const member = w.members.find(m => m.pod === move.pod)!;
      this.startMove(w, member, move.target, move.reason, true, move.deadline, move.meetsDeadline, move.lateReason);
    }
  }

  private startMove(
    w: FleetWorkload,
    member: FleetMember,
    target: PlacementTarget,
    reason: FleetMove['reason'],
    live: boolean,
    deadline?: number,
    meetsDeadline = true,
    lateReason?: LateMoveReason,
  ): void {
    let targetNode: string;
    let targetReadyAt = this.now;
    if (target.kind === 'node') {
      targetNode = target.node;
      targetReadyAt = Math.max(this.now, this.provider.node(target.node)?.readyAt ?? this.now);
    } else {
      const launched = this.provider.launch(target.pool, target.capacityType, this.now);
      if (!launched) return;
      targetNode = launched.name;
      targetReadyAt = launched.readyAt;
    }
    const transferStartAt = targetReadyAt + this.timing.podStartMs;
    const switchoverAt = transferStartAt + (w.spec.stateBytes / this.timing.bytesPerSecond) * 1000;
    const move: FleetMove = {
      id: ++this.moveSerial,
      workload: w.spec.id,
      pod: member.pod,
      sourceNode: member.node,
      targetNode,
      reason,
      live,
      startAt: this.now,
      targetReadyAt,
      targetLaunched: target.kind === 'new-node',
      transferStartAt,
      switchoverAt,
      finishAt: switchoverAt + this.timing.switchoverMs,
      deadline,
      bytes: w.spec.stateBytes,
      meetsDeadline,
      lateReason,
    };
    this.moves.push(move);
    this.inFlight.set(`${w.spec.id}/${member.pod}`, move);
  }

  /** The workload as the core sees it; with `targetsAsPlaced`, a moving member counts where it is going. */
  private view(w: FleetWorkload, targetsAsPlaced: boolean): WorkloadView {
    const spec = w.spec;
    return {
      id: spec.id,
      permanentRatio: spec.enabled ? spec.permanentRatio : 1,
      maxConcurrentMoves: spec.maxConcurrentMoves,
      pdbMaxUnavailable: spec.pdbMaxUnavailable,
      members: w.members.map((m): MemberView => {
        const move = this.inFlight.get(`${spec.id}/${m.pod}`);
        return {
          pod: m.pod,
          node: move && targetsAsPlaced ? move.targetNode : m.node,
          requests: spec.requests,
          ready: m.ready,
          stateBytes: spec.stateBytes,
          moving: !!move,
        };
      }),
    };
  }

  private account(elapsedMs: number): void {
    if (elapsedMs <= 0) return;
    const priceCache = new Map<string, number>();
    let fleetUp = true;
    let anyEnabled = false;
    for (const w of this.workloads.values()) {
      if (!w.spec.enabled) continue;
      anyEnabled = true;
      const samples = [];
      for (const m of w.members) {
        const node = m.node ? this.provider.node(m.node) : undefined;
        if (!node) continue;
        const pool = this.provider.market.pool(poolIdOf(node));
        let price = pool.onDemandUsdPerHour;
        if (node.capacityType === 'spot') {
          price = priceCache.get(pool.id) ?? this.provider.market.spotPrice(pool.id, this.now);
          priceCache.set(pool.id, price);
        }
        samples.push({
          capacityType: node.capacityType as CapacityType,
          nodePriceUsdPerHour: price,
          onDemandPriceUsdPerHour: pool.onDemandUsdPerHour,
          nodeShare: nodeShareOf(w.spec.requests, node.allocatable),
        });
      }
      w.cost.accrue(elapsedMs, samples);
      const ready = w.members.filter(m => m.ready && m.node).length;
      const required = quorumOf(w.members.length);
      w.availability.observe(elapsedMs, ready, required);
      if (ready < required) fleetUp = false;
    }
    if (this.headroomNodes.size > 0) {
      const occupied = new Set<string>();
      for (const w of this.workloads.values()) for (const m of w.members) if (m.node) occupied.add(m.node);
      for (const name of this.headroomNodes) {
        const node = this.provider.node(name);
        if (!node || occupied.has(name)) continue;
        this.headroomSpend += this.provider.market.spotPrice(poolIdOf(node), this.now) * (elapsedMs / 3_600_000);
      }
    }
    if (anyEnabled) {
      this.fleetObservedMs += elapsedMs;
      if (fleetUp) this.fleetUpMs += elapsedMs;
    }
  }

  private releaseEmptyNodes(): void {
    const used = new Set<string>();
    for (const w of this.workloads.values()) for (const m of w.members) if (m.node) used.add(m.node);
    for (const move of this.inFlight.values()) {
      used.add(move.targetNode);
      if (move.sourceNode) used.add(move.sourceNode);
    }
    for (const node of this.provider.listNodes()) {
      if (!used.has(node.name) && !this.headroomNodes.has(node.name)) this.provider.release(node.name);
    }
  }

  private member(move: FleetMove): FleetMember {
    return this.requireWorkload(move.workload).members.find(m => m.pod === move.pod)!;
  }

  private requireWorkload(id: string): FleetWorkload {
    const w = this.workloads.get(id);
    if (!w) throw new Error(`no workload ${id} in the simulated fleet`);
    return w;
  }
}
