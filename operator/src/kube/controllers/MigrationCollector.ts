import type { Migration } from '../../api/v1alpha1';
import {
  Clock,
  systemClock,
  systemTimers,
  Timer,
  Timers,
} from '../../core/clock';
import { isFinalPhase } from '../../migration/MigrationStateMachine';
import type { ClusterWrites } from '../../OperatorPorts';

/**
 * How long finished Migrations are kept for history (the portal's timeline reads
 * them; the backend's history store keeps them longer), and how many finished
 * ones per workload at most, so that a workload whose members move often cannot
 * fill etcd within the retention.
 */
export const MIGRATION_RETENTION_DEFAULTS = {
  maxAgeMs: 7 * 24 * 3_600_000,
  maxPerWorkload: 100,
};

/** How often the leader looks for Migrations to collect. */
export const MIGRATION_COLLECTION_INTERVAL_MS = 10 * 60_000;

/** What the collector keeps. */
export interface MigrationRetention {
  /** A finished Migration older than this (since it finished) is deleted. */
  maxAgeMs: number;
  /** Finished Migrations kept per workload, newest first; older ones are deleted. */
  maxPerWorkload: number;
}

/** When a finished Migration finished: its completion, else its last phase's end, else its creation. */
export function finishedAt(migration: Migration): number | undefined {
  const status = migration.status;
  const lastPhase = status?.phases?.[status.phases.length - 1];
  const at =
    status?.completedAt ??
    lastPhase?.finishedAt ??
    lastPhase?.startedAt ??
    migration.metadata.creationTimestamp;
  const ms = at === undefined ? NaN : Date.parse(at);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The Migrations to delete now: finished ones (Succeeded, RolledBack, Failed)
 * older than the retention, and finished ones past the newest `maxPerWorkload` of
 * their workload. A Migration that is not final is never chosen, however old:
 * its state machine's progress lives in it.
 */
export function migrationsToCollect(
  migrations: readonly Migration[],
  retention: MigrationRetention,
  now: number,
): Migration[] {
  const byWorkload = new Map<string, { migration: Migration; at: number }[]>();
  for (const migration of migrations) {
    if (!isFinalPhase(migration.status?.phase ?? 'Planned')) continue;
    // A final phase with no time on it at all counts as finished long ago.
    const at = finishedAt(migration) ?? 0;
    const { kind, name } = migration.spec.workloadRef;
    const key = `${migration.metadata.namespace}/${kind}/${name}`;
    let list = byWorkload.get(key);
    if (!list) byWorkload.set(key, (list = []));
    list.push({ migration, at });
  }
  const collected: Migration[] = [];
  for (const list of byWorkload.values()) {
    list.sort((a, b) => b.at - a.at);
    list.forEach(({ migration, at }, index) => {
      if (now - at > retention.maxAgeMs || index >= retention.maxPerWorkload)
        collected.push(migration);
    });
  }
  return collected;
}

/**
 * Deletes finished Migrations past the retention, on the leader, every
 * `intervalMs` and once when it starts. Each delete is conditional on the
 * object being the one that was judged (uid and resourceVersion), so a
 * Migration that changed since is judged again next time rather than deleted.
 */
export class MigrationCollector {
  private timer?: Timer;
  private stopped = false;
  private running?: Promise<void>;

  constructor(
    private readonly options: {
      writes: Pick<ClusterWrites, 'deleteMigration'>;
      migrations: () => Migration[];
      retention: MigrationRetention;
      intervalMs?: number;
      clock?: Clock;
      /** What its interval runs on; the wall clock's timers when left out. */
      timers?: Timers;
      onCollected?: (migration: Migration) => void;
      onError?: (error: unknown) => void;
    },
  ) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.collectInBackground();
    this.scheduleNext();
  }

  private scheduleNext(): void {
    this.timer = (this.options.timers ?? systemTimers).after(
      this.options.intervalMs ?? MIGRATION_COLLECTION_INTERVAL_MS,
      () => {
        if (this.stopped) return;
        this.collectInBackground();
        this.scheduleNext();
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }

  /** One pass: deletes what `migrationsToCollect` chooses; returns their names. */
  async collect(): Promise<string[]> {
    const now = (this.options.clock ?? systemClock).now();
    const chosen = migrationsToCollect(
      this.options.migrations(),
      this.options.retention,
      now,
    );
    const deleted: string[] = [];
    for (const migration of chosen) {
      const { namespace, name } = migration.metadata;
      try {
        // Gone already, or changed since it was judged: next pass decides again.
        if (!(await this.options.writes.deleteMigration(migration))) continue;
        deleted.push(`${namespace}/${name}`);
        this.options.onCollected?.(migration);
      } catch (error) {
        this.options.onError?.(error);
      }
    }
    return deleted;
  }

  private collectInBackground(): void {
    if (this.running) return;
    this.running = this.collect()
      .then(
        () => undefined,
        error => this.options.onError?.(error),
      )
      .finally(() => (this.running = undefined));
  }
}
