import type { Clock, Timers } from '../../core/clock';
import type { Migration } from '../../api/v1alpha1';
import {
  isFinalPhase,
  MigrationStateMachine,
} from '../../migration/MigrationStateMachine';
import type { OperatorMetrics } from '../metrics/OperatorMetrics';
import { objectKey } from '../informers/Reflector';
import { ReconcileResult, WorkQueue } from './WorkQueue';
import { MigrationConflictError } from '../../migration/MigrationStore';
import type { EventSink } from '../../OperatorPorts';

/** Migrations run at once across workloads; the planner already keeps each workload serial. */
const DEFAULT_CONCURRENT_MIGRATIONS = 4;
/** How soon a run that lost a write race looks again. */
const CONFLICT_RETRY_MS = 100;

/**
 * Runs the Migrations the watch shows that are not final, each through the
 * migration engine's state machine, one run per Migration at a time. A run that
 * throws (the store or the API server failed) is retried with back-off; the
 * state machine resumes it from its last recorded phase.
 */
export class MigrationRunner {
  private readonly queue: WorkQueue;
  private readonly stopping = new AbortController();

  constructor(
    private readonly options: {
      machine: MigrationStateMachine;
      /** The Migration as the watch last saw it. */
      lookup: (key: string) => Migration | undefined;
      concurrency?: number;
      events?: EventSink;
      metrics?: OperatorMetrics;
      /** What its retries wait on; the wall clock's timers when left out. */
      timers?: Timers;
      /** The clock its timers are timed by. */
      clock?: Clock;
      onError?: (error: unknown) => void;
    },
  ) {
    this.queue = new WorkQueue({
      timers: options.timers,
      clock: options.clock,
      concurrency: options.concurrency ?? DEFAULT_CONCURRENT_MIGRATIONS,
      reconcile: key => this.run(key),
      onError: (_key, error) => options.onError?.(error),
    });
  }

  /** The watch saw this Migration change. */
  changed(migration: Migration): void {
    if (!isFinalPhase(migration.status?.phase ?? 'Planned')) {
      this.queue.add(objectKey(migration));
    }
  }

  /** Stops taking work and aborts the runs under way (they resume in the next leader). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.queue.shutdown();
  }

  private async run(key: string): Promise<ReconcileResult | undefined> {
    const seen = this.options.lookup(key);
    if (!seen || isFinalPhase(seen.status?.phase ?? 'Planned'))
      return undefined;
    const { namespace, name } = seen.metadata;
    let done: Migration;
    try {
      done = await this.options.machine.run(
        namespace,
        name,
        this.stopping.signal,
      );
    } catch (error) {
      if (this.stopping.signal.aborted) return undefined;
      // Someone else wrote it first (its creator's status write, or another
      // replica that still thought it led): look again once the watch has it.
      if (error instanceof MigrationConflictError)
        return { requeueAfterMs: CONFLICT_RETRY_MS };
      throw error;
    }
    const phase = done.status?.phase;
    if (phase === 'Succeeded' || phase === 'RolledBack' || phase === 'Failed') {
      this.options.metrics?.migrationFinished({
        reason: done.spec.reason,
        driver: done.spec.driver,
        phase,
        writePauseMs: done.status?.writePauseMs,
      });
      await this.options.events?.record(
        { apiVersion: 'v1', kind: 'Pod', namespace, name: done.spec.pod },
        {
          type: phase === 'Succeeded' ? 'Normal' : 'Warning',
          reason: `Migration${phase}`,
          action: 'Migrate',
          note:
            phase === 'Succeeded'
              ? movedNote(done)
              : done.status?.message ?? phase,
          related: {
            apiVersion: done.apiVersion,
            kind: 'Migration',
            namespace,
            name,
          },
        },
      );
    }
    return undefined;
  }
}

/** The Event note of a move that succeeded: where it went, and the write pause if one was measured. */
function movedNote(done: Migration): string {
  const target =
    done.status?.targetNode ?? done.spec.targetNode ?? 'its target';
  const pause =
    done.status?.writePauseMs !== undefined
      ? `; writes paused ${done.status.writePauseMs} ms`
      : '';
  return `moved from ${done.spec.sourceNode} to ${target}${pause}`;
}
