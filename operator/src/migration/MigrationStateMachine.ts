import type {
  Migration,
  MigrationAtRisk,
  MigrationPhase,
  MigrationSpec,
  MigrationStatus,
} from '../api/v1alpha1';
import { FERRY_API_VERSION } from '../api/v1alpha1';
import { type Clock, sleepOn, systemTimers, type Timers } from '../core/clock';
import {
  DeadlineExceededError,
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  SourceLostError,
  TargetLostError,
} from './MigrationDriver';
import type { MigrationStore } from './MigrationStore';

/** Attempts of one phase before the migration rolls back (or fails, past the switch). */
export const MIGRATION_PHASE_ATTEMPTS = 3;
/** Pause between attempts of a phase; short, because a notice leaves little time. */
export const MIGRATION_RETRY_BACKOFF_MS = 250;

const FINAL_PHASES: ReadonlySet<MigrationPhase> = new Set([
  'Succeeded',
  'RolledBack',
  'Failed',
]);

const NEXT_PHASE: Partial<Record<MigrationPhase, MigrationPhase>> = {
  Planned: 'PreparingTarget',
  PreparingTarget: 'Transferring',
  Transferring: 'SwitchingOver',
  SwitchingOver: 'Verifying',
  Verifying: 'CleaningUp',
  CleaningUp: 'Succeeded',
  RollingBack: 'RolledBack',
};

/** Phases in which the source still holds the authoritative state. */
const BEFORE_SWITCH: ReadonlySet<MigrationPhase> = new Set([
  'Planned',
  'PreparingTarget',
  'Transferring',
  'SwitchingOver',
]);

/** Whether a phase is final (the migration will not change any more). */
export function isFinalPhase(phase: MigrationPhase): boolean {
  return FINAL_PHASES.has(phase);
}

/** A log sink; the operator passes its logger, tests pass nothing. */
export interface MigrationLog {
  info(message: string): void;
  warn(message: string): void;
}

const silentLog: MigrationLog = { info: () => {}, warn: () => {} };

/** What the state machine needs; one place wires it, tests swap any part. */
export interface MigrationStateMachineOptions {
  store: MigrationStore;
  drivers: MigrationDriver[];
  clock: Clock;
  /** What the pause between attempts waits on; the wall clock's timers when left out. */
  timers?: Timers;
  log?: MigrationLog;
}

/**
 * Drives Migration objects through their phases, persisting after every step.
 *
 * The persisted phase is the only progress marker: an operator that restarts
 * calls {@link MigrationStateMachine.resumeAll} and every unfinished migration
 * re-runs its current phase (drivers' steps are idempotent). Failures before the
 * switch roll back to the source; failures after it retry, because the target
 * already holds the newest state.
 */
export class MigrationStateMachine {
  private readonly store: MigrationStore;
  private readonly drivers: Map<string, MigrationDriver>;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: MigrationLog;

  constructor(options: MigrationStateMachineOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.timers = options.timers ?? systemTimers;
    this.log = options.log ?? silentLog;
    this.drivers = new Map(options.drivers.map(d => [d.method, d]));
  }

  /** Records a new migration in phase `Planned`, with why its driver was chosen. */
  async plan(
    namespace: string,
    name: string,
    spec: MigrationSpec,
    methodReason?: string,
  ): Promise<Migration> {
    const now = this.iso();
    return this.store.create({
      apiVersion: FERRY_API_VERSION,
      kind: 'Migration',
      metadata: { namespace, name, creationTimestamp: now },
      spec,
      status: {
        phase: 'Planned',
        phases: [{ phase: 'Planned', startedAt: now }],
        targetNode: spec.targetNode,
        bytesMoved: 0,
        driverState: {},
        attempts: 0,
        ...(methodReason !== undefined ? { methodReason } : {}),
      },
    });
  }

  /** Runs every migration that is not final; what a restarted operator calls first. */
  async resumeAll(signal?: AbortSignal): Promise<Migration[]> {
    const open = (await this.store.list()).filter(
      m => !isFinalPhase(m.status?.phase ?? 'Planned'),
    );
    const done: Migration[] = [];
    // Serial on purpose: moves of one workload must not overlap (quorum), and the
    // planner already decided the order.
    for (const m of open) {
      done.push(await this.run(m.metadata.namespace, m.metadata.name, signal));
    }
    return done;
  }

  /** Drives one migration until it is final; safe to call again after a crash. */
  async run(
    namespace: string,
    name: string,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<Migration> {
    let migration = await this.store.get(namespace, name);
    if (!migration) {
      throw new Error(`no migration ${namespace}/${name}`);
    }
    const driver = this.drivers.get(migration.spec.driver);
    if (!driver) {
      throw new PermanentMigrationError(
        `no driver '${migration.spec.driver}' is registered`,
      );
    }
    while (!isFinalPhase(phaseOf(migration))) {
      signal.throwIfAborted();
      const phase = phaseOf(migration);
      const step = this.context(migration, signal);
      let failure: { error: unknown } | undefined;
      try {
        await this.execute(driver, phase, step.context);
      } catch (error) {
        failure = { error };
      }
      // Store errors propagate: an operator that cannot record progress must stop
      // and let its successor resume from the last recorded phase.
      if (!failure) {
        migration = await this.advance(migration, step, NEXT_PHASE[phase]!);
      } else if (signal.aborted) {
        throw failure.error;
      } else {
        migration = await this.onFailure(driver, migration, phase, step, failure.error);
      }
    }
    return migration;
  }

  private async execute(
    driver: MigrationDriver,
    phase: MigrationPhase,
    ctx: MigrationStepContext,
  ): Promise<void> {
    switch (phase) {
      case 'Planned':
        if (ctx.deadline !== undefined && ctx.deadline <= ctx.clock.now()) {
          // The node is already gone: there is nothing left to copy from.
          throw new SourceLostError('the notice ran out before the move began');
        }
        return;
      case 'PreparingTarget':
        await driver.prepareTarget(ctx);
        return;
      case 'Transferring':
        await driver.transfer(ctx);
        return;
      case 'SwitchingOver':
        await driver.switchOver(ctx);
        return;
      case 'Verifying':
        await driver.verify(ctx);
        return;
      case 'CleaningUp':
        await driver.cleanUp(ctx);
        return;
      case 'RollingBack':
        await driver.rollBack(ctx);
        return;
      default:
        throw new Error(`phase ${phase} has no step`);
    }
  }

  private async onFailure(
    driver: MigrationDriver,
    migration: Migration,
    phase: MigrationPhase,
    step: StepRecord,
    error: unknown,
  ): Promise<Migration> {
    const reason = describe(error);
    const ref = `${migration.metadata.namespace}/${migration.metadata.name}`;
    this.log.warn(`migration ${ref}: ${phase} failed: ${reason}`);

    if (error instanceof SourceLostError && BEFORE_SWITCH.has(phase)) {
      if (!driver.salvage) {
        return this.finish(migration, step, 'Failed', `source lost in ${phase} and the ${driver.method} driver cannot salvage: ${reason}`);
      }
      try {
        await driver.salvage(step.context);
      } catch (salvageError) {
        return this.finish(migration, step, 'Failed', `source lost in ${phase}; salvage failed: ${describe(salvageError)}`);
      }
      step.messages.push(`source lost in ${phase}: ${reason}; promoted the best copy`);
      // Straight to Verifying: the salvaged member already serves.
      return this.advance(migration, step, 'Verifying');
    }

    const attempts = (migration.status?.attempts ?? 0) + 1;
    const hopeless =
      error instanceof TargetLostError ||
      error instanceof DeadlineExceededError ||
      error instanceof PermanentMigrationError;
    if (!hopeless && attempts < MIGRATION_PHASE_ATTEMPTS) {
      await sleepOn(this.timers, MIGRATION_RETRY_BACKOFF_MS);
      return this.persist(migration, step, status => {
        status.attempts = attempts;
        status.message = `${phase} attempt ${attempts} failed: ${reason}; retrying`;
      });
    }

    if (phase === 'RollingBack') {
      return this.finish(migration, step, 'Failed', `rollback failed: ${reason}`);
    }
    if (phase === 'CleaningUp') {
      // The target serves; only the retirement of the old member is left undone.
      return this.finish(migration, step, 'Failed', `the target serves but cleanup failed: ${reason}`);
    }
    return this.advance(migration, step, 'RollingBack', status => {
      status.failedPhase = phase;
      status.message = `${phase} failed: ${reason}; rolling back`;
    });
  }

  private context(migration: Migration, signal: AbortSignal): StepRecord {
    const record: StepRecord = {
      state: { ...(migration.status?.driverState ?? {}) },
      bytes: 0,
      messages: [],
      context: undefined as unknown as MigrationStepContext,
    };
    const deadline = migration.spec.deadline
      ? Date.parse(migration.spec.deadline)
      : undefined;
    record.context = {
      migration: structuredClone(migration),
      state: record.state,
      clock: this.clock,
      deadline,
      signal,
      addBytesMoved: bytes => {
        record.bytes += bytes;
      },
      recordWritePause: ms => {
        record.writePauseMs = ms;
      },
      recordAtRisk: atRisk => {
        record.atRisk = atRisk;
      },
      note: message => {
        record.messages.push(message);
      },
    };
    return record;
  }

  private advance(
    migration: Migration,
    step: StepRecord,
    next: MigrationPhase,
    extra?: (status: MigrationStatus) => void,
  ): Promise<Migration> {
    return this.persist(migration, step, status => {
      const now = this.iso();
      const open = status.phases.find(p => p.phase === status.phase && !p.finishedAt);
      if (open) {
        open.finishedAt = now;
      }
      status.phase = next;
      status.attempts = 0;
      if (isFinalPhase(next)) {
        status.completedAt = now;
      } else {
        status.phases.push({ phase: next, startedAt: now });
      }
      extra?.(status);
    });
  }

  private finish(
    migration: Migration,
    step: StepRecord,
    phase: 'Failed' | 'RolledBack',
    message: string,
  ): Promise<Migration> {
    return this.advance(migration, step, phase, status => {
      status.message = message;
    });
  }

  private async persist(
    migration: Migration,
    step: StepRecord,
    change: (status: MigrationStatus) => void,
  ): Promise<Migration> {
    const next = structuredClone(migration);
    const status = next.status!;
    status.driverState = { ...step.state };
    status.bytesMoved += step.bytes;
    if (step.writePauseMs !== undefined) {
      status.writePauseMs = step.writePauseMs;
    }
    if (step.atRisk) {
      status.atRisk = step.atRisk as MigrationAtRisk;
    }
    if (step.state.targetPod) {
      status.targetPod = step.state.targetPod;
    }
    if (step.messages.length > 0) {
      // A rollback's notes add to the reason it started; elsewhere the latest note wins.
      status.message =
        status.phase === 'RollingBack' && status.message
          ? `${status.message}; ${step.messages.join('; ')}`
          : step.messages.join('; ');
    }
    change(status);
    // Consumed: a retry of the same step must not count its bytes twice.
    step.bytes = 0;
    step.messages = [];
    return this.store.updateStatus(next);
  }

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }
}

interface StepRecord {
  state: Record<string, string>;
  bytes: number;
  writePauseMs?: number;
  atRisk?: MigrationAtRisk;
  messages: string[];
  context: MigrationStepContext;
}

function phaseOf(migration: Migration): MigrationPhase {
  return migration.status?.phase ?? 'Planned';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
