import type {
  FerryClusterClient,
  MigrationQuery,
  SpotPoolSummary,
} from '../api/FerryClusterClient';
import {
  FERRY_API_VERSION,
  Migration,
  ReplicaPlacement,
  SpotPolicy,
  SpotPolicySpec,
  WorkloadKind,
  WorkloadSummary,
} from '../api/v1alpha1';
import { AcceleratedClock, Clock } from '../core/clock';

/**
 * Demo mode: the operator running against an in-memory cluster and a simulated
 * spot market, so the portal has something real to show with no cluster.
 *
 * This first version places replicas with a simple rule and reclaims spot nodes
 * at random; the decision core (placement planner, risk model, migration planner)
 * and the replay of real spot-market data replace those rules.
 */

/** A spot pool of the demo market. */
interface DemoPool {
  instanceType: string;
  zone: string;
  onDemandUsdPerHour: number;
  spotUsdPerHour: number;
  interruptionRisk: number;
}

// us-east-1, from ../shared/data: on-demand prices from Karpenter's generated price
// table (aws_ondemand_prices_us-east-1_2026-07.csv), spot savings and interruption
// bands from the AWS Spot Instance Advisor feed (aws_spot_advisor_linux_2025-06.csv).
// The advisor is per region, so each type has the same price in every zone here.
const DEMO_INSTANCE_TYPES = [
  { instanceType: 'r5.large', onDemand: 0.126, savingsPct: 60, band: 0 },
  { instanceType: 'm6i.large', onDemand: 0.096, savingsPct: 63, band: 2 },
  { instanceType: 'r7i.large', onDemand: 0.1323, savingsPct: 65, band: 2 },
  { instanceType: 'm5.large', onDemand: 0.096, savingsPct: 66, band: 3 },
];
const DEMO_ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
// Monthly interruption frequency per advisor band (upper edge, >20 % taken as 25 %).
const BAND_MONTHLY_FREQUENCY = [0.05, 0.1, 0.15, 0.2, 0.25];
const MINUTES_PER_MONTH = 30 * 24 * 60;

/** Members of a workload needed to serve: a majority. */
export function quorumOf(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}

interface DemoNode {
  name: string;
  pool: DemoPool;
  capacityType: 'spot' | 'on-demand';
  /** Set when a termination notice arrived: the node goes away at this time. */
  terminatesAt?: number;
}

interface DemoPod {
  name: string;
  node: string;
  ready: boolean;
}

interface DemoWorkload {
  summary: WorkloadSummary;
  pods: DemoPod[];
  optedInAt?: number;
  spendUsd: number;
  onDemandSpendUsd: number;
  quorumMs: number;
  observedMs: number;
}

/** A workload of the demo cluster. */
export interface DemoWorkloadSeed {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  replicas: number;
  /** Value of the `backstage.io/kubernetes-id` label. */
  kubernetesId: string;
}

/** Options of the demo operator. */
export interface DemoOperatorOptions {
  workloads: DemoWorkloadSeed[];
  /** Simulated time per wall-clock time; 60 makes a wall second a minute. */
  speedup?: number;
  /** Simulated minutes between random spot reclaims. */
  reclaimEveryMinutes?: number;
  /** Seed of the random choices, for a repeatable demo. */
  seed?: number;
  clock?: Clock;
}

/** A small deterministic random source (mulberry32). */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AWS_NOTICE_MS = 2 * 60 * 1000;
const TICK_WALL_MS = 1000;

/** The operator in demo mode: an in-memory cluster that implements the portal's view of a cluster. */
export class DemoOperator implements FerryClusterClient {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly pools: DemoPool[];
  private readonly nodes = new Map<string, DemoNode>();
  private readonly workloads = new Map<string, DemoWorkload>();
  private readonly policies = new Map<string, SpotPolicy>();
  private readonly migrations: Migration[] = [];
  private readonly reclaimEveryMs: number;
  private lastTick: number;
  private lastReclaim: number;
  private nodeSerial = 0;
  private timer?: NodeJS.Timeout;

  constructor(options: DemoOperatorOptions) {
    this.clock =
      options.clock ?? new AcceleratedClock(Date.now(), options.speedup ?? 60);
    this.random = randomSource(options.seed ?? 1);
    this.reclaimEveryMs = (options.reclaimEveryMinutes ?? 30) * 60 * 1000;
    this.pools = DEMO_INSTANCE_TYPES.flatMap(t =>
      DEMO_ZONES.map(zone => ({
        instanceType: t.instanceType,
        zone,
        onDemandUsdPerHour: t.onDemand,
        spotUsdPerHour: +(t.onDemand * (1 - t.savingsPct / 100)).toFixed(4),
        interruptionRisk:
          (BAND_MONTHLY_FREQUENCY[t.band] * 20) / MINUTES_PER_MONTH,
      })),
    );
    this.lastTick = this.clock.now();
    this.lastReclaim = this.lastTick;
    for (const seed of options.workloads) {
      const summary: WorkloadSummary = {
        kind: seed.kind,
        namespace: seed.namespace,
        name: seed.name,
        labels: { 'backstage.io/kubernetes-id': seed.kubernetesId },
        replicas: seed.replicas,
        readyReplicas: seed.replicas,
      };
      const workload: DemoWorkload = {
        summary,
        pods: [],
        spendUsd: 0,
        onDemandSpendUsd: 0,
        quorumMs: 0,
        observedMs: 0,
      };
      for (let i = 0; i < seed.replicas; i++) {
        const node = this.addNode(this.pools[i % this.pools.length], 'on-demand');
        workload.pods.push({ name: `${seed.name}-${i}`, node: node.name, ready: true });
      }
      this.workloads.set(key(seed.namespace, seed.name), workload);
    }
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

  /** Advances the simulation to the clock's now: placement, reclaims, accounting. */
  tick(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.lastTick);
    this.lastTick = now;
    this.account(elapsed);
    this.terminateNodes(now);
    if (now - this.lastReclaim >= this.reclaimEveryMs) {
      this.lastReclaim = now;
      const spot = [...this.nodes.values()].filter(
        n => n.capacityType === 'spot' && !n.terminatesAt && this.podsOn(n.name).length > 0,
      );
      if (spot.length > 0) {
        this.reclaimNode(spot[Math.floor(this.random() * spot.length)].name);
      }
    }
    for (const [k, policy] of this.policies) {
      const workload = this.workloads.get(k);
      if (workload && policy.spec.enabled) this.place(workload, policy.spec);
      if (workload) policy.status = this.statusOf(workload, policy);
    }
  }

  /** Sends a termination notice to a spot node, as the cloud would before a reclaim. */
  reclaimNode(nodeName: string): void {
    const node = this.nodes.get(nodeName);
    if (!node || node.capacityType !== 'spot') {
      throw new Error(`No spot node named ${nodeName}`);
    }
    const now = this.clock.now();
    node.terminatesAt = now + AWS_NOTICE_MS;
    for (const [k, workload] of this.workloads) {
      const policy = this.policies.get(k);
      for (const pod of workload.pods.filter(p => p.node === nodeName)) {
        const target = this.pickNode(workload, 'spot', nodeName);
        const migration = this.recordMigration(workload, pod, node, target.name, now, policy);
        pod.node = target.name;
        migration.status!.targetNode = target.name;
      }
    }
  }

  /** Spot nodes that currently run replicas of opted-in workloads. */
  listSpotNodesInUse(): string[] {
    return [...this.nodes.values()]
      .filter(n => n.capacityType === 'spot' && this.podsOn(n.name).length > 0)
      .map(n => n.name);
  }

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    return [...this.workloads.values()]
      .map(w => w.summary)
      .filter(w => !query.namespace || w.namespace === query.namespace)
      .filter(w =>
        Object.entries(query.labelSelector).every(([k, v]) => w.labels[k] === v),
      );
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
      throw new Error(
        `No ${spec.workloadRef.kind} ${spec.workloadRef.name} in namespace ${namespace}`,
      );
    }
    const existing = this.policies.get(k);
    const policy: SpotPolicy = {
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: {
        name,
        namespace,
        generation: (existing?.metadata.generation ?? 0) + 1,
        creationTimestamp:
          existing?.metadata.creationTimestamp ?? new Date(this.clock.now()).toISOString(),
        annotations: { ...existing?.metadata.annotations, ...annotations },
      },
      spec: structuredClone(spec),
      status: existing?.status,
    };
    this.policies.set(k, policy);
    if (spec.enabled) {
      workload.optedInAt ??= this.clock.now();
      this.place(workload, spec);
    }
    policy.status = this.statusOf(workload, policy);
    return structuredClone(policy);
  }

  async listMigrations(query: MigrationQuery = {}): Promise<Migration[]> {
    return this.migrations
      .filter(m => !query.namespace || m.metadata.namespace === query.namespace)
      .filter(m => !query.workloadName || m.spec.workloadRef.name === query.workloadName)
      .filter(m => !query.since || (m.metadata.creationTimestamp ?? '') >= query.since)
      .map(m => structuredClone(m));
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    return this.pools.map(pool => ({
      provider: 'simulated' as const,
      region: 'us-east-1',
      zone: pool.zone,
      instanceType: pool.instanceType,
      spotPriceUsdPerHour: pool.spotUsdPerHour,
      onDemandPriceUsdPerHour: pool.onDemandUsdPerHour,
      interruptionRisk: pool.interruptionRisk,
      replicas: [...this.workloads.values()]
        .flatMap(w => w.pods)
        .filter(p => {
          const n = this.nodes.get(p.node);
          return n?.capacityType === 'spot' && n.pool === pool;
        }).length,
    }));
  }

  private addNode(pool: DemoPool, capacityType: 'spot' | 'on-demand'): DemoNode {
    this.nodeSerial += 1;
    const suffix = capacityType === 'spot' ? 'spot' : 'od';
    const node: DemoNode = {
      name: `ip-10-0-${this.nodeSerial}-${suffix}.${pool.zone}.compute.internal`,
      pool,
      capacityType,
    };
    this.nodes.set(node.name, node);
    return node;
  }

  private podsOn(nodeName: string): DemoPod[] {
    return [...this.workloads.values()].flatMap(w => w.pods).filter(p => p.node === nodeName);
  }

  /** Keeps the permanent floor and spreads spot replicas over pools, one node each. */
  private place(workload: DemoWorkload, spec: SpotPolicySpec): void {
    const n = workload.pods.length;
    const permanent = Math.min(n, Math.max(Math.ceil(spec.permanentRatio * n), 1));
    const onPermanent = workload.pods.filter(
      p => this.nodes.get(p.node)?.capacityType === 'on-demand',
    );
    for (const pod of onPermanent.slice(permanent)) {
      pod.node = this.pickNode(workload, 'spot', pod.node).name;
    }
  }

  /** A fresh node in the cheapest pool whose zone and type the workload uses least. */
  private pickNode(
    workload: DemoWorkload,
    capacityType: 'spot' | 'on-demand',
    avoidNode: string,
  ): DemoNode {
    const used = workload.pods
      .filter(p => p.node !== avoidNode)
      .map(p => this.nodes.get(p.node)?.pool)
      .filter((p): p is DemoPool => !!p);
    const avoidPool = this.nodes.get(avoidNode)?.pool;
    const score = (pool: DemoPool) =>
      used.filter(u => u.zone === pool.zone).length * 10 +
      used.filter(u => u === pool).length * 100 +
      (pool === avoidPool ? 1000 : 0) +
      pool.spotUsdPerHour;
    const pool = [...this.pools].sort((a, b) => score(a) - score(b))[0];
    return this.addNode(pool, capacityType);
  }

  private recordMigration(
    workload: DemoWorkload,
    pod: DemoPod,
    node: DemoNode,
    targetNode: string,
    now: number,
    policy: SpotPolicy | undefined,
  ): Migration {
    const at = new Date(now).toISOString();
    const method = policy?.spec.migration ?? 'auto';
    const migration: Migration = {
      apiVersion: FERRY_API_VERSION,
      kind: 'Migration',
      metadata: {
        name: `${pod.name}-${now.toString(36)}`,
        namespace: workload.summary.namespace,
        creationTimestamp: at,
      },
      spec: {
        workloadRef: { kind: workload.summary.kind, name: workload.summary.name },
        pod: pod.name,
        sourceNode: node.name,
        targetNode,
        reason: 'notice',
        driver: method === 'auto' ? 'valkey' : method,
        deadline: new Date(node.terminatesAt ?? now).toISOString(),
      },
      status: {
        phase: 'Succeeded',
        phases: [{ phase: 'Succeeded', startedAt: at, finishedAt: at }],
        bytesMoved: 0,
        completedAt: at,
      },
    };
    this.migrations.push(migration);
    return migration;
  }

  private terminateNodes(now: number): void {
    for (const node of [...this.nodes.values()]) {
      if (node.terminatesAt !== undefined && node.terminatesAt <= now) {
        this.nodes.delete(node.name);
      }
    }
    for (const node of [...this.nodes.values()]) {
      if (this.podsOn(node.name).length === 0) this.nodes.delete(node.name);
    }
  }

  private account(elapsedMs: number): void {
    const hours = elapsedMs / 3_600_000;
    for (const [k, workload] of this.workloads) {
      if (!this.policies.get(k)?.spec.enabled) continue;
      for (const pod of workload.pods) {
        const node = this.nodes.get(pod.node);
        if (!node) continue;
        const price =
          node.capacityType === 'spot' ? node.pool.spotUsdPerHour : node.pool.onDemandUsdPerHour;
        workload.spendUsd += price * hours;
        workload.onDemandSpendUsd += node.pool.onDemandUsdPerHour * hours;
      }
      workload.observedMs += elapsedMs;
      const ready = workload.pods.filter(p => p.ready && this.nodes.has(p.node)).length;
      if (ready >= quorumOf(workload.pods.length)) workload.quorumMs += elapsedMs;
    }
  }

  private statusOf(workload: DemoWorkload, policy: SpotPolicy) {
    const replicas: ReplicaPlacement[] = workload.pods.map(pod => {
      const node = this.nodes.get(pod.node)!;
      const spot = node.capacityType === 'spot';
      return {
        pod: pod.name,
        node: node.name,
        capacityType: node.capacityType,
        instanceType: node.pool.instanceType,
        zone: node.pool.zone,
        hourlyCostUsd: spot ? node.pool.spotUsdPerHour : node.pool.onDemandUsdPerHour,
        interruptionRisk: spot ? node.pool.interruptionRisk : 0,
        ready: pod.ready,
      };
    });
    const observed =
      workload.observedMs === 0 ? 1 : workload.quorumMs / workload.observedMs;
    const target = policy.spec.availabilityTarget;
    const ready = replicas.filter(r => r.ready).length;
    const migrations = this.migrations.filter(
      m =>
        m.metadata.namespace === workload.summary.namespace &&
        m.spec.workloadRef.name === workload.summary.name,
    );
    return {
      observedGeneration: policy.metadata.generation,
      replicas,
      cost: {
        hourlyCostUsd: sum(replicas.map(r => r.hourlyCostUsd)),
        onDemandHourlyCostUsd: sum(
          workload.pods.map(p => this.nodes.get(p.node)!.pool.onDemandUsdPerHour),
        ),
        spendToDateUsd: workload.spendUsd,
        savingsToDateUsd: workload.onDemandSpendUsd - workload.spendUsd,
      },
      availability: {
        target,
        observed,
        errorBudgetRemaining: target >= 1 ? 1 : 1 - (1 - observed) / (1 - target),
        requiredMembers: quorumOf(replicas.length),
        readyMembers: ready,
      },
      migrationsTotal: migrations.length,
      lastMigration: migrations.at(-1)?.metadata.name,
      conditions: [
        {
          type: 'Ready',
          status: ready >= quorumOf(replicas.length) ? ('True' as const) : ('False' as const),
          reason: policy.spec.enabled ? 'Placed' : 'OptedOut',
          message: policy.spec.enabled
            ? `${replicas.filter(r => r.capacityType === 'spot').length} of ${replicas.length} replicas on spot`
            : 'Spot placement is disabled for this workload',
          lastTransitionTime: new Date(this.clock.now()).toISOString(),
          observedGeneration: policy.metadata.generation,
        },
      ],
    };
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
