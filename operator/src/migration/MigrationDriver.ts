import type { Migration, MigrationAtRisk } from '../api/v1alpha1';
import type { Clock } from '../core/clock';

/**
 * What a driver sees while it runs one step of one migration.
 *
 * Everything a driver must remember across an operator restart goes into
 * `state`; the state machine persists it with the phase after every step, so a
 * driver instance holds nothing that a fresh one could not rebuild.
 */
export interface MigrationStepContext {
  /** The migration as persisted before this step (read-only). */
  readonly migration: Migration;
  /** Driver memory, persisted after the step together with the phase. */
  readonly state: Record<string, string>;
  readonly clock: Clock;
  /** Epoch milliseconds when the source node goes away, if a notice said so. */
  readonly deadline?: number;
  /** Aborted when the operator is shutting down; long waits must honour it. */
  readonly signal: AbortSignal;
  /** Adds to the bytes this migration moved. */
  addBytesMoved(bytes: number): void;
  /** Records the write pause clients saw during the switch. */
  recordWritePause(ms: number): void;
  /** Records what was at risk when the source was lost. */
  recordAtRisk(atRisk: MigrationAtRisk): void;
  /** Free-text progress for the Migration's status message. */
  note(message: string): void;
}

/**
 * Moves one member's state from its source node to a target node.
 *
 * Every step must be idempotent: the state machine calls a step again when the
 * operator restarted before the step's completion was persisted, so a step first
 * looks at the world (which member is primary, which images exist) and only then
 * acts.
 */
export interface MigrationDriver {
  /** The `spec.driver` this driver serves. */
  readonly method: 'valkey' | 'checkpoint' | 'volume' | 'reschedule';
  /** Brings up whatever receives the state on the target node. */
  prepareTarget(ctx: MigrationStepContext): Promise<void>;
  /** Moves the bulk of the state while the source keeps serving where it can. */
  transfer(ctx: MigrationStepContext): Promise<void>;
  /** Makes the target the member that serves, and sends clients to it. */
  switchOver(ctx: MigrationStepContext): Promise<void>;
  /** Checks that the target serves with the state it should have. */
  verify(ctx: MigrationStepContext): Promise<void>;
  /** Retires the source member and drops transfer artefacts. */
  cleanUp(ctx: MigrationStepContext): Promise<void>;
  /**
   * Returns the workload to a state with exactly one serving member, preferring
   * the source; called after a failure in any phase before cleanup.
   */
  rollBack(ctx: MigrationStepContext): Promise<void>;
  /**
   * Called when the source was lost before the switch: promote the best copy
   * that exists and record what was at risk. Drivers that cannot salvage leave
   * it out and the migration fails.
   */
  salvage?(ctx: MigrationStepContext): Promise<void>;
}

/** The source member or its node went away (node reclaimed, process gone). */
export class SourceLostError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceLostError';
  }
}

/** The target member or its node went away. */
export class TargetLostError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TargetLostError';
  }
}

/** The move cannot finish before the source node goes away. */
export class DeadlineExceededError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineExceededError';
  }
}

/** A condition that retrying will not fix (wrong configuration, unsupported server). */
export class PermanentMigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentMigrationError';
  }
}

/** Waits `ms`, or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
