import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
} from 'prom-client';
import type { MigrationPhase, MigrationReason } from '../../api/v1alpha1';

/** Buckets for a write pause: a live hand-off pauses for milliseconds, a fallback for seconds. */
const WRITE_PAUSE_BUCKETS_SECONDS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Buckets for the time from a signal to its move: within a 30 s or 2 min notice. */
const NOTICE_TO_MOVE_BUCKETS_SECONDS = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];
/** Buckets for a webhook review; the API server waits for it on every pod create. */
const WEBHOOK_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1,
];

/** A workload in the metrics' labels. */
export interface WorkloadLabels {
  namespace: string;
  workload: string;
}

/**
 * The operator's Prometheus metrics: moves by reason, driver and outcome, write
 * pause, time from notice to move, savings and availability per workload, the
 * webhook's latency, and who leads. One registry per operator, so that tests and
 * two operators in one process do not share counts.
 */
export class OperatorMetrics {
  readonly registry = new Registry();

  private readonly migrations = new Counter({
    name: 'ferry_migrations_total',
    help: 'Migrations finished, by why they started, how state moved and how they ended.',
    labelNames: ['reason', 'driver', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly writePause = new Histogram({
    name: 'ferry_migration_write_pause_seconds',
    help: 'How long writes to a moved member were paused for its switch-over.',
    labelNames: ['driver'] as const,
    buckets: WRITE_PAUSE_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  private readonly noticeToMove = new Histogram({
    name: 'ferry_signal_to_migration_seconds',
    help: 'Time from a disruption signal being seen to the Migration for it being created.',
    labelNames: ['reason'] as const,
    buckets: NOTICE_TO_MOVE_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  private readonly hourlyCost = new Gauge({
    name: 'ferry_workload_hourly_cost_usd',
    help: 'What the workload costs per hour where it runs now.',
    labelNames: ['namespace', 'workload'] as const,
    registers: [this.registry],
  });

  private readonly onDemandHourlyCost = new Gauge({
    name: 'ferry_workload_on_demand_hourly_cost_usd',
    help: 'What the same replicas would cost per hour on on-demand nodes.',
    labelNames: ['namespace', 'workload'] as const,
    registers: [this.registry],
  });

  private readonly savings = new Gauge({
    name: 'ferry_workload_savings_usd',
    help: 'Savings against on-demand since the workload opted in.',
    labelNames: ['namespace', 'workload'] as const,
    registers: [this.registry],
  });

  private readonly availability = new Gauge({
    name: 'ferry_workload_availability_ratio',
    help: 'Share of time the workload had its required members ready, since it opted in.',
    labelNames: ['namespace', 'workload'] as const,
    registers: [this.registry],
  });

  private readonly availabilityTarget = new Gauge({
    name: 'ferry_workload_availability_target_ratio',
    help: "The workload's availability target.",
    labelNames: ['namespace', 'workload'] as const,
    registers: [this.registry],
  });

  private readonly webhookReviews = new Histogram({
    name: 'ferry_webhook_review_duration_seconds',
    help: 'Time the placement webhook took to answer an admission review.',
    labelNames: ['outcome'] as const,
    buckets: WEBHOOK_BUCKETS_SECONDS,
    registers: [this.registry],
  });

  private readonly leader = new Gauge({
    name: 'ferry_leader',
    help: '1 while this replica leads (acts), 0 while it stands by.',
    registers: [this.registry],
  });

  private readonly poolRisk = new Gauge({
    name: 'ferry_pool_interruption_risk',
    help: "Probability that a spot pool is interrupted within the prediction horizon, by Ferry's risk model (the leader's).",
    labelNames: ['instance_type', 'zone'] as const,
    registers: [this.registry],
  });

  private readonly relists = new Counter({
    name: 'ferry_watch_lists_total',
    help: 'Full lists of a watched resource, by why (initial, expired resourceVersion, error).',
    labelNames: ['resource', 'reason'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' });
    }
  }

  /** A migration reached a final phase. */
  migrationFinished(m: {
    reason: MigrationReason;
    driver: string;
    phase: Extract<MigrationPhase, 'Succeeded' | 'RolledBack' | 'Failed'>;
    writePauseMs?: number;
  }): void {
    this.migrations.inc({
      reason: m.reason,
      driver: m.driver,
      outcome: m.phase,
    });
    if (m.writePauseMs !== undefined) {
      this.writePause.observe({ driver: m.driver }, m.writePauseMs / 1000);
    }
  }

  /** A Migration was created for a signal first seen `latencyMs` ago. */
  migrationCreated(reason: MigrationReason, latencyMs: number): void {
    this.noticeToMove.observe({ reason }, latencyMs / 1000);
  }

  /** The workload's cost and availability, as its SpotPolicy status says. */
  workloadObserved(
    labels: WorkloadLabels,
    status: {
      hourlyCostUsd: number;
      onDemandHourlyCostUsd: number;
      savingsToDateUsd: number;
      availability: number;
      availabilityTarget: number;
    },
  ): void {
    this.hourlyCost.set(labels, status.hourlyCostUsd);
    this.onDemandHourlyCost.set(labels, status.onDemandHourlyCostUsd);
    this.savings.set(labels, status.savingsToDateUsd);
    this.availability.set(labels, status.availability);
    this.availabilityTarget.set(labels, status.availabilityTarget);
  }

  /** The workload opted out or was deleted: its series stop. */
  workloadGone(labels: WorkloadLabels): void {
    for (const gauge of [
      this.hourlyCost,
      this.onDemandHourlyCost,
      this.savings,
      this.availability,
      this.availabilityTarget,
    ]) {
      gauge.remove(labels);
    }
  }

  webhookReviewed(review: {
    durationMs: number;
    patched: boolean;
    failed: boolean;
  }): void {
    let outcome = review.patched ? 'patched' : 'unchanged';
    if (review.failed) outcome = 'failed';
    this.webhookReviews.observe({ outcome }, review.durationMs / 1000);
  }

  leading(isLeader: boolean): void {
    this.leader.set(isLeader ? 1 : 0);
  }

  /** The risk of every spot pool the model tracks, as it is now. */
  poolRisks(
    risks: readonly {
      pool: { instanceType: string; zone: string };
      risk: number;
    }[],
  ): void {
    for (const { pool, risk } of risks) {
      this.poolRisk.set(
        { instance_type: pool.instanceType, zone: pool.zone },
        risk,
      );
    }
  }

  listed(resource: string, reason: string): void {
    this.relists.inc({ resource, reason });
  }
}

/**
 * The operator's plain-HTTP endpoints: `/metrics` for Prometheus, `/healthz` for
 * the liveness probe, `/readyz` (200 once `ready()` says so) for the readiness probe.
 */
export class MetricsServer {
  private server?: http.Server;

  constructor(
    private readonly options: {
      metrics: OperatorMetrics;
      ready: () => boolean;
      host?: string;
      port?: number;
    },
  ) {}

  async start(): Promise<number> {
    const server = http.createServer((request, response) => {
      const path = request.url?.split('?')[0];
      if (path === '/healthz') {
        response.end('ok');
      } else if (path === '/readyz') {
        const ready = this.options.ready();
        response.statusCode = ready ? 200 : 503;
        response.end(ready ? 'ok' : 'caches not synced');
      } else if (path === '/metrics') {
        this.options.metrics.registry.metrics().then(
          text => {
            response.setHeader(
              'content-type',
              this.options.metrics.registry.contentType,
            );
            response.end(text);
          },
          error => {
            response.statusCode = 500;
            response.end(String(error));
          },
        );
      } else {
        response.statusCode = 404;
        response.end();
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        this.options.port ?? 0,
        this.options.host ?? '0.0.0.0',
        resolve,
      );
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  }
}
