import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Migration, MigrationPhase } from './api/v1alpha1';
import { SqsInterruptionQueue } from './cloud/aws/SqsInterruptionQueue';
import type { CapacityPool } from './core/model';
import type { ProactivePolicy } from './core/proactive';
import type { RebalancePolicy } from './core/replacement';
import {
  isFinalPhase,
  MigrationStateMachine,
} from './migration/MigrationStateMachine';
import {
  AdmissionWebhookServer,
  EvictionReviewer,
  PodMutator,
} from './kube/admission/AdmissionWebhookServer';
import { ClusterState } from './kube/state/ClusterState';
import { withInterruptionRisk } from './kube/pools/poolsOfNodes';
import {
  DisruptionController,
  type MoveMethodChooser,
} from './kube/controllers/DisruptionController';
import {
  MigrationCollector,
  MigrationRetention,
  MIGRATION_RETENTION_DEFAULTS,
} from './kube/controllers/MigrationCollector';
import { MigrationRunner } from './kube/controllers/MigrationRunner';
import { MetricsServer, OperatorMetrics } from './kube/metrics/OperatorMetrics';
import { PodPlacer } from './kube/admission/PodPlacer';
import { PoolPriceFeed } from './kube/pools/PoolPriceFeed';
import type { PoolRiskFeed } from './kube/pools/PoolRiskFeed';
import type { PoolRiskHistoryStore } from './kube/stores/PoolRiskHistoryStore';
import { PredictionController } from './kube/controllers/PredictionController';
import type { Leadership } from './kube/leadership/SoleLeader';
import type { EventSink, OperatorLog, OperatorPorts } from './OperatorPorts';
import { SpotPolicyStatusController } from './kube/controllers/SpotPolicyStatusController';
import {
  PolicyDefaults,
  WorkloadPolicyController,
} from './kube/controllers/WorkloadPolicyController';
import { ReplacementController } from './kube/controllers/ReplacementController';
import { HibernationController } from './kube/hibernation/HibernationController';

/** The phases in which a `reschedule` move evicts its member or has evicted it. */
const RESCHEDULE_EVICTING_PHASES = new Set<MigrationPhase>([
  'SwitchingOver',
  'Verifying',
  'CleaningUp',
]);

/**
 * A `reschedule` move's switch-over is the member's eviction: refusing it would
 * refuse the move itself (the operator's own eviction would wait for a move that
 * waits for it). Only that phase on: before it the move is still being planned
 * and prepared, and a drain must wait as for any other member. Whoever asks,
 * the operator or a drain retrying, the eviction is the one the move wants, and
 * PodDisruptionBudgets still hold it back.
 */
function isEvictionTheMove(migration: Migration): boolean {
  return (
    migration.spec.driver === 'reschedule' &&
    RESCHEDULE_EVICTING_PHASES.has(migration.status?.phase ?? 'Planned')
  );
}

/** How the operator runs, besides its ports; what is left out is off or at its default. */
export interface OperatorSettings {
  /**
   * Interruption risk of the spot pools: every replica ranks pools by it (it
   * replaces the spot pools' `interruptionRisk` of the `pools` port), and the
   * leader moves members off pools whose risk crosses `proactive`'s threshold
   * (`prediction` Migrations) and keeps the history in `history`. Without it,
   * pools keep the risk `pools` gives and nothing moves before a signal.
   */
  risk?: {
    feed: PoolRiskFeed;
    history?: PoolRiskHistoryStore;
    /** Thresholds and budget of proactive moves; `false` ranks by risk but moves nothing before a signal. */
    proactive?: ProactivePolicy | false;
    /** How often the leader reads risk when nothing changes; PREDICTION_INTERVAL_MS when left out. */
    intervalMs?: number;
  };
  /**
   * Whether the leader moves running members when their policy changes
   * (`policy` Migrations) and restores broken floors and spreads (`rebalance`),
   * with this hysteresis and budget (REBALANCE_DEFAULTS for what is not given).
   * Off unless given: the process turns it on from its configuration.
   */
  replacement?: Partial<RebalancePolicy> | false;
  /** How often spend and availability accrue into SpotPolicy status when nothing changes. */
  statusRefreshMs?: number;
  /** Settings of a SpotPolicy that a workload's annotations create without naming them (the chart's `defaults`). */
  policyDefaults?: PolicyDefaults;
  /** Which finished Migrations the leader deletes, and how often it looks. */
  migrationRetention?: MigrationRetention & { intervalMs?: number };
  /** Placement of pods being created; by default `PodPlacer`'s. */
  mutatePod?: PodMutator;
  /** Measures a member and picks its driver under `auto` (recorded as the Migration's methodReason); without it `auto` hands off. */
  chooseMethod?: MoveMethodChooser;
  /** Whether the cluster has the RuntimeClass `ferry`: the webhook then gives it to members that may move by checkpoint. */
  ferryRuntimeClass?: () => boolean;
  /** The admission webhooks (pod placement, eviction review), served over TLS for the API server. */
  webhook?: {
    tls: { cert: string | Buffer; key: string | Buffer };
    host?: string;
    port: number;
  };
  metricsServer?: { host?: string; port: number };
  metrics?: OperatorMetrics;
  /**
   * The SQS queue EventBridge rules feed with the cluster's EC2 interruption
   * events (spot warnings, rebalance recommendations, state changes, AWS Health
   * scheduled changes); read by the leader only.
   */
  interruptionQueue?: {
    sqs: SQSClient;
    queueUrl: string;
    waitTimeSeconds?: number;
    visibilityTimeoutSeconds?: number;
  };
}

/** Ferry's operator as `wireOperator` builds it, on a cluster or in demo mode alike. */
export interface Operator {
  readonly metrics: OperatorMetrics;
  /** The picture of the cluster every controller reads. */
  readonly state: ClusterState;
  /** True while this replica leads. */
  readonly isLeader: boolean;
  /** The webhook's port once listening; the metrics server's likewise. */
  readonly webhookPort?: number;
  readonly metricsPort?: number;
  /** Resolves when this replica has stopped: it lost its leadership, or `stop()` was called. */
  readonly done: Promise<void>;
  /**
   * The placement webhook's answer for a pod being created: the webhook
   * server asks it on a cluster, the simulated API server in demo mode.
   */
  readonly admitPod: PodMutator;
  /** Starts watching, serving and running for leader; resolves once the state is synced and the servers listen. */
  start(): Promise<void>;
  /** Steps down (the next leader takes over at once) and stops everything. */
  stop(): Promise<void>;
}

/**
 * Every replica watches the cluster and serves the webhooks (which answer from
 * what it watches); only the leader acts: it plans Migrations from disruption
 * signals and policy changes and runs them, writes SpotPolicy status and
 * deletes finished Migrations past their retention. A replica that loses its
 * leadership stops acting at once and `done` resolves, so that its process
 * exits and is restarted clean; the next leader resumes the Migrations it left.
 */
class WiredOperator implements Operator {
  readonly metrics: OperatorMetrics;
  readonly state: ClusterState;
  /** The pools as planning and placement see them: the `pools` port, with the feed's risk. */
  private readonly pools: () => Promise<CapacityPool[]>;
  private readonly elector: Leadership;
  private readonly machine: MigrationStateMachine;
  private readonly events: EventSink;
  private readonly log: OperatorLog;
  private readonly placer: PodPlacer;
  private controller?: DisruptionController;
  private prediction?: PredictionController;
  private replacement?: ReplacementController;
  /** A look at the nodes for the risk feed, waiting for the events of the same burst. */
  private riskObservation?: NodeJS.Immediate;
  private runner?: MigrationRunner;
  private interruptions?: SqsInterruptionQueue;
  private statuses?: SpotPolicyStatusController;
  private workloadPolicies?: WorkloadPolicyController;
  private collector?: MigrationCollector;
  /** Stops the hibernation controller's loop, and resolves when it has stopped. */
  private hibernation?: { stop: AbortController; done: Promise<void> };
  private shippedPrices?: PoolPriceFeed;
  private webhook?: AdmissionWebhookServer;
  private metricsServer?: MetricsServer;
  private campaign?: Promise<void>;
  private stopped = false;
  webhookPort?: number;
  metricsPort?: number;

  constructor(
    private readonly ports: OperatorPorts,
    private readonly options: OperatorSettings,
  ) {
    const clock = ports.clock;
    this.log = ports.log;
    this.metrics = options.metrics ?? new OperatorMetrics();
    this.events = ports.events;
    this.machine = new MigrationStateMachine({
      store: ports.migrations,
      drivers: ports.drivers,
      clock,
      timers: ports.timers,
      log: this.log,
    });
    this.state = new ClusterState({
      informers: ports.informers,
      clock,
      policyDefaults: options.policyDefaults,
      onChange: change => {
        this.controller?.changed();
        this.replacement?.changed();
        if (change.kind === 'node' || change.kind === 'pod') {
          this.observeRisk(change.kind);
        }
        if (change.kind === 'pod') {
          this.placer.podChanged(
            change.event.object,
            change.event.type === 'DELETED',
          );
        }
        this.statuses?.changed(change);
        if (change.kind === 'workload' || change.kind === 'policy') {
          this.workloadPolicies?.changed();
        }
        if (change.kind === 'migration' && change.event.type !== 'DELETED') {
          this.runner?.changed(change.event.object);
        }
      },
      onList: (resource, reason) => this.metrics.listed(resource, reason),
      onError: error => this.log.warn(`watch: ${error.message}`),
    });
    this.placer = new PodPlacer(
      this.state,
      () => clock.now(),
      options.ferryRuntimeClass,
    );
    const feed = options.risk?.feed;
    this.pools = feed
      ? async () =>
          withInterruptionRisk(await ports.pools(), pool => feed.riskOf(pool))
      : ports.pools;
    this.elector = ports.leadership({
      onStartedLeading: () => this.lead(),
      onStoppedLeading: () => {
        this.metrics.leading(false);
        this.log.info(`${ports.identity} stopped leading`);
      },
      onNewLeader: identity => this.log.info(`leader: ${identity}`),
    });
  }

  /** True while this replica leads. */
  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  readonly admitPod: PodMutator = async (pod, admission) =>
    this.options.mutatePod
      ? this.options.mutatePod(pod, admission)
      : this.placer.patch(pod, admission, await this.pools());

  /**
   * Starts watching, serving and running for leader. Resolves once the watches
   * are synced and the servers listen; leadership comes when it comes.
   */
  async start(): Promise<void> {
    if (this.options.metricsServer) {
      this.metricsServer = new MetricsServer({
        metrics: this.metrics,
        ready: () => this.state.synced,
        ...this.options.metricsServer,
      });
      this.metricsPort = await this.metricsServer.start();
    }
    await this.state.start();
    await this.startRisk();
    if (this.options.webhook) {
      this.webhook = new AdmissionWebhookServer({
        ...this.options.webhook,
        mutatePod: this.admitPod,
        reviewEviction: this.reviewEviction,
        onReview: review => this.metrics.webhookReviewed(review),
        onError: error => this.log.warn(`webhook: ${error}`),
      });
      this.webhookPort = await this.webhook.start();
    }
    this.metrics.leading(false);
    this.campaign = this.elector.run().then(() => this.stopActing());
  }

  /** Resolves when this replica has stopped: it lost its lease, or `stop()` was called. */
  get done(): Promise<void> {
    return this.campaign ?? Promise.resolve();
  }

  /** Steps down (the next leader takes over at once) and stops everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.elector.stop();
    await this.campaign;
    this.state.stop();
    if (this.riskObservation) clearImmediate(this.riskObservation);
    await this.webhook?.stop();
    await this.metricsServer?.stop();
  }

  private lead(): void {
    this.log.info(`${this.ports.identity} leads`);
    this.metrics.leading(true);
    this.controller = new DisruptionController({
      state: this.state,
      machine: this.machine,
      pools: this.pools,
      clock: this.ports.clock,
      events: this.events,
      metrics: this.metrics,
      chooseMethod: this.options.chooseMethod,
      timers: this.ports.timers,
      onError: error => this.log.warn(`planning: ${error}`),
    });
    this.runner = new MigrationRunner({
      machine: this.machine,
      lookup: key => this.state.migrations.get(key),
      timers: this.ports.timers,
      clock: this.ports.clock,
      events: this.events,
      metrics: this.metrics,
      onError: error => this.log.warn(`migration: ${error}`),
    });
    // Whatever the last leader left, and whatever the signals say now.
    for (const migration of this.state.migrations.list())
      this.runner.changed(migration);
    this.controller.changed();
    if (this.options.replacement) {
      this.replacement = new ReplacementController({
        writes: this.ports.writes,
        state: this.state,
        machine: this.machine,
        pools: this.pools,
        rebalance: this.options.replacement,
        timers: this.ports.timers,
        clock: this.ports.clock,
        events: this.events,
        onError: error => this.log.warn(`re-placement: ${error}`),
      });
      this.replacement.changed();
    }
    const risk = this.options.risk;
    if (risk && risk.proactive !== false) {
      this.prediction = new PredictionController({
        state: this.state,
        feed: risk.feed,
        controller: this.controller,
        policy: risk.proactive,
        intervalMs: risk.intervalMs,
        timers: this.ports.timers,
        history: risk.history,
        metrics: this.metrics,
        clock: this.ports.clock,
        onError: error => this.log.warn(`prediction: ${error}`),
      });
      this.prediction.changed();
    }
    this.statuses = new SpotPolicyStatusController({
      writes: this.ports.writes,
      state: this.state,
      prices:
        this.ports.prices ??
        (() =>
          (this.shippedPrices ??= new PoolPriceFeed({
            onError: error => this.log.warn(`prices: ${error}`),
          })).current()),
      riskOf: risk && (pool => risk.feed.riskOf(pool)),
      refreshMs: this.options.statusRefreshMs,
      timers: this.ports.timers,
      clock: this.ports.clock,
      events: this.events,
      metrics: this.metrics,
      onError: error => this.log.warn(`status: ${error}`),
    });
    this.statuses.resync();
    this.workloadPolicies = new WorkloadPolicyController({
      writes: this.ports.writes,
      state: this.state,
      defaults: this.options.policyDefaults,
      timers: this.ports.timers,
      events: this.events,
      onApplied: (policy, created) =>
        this.log.info(
          `${created ? 'created' : 'updated'} SpotPolicy ${
            policy.metadata.namespace
          }/${policy.metadata.name} from its workload's annotations`,
        ),
      onError: error => this.log.warn(`workload annotations: ${error}`),
    });
    this.workloadPolicies.changed(0);
    const retention = this.options.migrationRetention;
    this.collector = new MigrationCollector({
      writes: this.ports.writes,
      migrations: () => this.state.migrations.list(),
      retention: {
        maxAgeMs: retention?.maxAgeMs ?? MIGRATION_RETENTION_DEFAULTS.maxAgeMs,
        maxPerWorkload:
          retention?.maxPerWorkload ??
          MIGRATION_RETENTION_DEFAULTS.maxPerWorkload,
      },
      intervalMs: retention?.intervalMs,
      timers: this.ports.timers,
      clock: this.ports.clock,
      onCollected: m =>
        this.log.info(
          `collected Migration ${m.metadata.namespace}/${m.metadata.name} (${m.status?.phase})`,
        ),
      onError: error => this.log.warn(`migration collection: ${error}`),
    });
    this.collector.start();
    this.startHibernation();
    if (this.options.interruptionQueue) {
      const controller = this.controller;
      this.interruptions = new SqsInterruptionQueue({
        ...this.options.interruptionQueue,
        nodeForInstance: this.nodeOfInstance,
        onSignal: signal => {
          if (signal.kind !== 'signal') {
            return controller.cloudSignalCleared(signal.node);
          }
          this.options.risk?.feed.cloudSignal(
            this.state.nodeViewsByName().get(signal.signal.node),
            signal.signal.reason,
          );
          this.prediction?.changed();
          return controller.cloudSignal(signal.signal);
        },
        log: this.log,
      });
      this.interruptions.start();
    }
  }

  /**
   * Hibernation follows the pods that opted in, by their annotation or their
   * SpotPolicy's `hibernateAfter`. A policy's idle period applies whether or
   * not the policy puts the workload on spot: an idle store costs the same on
   * either capacity, and the annotation alone never asked for spot either.
   */
  private startHibernation(): void {
    const ports = this.ports.hibernation;
    if (!ports) return;
    const controller = new HibernationController({
      cluster: ports.cluster,
      agents: ports.agents,
      policyHibernateAfter: () => this.policyHibernateAfter(),
      log: message => this.log.warn(message),
    });
    const stop = new AbortController();
    this.hibernation = { stop, done: controller.run(stop.signal) };
  }

  /** Each member's `hibernateAfter` from its SpotPolicy, by `namespace/name`. */
  private policyHibernateAfter(): Map<string, string> {
    const periods = new Map<string, string>();
    for (const { policy, view } of this.state.workloads(
      p => Boolean(p.spec.hibernateAfter),
      { optedOut: true },
    )) {
      for (const member of view.members) {
        periods.set(
          `${policy.metadata.namespace}/${member.pod}`,
          policy.spec.hibernateAfter!,
        );
      }
    }
    return periods;
  }

  /**
   * Every replica's feed starts from the stored history (the webhook ranks by it
   * on any replica) and then follows the nodes it watches.
   */
  private async startRisk(): Promise<void> {
    const risk = this.options.risk;
    if (!risk) return;
    try {
      const stored = await risk.history?.load();
      if (stored) risk.feed.restore(stored);
    } catch (error) {
      this.log.warn(`prediction: ${error}`);
    }
    risk.feed.observe(this.state.nodeViews(), this.state.signals());
  }

  /**
   * A node changed (its signal, or it came or went): the feed takes it in, and
   * the leader reads risk again. A pod changed: only the leader's candidates
   * (members per node) changed.
   */
  private observeRisk(kind: 'node' | 'pod'): void {
    const feed = this.options.risk?.feed;
    if (!feed || !this.state.synced) return;
    if (kind === 'node' && !this.riskObservation) {
      // A burst of node events (a reclaim takes several nodes) is one look at the cluster.
      this.riskObservation = setImmediate(() => {
        this.riskObservation = undefined;
        feed.observe(this.state.nodeViews(), this.state.signals());
        this.prediction?.changed();
      });
    }
    this.prediction?.changed();
  }

  /** The node whose `spec.providerID` names an EC2 instance. */
  private readonly nodeOfInstance = (instanceId: string) =>
    this.state.nodeOfInstance(instanceId);

  private async stopActing(): Promise<void> {
    const controller = this.controller;
    const prediction = this.prediction;
    const replacement = this.replacement;
    const runner = this.runner;
    const interruptions = this.interruptions;
    const statuses = this.statuses;
    const collector = this.collector;
    const hibernation = this.hibernation;
    hibernation?.stop.abort();
    this.hibernation = undefined;
    this.controller = undefined;
    this.prediction = undefined;
    this.replacement = undefined;
    this.runner = undefined;
    this.interruptions = undefined;
    this.statuses = undefined;
    this.collector = undefined;
    this.workloadPolicies?.stop();
    this.workloadPolicies = undefined;
    // A message whose signal no pass has planned with yet is not deleted: the
    // stopping controller fails its handling, and it comes back to the next
    // leader after the visibility timeout.
    await Promise.all([
      interruptions?.stop(),
      prediction?.stop(),
      replacement?.stop(),
      controller?.stop(),
      runner?.stop(),
      statuses?.stop(),
      collector?.stop(),
      hibernation?.done,
    ]);
  }

  /**
   * An opted-in member is not evicted while its move is pending or under way: the
   * evicting tool is told to retry, and the leader plans the move from the node's
   * cordon. Anything else, any member whose move has finished, and a member whose
   * move is the eviction itself (see `isEvictionTheMove`) goes.
   */
  private readonly reviewEviction: EvictionReviewer = async eviction => {
    const member = this.state
      .workloads()
      .find(
        w =>
          w.policy.metadata.namespace === eviction.namespace &&
          w.view.members.some(m => m.pod === eviction.pod),
      );
    if (!member) return { allowed: true };
    const migrations = this.state.migrations
      .list()
      .filter(
        m =>
          m.metadata.namespace === eviction.namespace &&
          m.spec.pod === eviction.pod,
      );
    const phases = migrations.map(m => m.status?.phase ?? 'Planned');
    if (phases.some(phase => phase === 'Succeeded')) return { allowed: true };
    if (migrations.some(isEvictionTheMove)) return { allowed: true };
    if (phases.length > 0 && phases.every(phase => isFinalPhase(phase))) {
      // Every move failed: the member goes the way it would without Ferry.
      return { allowed: true };
    }
    this.controller?.changed();
    return {
      allowed: false,
      message: `ferry is moving ${eviction.namespace}/${eviction.pod} (${member.view.id}) off its node; retry shortly`,
    };
  };
}

/**
 * Builds every controller of the operator from its ports: the one wiring that
 * the cluster's process (through `KubeOperator`) and demo mode both call.
 */
export function wireOperator(
  ports: OperatorPorts,
  settings: OperatorSettings = {},
): Operator {
  return new WiredOperator(ports, settings);
}
