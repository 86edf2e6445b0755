import type { V1Pod } from '@kubernetes/client-node';
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
  Migration,
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
  WorkloadKind,
  WorkloadSummary,
} from '../api/v1alpha1';
import { regionOfZone } from '../cloud/marketData';
import { TERMINATION_NOTICE_MS } from '../cloud/CloudProvider';
import { loadMarketData, shippedMarketFiles } from '../cloud/marketFiles';
import { SimulatedCloudProvider } from '../cloud/SimulatedCloudProvider';
import {
  SimulatedMarketData,
  SimulatedSpotMarket,
} from '../cloud/SimulatedSpotMarket';
import { NODE_LABELS } from '../cloud/nodeLabels';
import type { Timer, VirtualClock } from '../core/clock';
import type { CapacityPool, Resources } from '../core/model';
import { seededRandom } from '../core/random';
import {
  DEPLOYMENTS,
  MIGRATIONS,
  PODS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../kube/client/resources';
import { PoolRiskFeed } from '../kube/pools/PoolRiskFeed';
import { PriceBook } from '../kube/pools/PoolPriceFeed';
import { SoleLeader } from '../kube/leadership/SoleLeader';
import type { MigrationDriver } from '../migration/MigrationDriver';
import type { OperatorLog } from '../OperatorPorts';
import { Operator, wireOperator } from '../wireOperator';
import { SimulatedCloudFeed } from './SimulatedCloudFeed';
import { SimulatedCluster } from './SimulatedCluster';
import {
  SimulatedClusterClient,
  WORKLOAD_LABEL,
} from './SimulatedClusterClient';
import { SimulatedMoveDriver } from './SimulatedMoveDriver';
import { SimulatedScheduler } from './SimulatedScheduler';

/** A workload of the demo cluster. */
export interface DemoWorkloadSeed {
  kind: WorkloadKind;
  namespace: string;
  name: string;
  replicas: number;
  /** Value of the `backstage.io/kubernetes-id` label. */
  kubernetesId: string;
  /** Bytes of state per member; 1 GiB when omitted. */
  stateBytes?: number;
  /**
   * The catalog entity the workload belongs to, with its `ferry.dev/*`
   * annotations as its catalog-info.yaml has them. When the demo replays a
   * history, a workload whose annotations opt it in has run on Ferry since the
   * history began, under the SpotPolicy the portal's catalog sync writes.
   */
  entity?: { ref: string; annotations: Record<string, string> };
}

/** Requests of a demo member: a small Valkey/queue member. */
const DEMO_MEMBER_REQUESTS: Resources = {
  cpuMillis: 1000,
  memoryMiB: 6 * 1024,
};
/** Bytes of state of a demo member when its seed says none. */
const DEMO_STATE_BYTES = 2 ** 30;
/** Instance types of the demo market: memory-optimised and general-purpose, x86 and Graviton. */
export const DEMO_INSTANCE_TYPES = [
  'r5.large',
  'r6i.large',
  'r6g.large',
  'm5.large',
  'm6i.large',
  'm6g.large',
  'r5.xlarge',
];
/** Permanent nodes the demo cluster starts with in each zone. */
const PERMANENT_NODES_PER_ZONE = 2;
/** The methods the demo's driver stands in for: each moves in the engine's measured time. */
const DEMO_METHODS: MigrationDriver['method'][] = [
  'valkey',
  'checkpoint',
  'volume',
  'reschedule',
];
const DAY_MS = 24 * 3_600_000;
/** The replay starts a day into the market data, so the risk model has seen some prices. */
export const REPLAY_WARMUP_MS = DAY_MS;
/**
 * Longest the cloud goes unlooked at: it is also looked at on each of its own
 * events (a notice, a reclaim, capacity coming back, a node becoming Ready).
 */
const CLOUD_LOOK_MS = 10 * 60_000;
/**
 * Simulated time between two regular reports of the replayed history. The
 * portal keeps its samples by the hour and takes spend from the operator's
 * running totals, so an hour loses nothing there; what it reads as an instant
 * (the ready members) is reported whenever it changes, as seen at this step.
 */
export const HISTORY_REPORT_EVERY_MS = 60 * 60_000;
const HISTORY_STEP_MS = 60_000;
/**
 * How often the demo's operator accrues spend into SpotPolicy status and reads
 * risk when nothing changes (a cluster's default is a minute for both). The
 * portal keeps samples by the hour, and a change (a move, a notice) is acted on
 * at once either way; a minute would make the month's replay 20 times longer.
 */
const DEMO_STATUS_REFRESH_MS = 15 * 60_000;
const DEMO_PREDICTION_INTERVAL_MS = 5 * 60_000;
/**
 * Wall time the portal's reclaim waits for the operator to plan its moves, and
 * its policy write for the operator's status of it, while the demo runs live.
 */
const WAIT_LIVE_WALL_MS = 5_000;

const silent: OperatorLog = { info: () => {}, warn: () => {} };

/** Options of the demo cluster. */
export interface DemoClusterOptions {
  workloads: DemoWorkloadSeed[];
  /** The demo's time: the history runs on it at once, the live demo at `speedup`. */
  clock: VirtualClock;
  /** Seed of the market replay and the random choices. */
  seed: number;
  /**
   * Market time that the clock's now stands for; a day into the market data
   * when left out.
   */
  marketNow?: number;
  /**
   * Days of the market replayed from the clock's now before the live demo
   * starts (see {@link DemoCluster.replayHistory}); none when left out.
   */
  historyDays?: number;
  /** Simulated time per wall-clock time once live; 60 when left out. */
  speedup?: number;
  /** Simulated minutes between extra reclaims of a random spot node in use, once live; none when left out. */
  reclaimEveryMinutes?: number;
  market?: SimulatedMarketData;
  log?: OperatorLog;
}

/**
 * The demo's cluster: the operator's real controllers (`wireOperator`) on the
 * simulated cloud. The cloud replays the shipped market; its nodes, notices
 * and reclaims reach the operator through an in-memory API server
 * (`SimulatedCluster`), members are created through the operator's placement
 * webhook and bound by a stand-in scheduler, and moves take the time the
 * engine measured. Everything waits on the demo's `VirtualClock`: the replayed
 * history jumps from one timer to the next, the live demo follows the wall
 * clock `speedup` times faster. The portal reads it as any cluster
 * (`FerryClusterClient`, through `client`).
 */
export class DemoCluster implements FerryClusterClient {
  readonly cluster: SimulatedCluster;
  readonly provider: SimulatedCloudProvider;
  readonly operator: Operator;
  readonly client: SimulatedClusterClient;
  readonly risk: PoolRiskFeed;
  private readonly clock: VirtualClock;
  private readonly feed: SimulatedCloudFeed;
  private readonly scheduler: SimulatedScheduler;
  private readonly random: () => number;
  /** Market time minus the demo clock's time. */
  readonly offsetMs: number;
  /** The clock's time at which the replayed history ends. */
  readonly historyEnd: number;
  private lastAdvance: number;
  private booted?: Promise<void>;
  private replayed = false;
  private replaying = false;
  private cloudTimer?: Timer;
  private reclaimTimer?: Timer;
  private stopped = false;

  constructor(private readonly options: DemoClusterOptions) {
    const { clock } = options;
    this.clock = clock;
    this.random = seededRandom(options.seed ^ 0x5eed);
    const data = options.market ?? loadMarketData(shippedMarketFiles());
    const market = new SimulatedSpotMarket(data, {
      seed: options.seed,
      noticeMs: TERMINATION_NOTICE_MS.aws,
      instanceTypes: options.market ? undefined : DEMO_INSTANCE_TYPES,
    });
    this.provider = new SimulatedCloudProvider(market, 'aws');
    const historyDays = options.historyDays ?? 0;
    if (!(historyDays >= 0)) {
      throw new Error(
        `historyDays must be zero or a positive number of days, got ${options.historyDays}`,
      );
    }
    const marketNow = options.marketNow ?? market.startAt + REPLAY_WARMUP_MS;
    if (marketNow + historyDays * DAY_MS >= market.endAt) {
      const days = Math.floor((market.endAt - marketNow) / DAY_MS);
      throw new Error(
        `historyDays is ${historyDays}, but the market data covers ${days} days after the demo's start; ask for fewer`,
      );
    }
    this.offsetMs = marketNow - clock.now();
    this.historyEnd = clock.now() + historyDays * DAY_MS;
    this.replayed = historyDays === 0;
    this.lastAdvance = clock.now();
    this.cluster = new SimulatedCluster(() => clock.now());
    this.feed = new SimulatedCloudFeed({
      cluster: this.cluster,
      provider: this.provider,
      offsetMs: this.offsetMs,
    });
    this.risk = new PoolRiskFeed({
      clock,
      spotPrices: () => this.prices(),
    });
    const stateBytes = new Map(
      options.workloads.map(w => [
        `${w.namespace}/${w.name}`,
        w.stateBytes ?? DEMO_STATE_BYTES,
      ]),
    );
    this.operator = wireOperator(
      {
        identity: 'demo',
        informers: this.cluster.informers,
        writes: this.cluster,
        migrations: this.cluster,
        events: { record: async () => {} },
        leadership: callbacks => new SoleLeader(callbacks),
        drivers: DEMO_METHODS.map(
          method =>
            new SimulatedMoveDriver({
              method,
              cluster: this.cluster,
              clock,
              timers: clock,
              stateBytesOf: (namespace, pod) =>
                stateBytes.get(
                  `${namespace}/${this.workloadOf(namespace, pod)}`,
                ) ?? DEMO_STATE_BYTES,
            }),
        ),
        pools: async () => this.pools(),
        prices: () => this.prices(),
        clock,
        timers: clock,
        log: options.log ?? silent,
      },
      {
        replacement: {},
        risk: { feed: this.risk, intervalMs: DEMO_PREDICTION_INTERVAL_MS },
        statusRefreshMs: DEMO_STATUS_REFRESH_MS,
      },
    );
    this.scheduler = new SimulatedScheduler({
      cluster: this.cluster,
      admit: (pod, namespace) =>
        this.operator.admitPod(pod, {
          namespace,
          operation: 'CREATE',
          dryRun: false,
        }),
    });
    this.client = new SimulatedClusterClient({
      cluster: this.cluster,
      provider: this.provider,
      marketNow: () => clock.now() + this.offsetMs,
      riskOf: poolId =>
        this.risk.riskOf({
          ...this.provider.market.pool(poolId),
          capacityType: 'spot',
        }),
    });
  }

  /**
   * Starts the operator on nodes of every pool and the workloads' members on
   * permanent capacity, once; with a history, the services the catalog opts
   * in are opted in at its first instant, as the portal's catalog sync does.
   */
  boot(): Promise<void> {
    this.booted ??= this.bootOnce();
    return this.booted;
  }

  private async bootOnce(): Promise<void> {
    const now = this.clock.now();
    const marketNow = now + this.offsetMs;
    const offers = this.provider.spotPoolsAt(marketNow);
    const zones = [...new Set(offers.map(o => o.zone))].sort();
    for (const zone of zones) {
      const type = offers.find(o => o.zone === zone)!.instanceType;
      for (let i = 0; i < PERMANENT_NODES_PER_ZONE; i++) {
        this.feed.show(
          this.provider.adopt(
            { instanceType: type, zone },
            'on-demand',
            marketNow,
          ),
          now,
        );
      }
    }
    for (const offer of offers) {
      this.feed.show(this.provider.adopt(offer, 'spot', marketNow), now);
    }
    await this.operator.start();
    const uids = this.options.workloads.map(seed => this.createWorkload(seed));
    if (!this.replayed) {
      for (const seed of this.options.workloads)
        await this.optInFromCatalog(seed);
    }
    for (const [i, seed] of this.options.workloads.entries())
      await this.createMembers(seed, uids[i]);
    this.lookAtCloudLater();
  }

  /** Starts the operator (if `replayHistory` has not), runs what is left of the history unobserved, then the live demo. */
  async start(): Promise<void> {
    await this.boot();
    if (!this.replayed && !this.replaying) {
      this.replaying = true;
      try {
        await this.clock.runUntil(this.historyEnd);
      } finally {
        this.replaying = false;
        this.replayed = true;
      }
    }
    this.goLive();
  }

  /** The live demo, from where the history ended: the clock at `speedup`, and the extra reclaims. */
  private goLive(): void {
    if (this.stopped || this.clock.isLive) return;
    this.clock.runLive(this.options.speedup ?? 60);
    this.reclaimLater();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.stopLive();
    this.cloudTimer?.cancel();
    this.reclaimTimer?.cancel();
    await this.operator.stop();
  }

  /**
   * Runs the history that `historyDays` asked for through the operator's
   * controllers, from the clock's now to `historyEnd`, and yields the cluster's
   * SpotPolicies every `everyMs` of it and whenever the ready members of an
   * opted-in workload change, oldest first: what a portal that had watched the
   * cluster all along would have read. The history runs once; when it has run
   * this yields nothing.
   */
  async *replayHistory(
    everyMs = HISTORY_REPORT_EVERY_MS,
  ): AsyncGenerator<DemoClusterReport> {
    if (!(everyMs > 0))
      throw new Error(
        `a history report needs a positive interval, got ${everyMs} ms`,
      );
    if (this.replaying)
      throw new Error('the demo history is already being replayed');
    await this.boot();
    if (this.replayed) return;
    this.replaying = true;
    try {
      let ready = this.readyMembers();
      while (this.clock.now() < this.historyEnd) {
        const reportAt = Math.min(this.historyEnd, this.clock.now() + everyMs);
        while (this.clock.now() < reportAt) {
          await this.clock.runUntil(
            Math.min(reportAt, this.clock.now() + HISTORY_STEP_MS),
          );
          const now = this.readyMembers();
          if (now === ready) continue;
          ready = now;
          if (this.clock.now() < reportAt) yield this.report();
        }
        yield this.report();
      }
    } finally {
      this.replaying = false;
      this.replayed = true;
    }
    // The live demo starts where the history ends, so that the portal's first
    // writes (its catalog sync) are acted on as it starts to serve.
    if (this.options.speedup !== undefined) this.goLive();
  }

  /** Bound, ready members of each opted-in workload, as one comparable string. */
  private readyMembers(): string {
    return this.cluster
      .objects<SpotPolicy>(SPOT_POLICIES)
      .filter(p => p.spec.enabled)
      .map(p => {
        const pods = this.cluster
          .objects<V1Pod>(PODS)
          .filter(
            pod =>
              pod.metadata?.namespace === p.metadata.namespace &&
              pod.metadata?.labels?.[WORKLOAD_LABEL] ===
                p.spec.workloadRef.name &&
              pod.spec?.nodeName,
          );
        return `${p.metadata.namespace}/${p.metadata.name}:${pods.length}`;
      })
      .sort()
      .join(',');
  }

  private report(): DemoClusterReport {
    return {
      at: this.clock.now(),
      policies: this.cluster
        .objects<SpotPolicy>(SPOT_POLICIES)
        .map(p => structuredClone(p)),
    };
  }

  /**
   * Applies what the cloud did up to the clock's now: notices, reclaims (the
   * lost members are recreated through the webhook), nodes that became Ready,
   * and a new node in each spot pool whose capacity is back.
   */
  async advance(): Promise<void> {
    const now = this.clock.now();
    const lost = this.feed.advance(this.lastAdvance, now);
    this.lastAdvance = now;
    for (const pod of lost) {
      await this.scheduler.create(this.replacementOf(pod));
    }
    this.replenish(now);
    this.scheduler.bindPending();
  }

  /** Looks at the cloud again just after its next event, or CLOUD_LOOK_MS from now. */
  private lookAtCloudLater(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const next = this.nextCloudEventAt(now);
    this.cloudTimer = this.clock.after(next - now, () => {
      this.advance()
        .catch(error =>
          (this.options.log ?? silent).warn(`demo cloud: ${error}`),
        )
        .finally(() => this.lookAtCloudLater());
    });
  }

  /**
   * The demo clock's time just after the cloud's next event: a notice or
   * capacity back in the market, a node reclaimed or Ready. A signal at `t`
   * is seen by a look after `t` (`signalsBetween` is half-open).
   */
  private nextCloudEventAt(now: number): number {
    const from = now + this.offsetMs;
    const to = from + CLOUD_LOOK_MS;
    const market = this.provider.market;
    const times = [
      market.interruptionsNoticedBetween(from, to)[0]?.noticeAt,
      market.restorationsBetween(from, to)[0]?.restoredAt,
      ...this.provider
        .listNodes()
        .flatMap(n => [n.terminatesAt, n.readyAt])
        .filter((t): t is number => t !== undefined && t >= from && t < to),
    ].filter((t): t is number => t !== undefined);
    const next = times.length > 0 ? Math.min(...times) + 1 : to;
    return Math.max(now + 1, next - this.offsetMs);
  }

  /** A reclaim of a random spot node in use every `reclaimEveryMinutes`, on top of the market's. */
  private reclaimLater(): void {
    const minutes = this.options.reclaimEveryMinutes;
    if (minutes === undefined || !(minutes > 0) || this.stopped) return;
    this.reclaimTimer = this.clock.after(minutes * 60_000, () => {
      const nodes = this.listReclaimableSpotNodes();
      if (nodes.length > 0) {
        this.sendNotice(nodes[Math.floor(this.random() * nodes.length)]);
      }
      this.reclaimLater();
    });
  }

  /**
   * Sends a termination notice to a spot node now, as the cloud does before a
   * reclaim; while the demo runs live, resolves once the operator has planned
   * the moves of the node's members (or after RECLAIM_PLANNED_WALL_MS).
   */
  async reclaimNode(node: string): Promise<void> {
    const members = this.membersOn(node);
    const before = new Set(
      this.cluster
        .objects<Migration>(MIGRATIONS)
        .map(m => `${m.metadata.namespace}/${m.metadata.name}`),
    );
    this.sendNotice(node);
    await this.whileLive(() =>
      members.every(member =>
        this.cluster
          .objects<Migration>(MIGRATIONS)
          .some(
            m =>
              !before.has(`${m.metadata.namespace}/${m.metadata.name}`) &&
              `${m.metadata.namespace}/${m.spec.pod}` === member,
          ),
      ),
    );
  }

  /** While the demo runs live, waits until `done` (at most WAIT_LIVE_WALL_MS); at once otherwise. */
  private async whileLive(done: () => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_LIVE_WALL_MS;
    while (this.clock.isLive && Date.now() < deadline && !done()) {
      await new Promise(resolve => setTimeout(resolve, 20));
    }
  }

  private sendNotice(node: string): void {
    this.feed.notice(node, this.clock.now());
    // The cloud's own look at the reclaim (its node leaves at the deadline).
    this.cloudTimer?.cancel();
    this.lookAtCloudLater();
  }

  private membersOn(node: string): string[] {
    return this.cluster
      .objects<V1Pod>(PODS)
      .filter(p => p.spec?.nodeName === node)
      .map(p => `${p.metadata?.namespace}/${p.metadata?.name}`);
  }

  /** Spot nodes that run members of opted-in workloads now. */
  listSpotNodesInUse(): string[] {
    const nodes = new Set<string>();
    for (const { view } of this.operator.state.workloads()) {
      for (const member of view.members) {
        const node = member.node && this.provider.node(member.node);
        if (node && node.capacityType === 'spot') nodes.add(node.name);
      }
    }
    return [...nodes].sort();
  }

  /** Spot nodes in use that have no termination notice yet: the ones a reclaim would still move members off. */
  listReclaimableSpotNodes(): string[] {
    return this.listSpotNodesInUse().filter(
      name => this.provider.node(name)?.terminatesAt === undefined,
    );
  }

  async listWorkloads(query: {
    namespace?: string;
    labelSelector: Record<string, string>;
  }): Promise<WorkloadSummary[]> {
    await this.boot();
    return this.client.listWorkloads(query);
  }

  async listSpotPolicies(namespace?: string): Promise<SpotPolicy[]> {
    await this.boot();
    return this.client.listSpotPolicies(namespace);
  }

  async getSpotPolicy(
    namespace: string,
    name: string,
  ): Promise<SpotPolicy | undefined> {
    await this.boot();
    return this.client.getSpotPolicy(namespace, name);
  }

  /**
   * Writes the SpotPolicy as the portal's REST does on a cluster; while the
   * demo runs live, resolves once the operator's status has seen it (or after
   * WAIT_LIVE_WALL_MS), so that the portal's next read shows its effect.
   */
  async applySpotPolicy(
    ...args: Parameters<FerryClusterClient['applySpotPolicy']>
  ): Promise<SpotPolicy> {
    await this.boot();
    const written = await this.client.applySpotPolicy(...args);
    const key = `${written.metadata.namespace}/${written.metadata.name}`;
    const generation = written.metadata.generation ?? 0;
    await this.whileLive(
      () =>
        (this.cluster.object<SpotPolicy>(SPOT_POLICIES, key)?.status
          ?.observedGeneration ?? -1) >= generation,
    );
    return (
      (await this.client.getSpotPolicy(
        written.metadata.namespace,
        written.metadata.name,
      )) ?? written
    );
  }

  async listMigrations(query?: MigrationQuery): Promise<Migration[]> {
    await this.boot();
    return this.client.listMigrations(query);
  }

  async listSpotPools(): Promise<SpotPoolSummary[]> {
    await this.boot();
    return this.client.listSpotPools();
  }

  /** A workload whose catalog entity opts it in has been on Ferry since the history began. */
  private async optInFromCatalog(seed: DemoWorkloadSeed): Promise<void> {
    if (!seed.entity) return;
    const annotations = parsePolicyAnnotations(seed.entity.annotations);
    if (annotations.errors.length > 0) {
      throw new Error(
        `The demo workload ${seed.namespace}/${
          seed.name
        } has malformed annotations: ${annotations.errors.join('; ')}`,
      );
    }
    if (annotations.settings.enabled !== true) return;
    const { applied } = policyAnnotationChanges(annotations, {});
    // As the portal's catalog sync writes them (PolicyService), so that its
    // first sync finds the policy as it would have left it.
    await this.client.applySpotPolicy(
      seed.namespace,
      seed.name,
      {
        ...SPOT_POLICY_DEFAULTS,
        workloadRef: { kind: seed.kind, name: seed.name },
        ...annotations.settings,
        enabled: true,
      },
      {
        [SPOT_POLICY_ANNOTATIONS.entityRef]: seed.entity.ref,
        [SPOT_POLICY_ANNOTATIONS.source]: 'catalog',
        [SPOT_POLICY_ANNOTATIONS.catalogAnnotations]: JSON.stringify(applied),
      },
    );
  }

  private replenish(now: number): void {
    const marketNow = now + this.offsetMs;
    const held = new Set(
      this.provider
        .listNodes()
        .filter(n => n.capacityType === 'spot')
        .map(n => `${n.instanceType}@${n.zone}`),
    );
    for (const offer of this.provider.spotPoolsAt(marketNow)) {
      if (held.has(`${offer.instanceType}@${offer.zone}`) || !offer.launchable)
        continue;
      const node = this.provider.launch(offer, 'spot', marketNow);
      if (node) this.feed.show(node, now);
    }
  }

  /** What the market's pools cost now: spot by zone, on demand by region. */
  private prices(): PriceBook {
    const marketNow = this.clock.now() + this.offsetMs;
    const book = new PriceBook();
    const source = 'the simulated market (shipped AWS price history)';
    for (const offer of this.provider.spotPoolsAt(marketNow)) {
      book.setSpot(offer.zone, offer.instanceType, {
        usdPerHour: offer.spotPriceUsdPerHour,
        source,
      });
      book.setOnDemand(regionOfZone(offer.zone), offer.instanceType, {
        usdPerHour: offer.onDemandPriceUsdPerHour,
        source,
      });
    }
    return book;
  }

  private pools(): CapacityPool[] {
    const marketNow = this.clock.now() + this.offsetMs;
    return this.provider.spotPoolsAt(marketNow).flatMap(offer => [
      {
        instanceType: offer.instanceType,
        zone: offer.zone,
        capacityType: 'spot' as const,
        priceUsdPerHour: offer.spotPriceUsdPerHour,
        onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
        // The wiring ranks by the risk feed's figure in its place.
        interruptionRisk: 0,
        allocatable: offer.allocatable,
        launchable: false,
      },
      {
        instanceType: offer.instanceType,
        zone: offer.zone,
        capacityType: 'on-demand' as const,
        priceUsdPerHour: offer.onDemandPriceUsdPerHour,
        onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
        interruptionRisk: 0,
        allocatable: offer.allocatable,
        launchable: false,
      },
    ]);
  }

  private workloadOf(namespace: string, pod: string): string | undefined {
    return this.cluster.object<V1Pod>(PODS, `${namespace}/${pod}`)?.metadata
      ?.labels?.[WORKLOAD_LABEL];
  }

  /** The workload object, created as a person would apply it; returns its uid. */
  private createWorkload(seed: DemoWorkloadSeed): string {
    const labels = { [WORKLOAD_LABEL]: seed.name };
    const workload = this.cluster.put(
      seed.kind === 'StatefulSet' ? STATEFUL_SETS : DEPLOYMENTS,
      {
        apiVersion: 'apps/v1',
        kind: seed.kind,
        metadata: {
          name: seed.name,
          namespace: seed.namespace,
          labels: { 'backstage.io/kubernetes-id': seed.kubernetesId },
          annotations: seed.entity?.annotations,
        },
        spec: {
          replicas: seed.replicas,
          selector: { matchLabels: labels },
          template: { metadata: { labels } },
        },
        // Its controller's report of a finished rollout: re-placement moves
        // nothing while a workload rolls out (isRollingOut).
        status: {
          observedGeneration: 1,
          replicas: seed.replicas,
          updatedReplicas: seed.replicas,
        },
      } as any,
    ) as { metadata: { uid: string } };
    return workload.metadata.uid;
  }

  /** The members its controller creates, through the placement webhook. */
  private async createMembers(
    seed: DemoWorkloadSeed,
    uid: string,
  ): Promise<void> {
    const labels = { [WORKLOAD_LABEL]: seed.name };
    for (let i = 0; i < seed.replicas; i++) {
      await this.scheduler.create({
        metadata: {
          name: `${seed.name}-${i}`,
          namespace: seed.namespace,
          labels,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: seed.kind,
              name: seed.name,
              uid,
              controller: true,
            },
          ],
        },
        spec: {
          // Until Ferry places it, a member runs where its template says: on permanent capacity.
          nodeSelector: { [NODE_LABELS.karpenterCapacityType]: 'on-demand' },
          containers: [
            {
              name: 'valkey',
              image: 'valkey/valkey:8',
              resources: {
                requests: {
                  cpu: `${DEMO_MEMBER_REQUESTS.cpuMillis}m`,
                  memory: `${DEMO_MEMBER_REQUESTS.memoryMiB}Mi`,
                },
              },
            },
          ],
        },
      });
    }
  }

  /** The pod a workload's controller creates for one it lost: a StatefulSet's keeps its name. */
  private replacementOf(pod: V1Pod): V1Pod {
    return {
      metadata: {
        name: pod.metadata?.name,
        namespace: pod.metadata?.namespace,
        labels: pod.metadata?.labels,
        ownerReferences: pod.metadata?.ownerReferences,
      },
      spec: {
        nodeSelector: { [NODE_LABELS.karpenterCapacityType]: 'on-demand' },
        containers: pod.spec?.containers ?? [],
      },
    };
  }
}
