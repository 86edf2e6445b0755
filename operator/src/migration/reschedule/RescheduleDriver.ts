import type { Clock } from '../../core/clock';
import { DeadlineExceededError, MigrationDriver, MigrationStepContext, sleep } from '../MigrationDriver';

/** How often eviction and readiness are polled. */
export const RESCHEDULE_POLL_MS = 1_000;
/** Longest wait for the workload's controller to bring a replacement up. */
export const REPLACEMENT_READY_TIMEOUT_MS = 10 * 60_000;

/** Outcome of one eviction request, as the Eviction API answers it. */
export type EvictionResult = 'evicted' | 'gone' | 'blocked';

/** Eviction and readiness, as the Kubernetes API offers them. */
export interface PodEvictor {
  /**
   * Asks for the pod's eviction (policy/v1 Eviction, which honours
   * PodDisruptionBudgets): `blocked` when a budget forbids it now (HTTP 429),
   * `gone` when the pod no longer exists.
   */
  evict(namespace: string, pod: string): Promise<EvictionResult>;
  /** Name of a ready replacement member not on `avoidNode`, if any. */
  readyReplacement(namespace: string, workload: string, avoidNode: string, except: string): Promise<string | undefined>;
}

/** What the reschedule driver needs. */
export interface RescheduleDriverOptions {
  evictor: PodEvictor;
  clock: Clock;
  pollMs?: number;
}

/**
 * Plain eviction, for members whose state lives elsewhere (a stateless proxy, a
 * cache that refills, a queue consumer): the pod is evicted through the Eviction
 * API, so PodDisruptionBudgets hold, and the workload's controller starts the
 * replacement where the scheduler (steered by Ferry's placement) puts it.
 */
export class RescheduleDriver implements MigrationDriver {
  readonly method = 'reschedule' as const;
  private readonly pollMs: number;

  constructor(private readonly options: RescheduleDriverOptions) {
    this.pollMs = options.pollMs ?? RESCHEDULE_POLL_MS;
  }

  async prepareTarget(): Promise<void> {
    // Nothing to prepare: the controller creates the replacement after the eviction.
  }

  async transfer(): Promise<void> {
    // No state to move.
  }

  async switchOver(ctx: MigrationStepContext): Promise<void> {
    const { metadata, spec } = ctx.migration;
    const clock = this.options.clock;
    const started = clock.now();
    for (;;) {
      const result = await this.options.evictor.evict(metadata.namespace, spec.pod);
      if (result !== 'blocked') break;
      // A budget blocks it: another member is down. Wait for it rather than break quorum,
      // unless the node goes first, which it will do without asking.
      if (ctx.deadline !== undefined && clock.now() >= ctx.deadline) {
        throw new DeadlineExceededError(`eviction of ${spec.pod} stayed blocked by its PodDisruptionBudget`);
      }
      await sleep(this.pollMs, ctx.signal);
    }
    ctx.state.evictedAt ??= String(started);
  }

  async verify(ctx: MigrationStepContext): Promise<void> {
    const { metadata, spec } = ctx.migration;
    const clock = this.options.clock;
    const until = clock.now() + REPLACEMENT_READY_TIMEOUT_MS;
    for (;;) {
      const replacement = await this.options.evictor.readyReplacement(
        metadata.namespace,
        spec.workloadRef.name,
        spec.sourceNode,
        spec.pod,
      );
      if (replacement) {
        ctx.state.targetPod = replacement;
        if (ctx.state.pauseRecorded !== '1') {
          ctx.recordWritePause(clock.now() - Number(ctx.state.evictedAt ?? clock.now()));
          ctx.state.pauseRecorded = '1';
        }
        return;
      }
      if (clock.now() > until) {
        throw new Error(`no replacement for ${spec.pod} became ready`);
      }
      await sleep(this.pollMs, ctx.signal);
    }
  }

  async cleanUp(): Promise<void> {
    // The evicted pod is gone; nothing is left behind.
  }

  async rollBack(ctx: MigrationStepContext): Promise<void> {
    // An eviction cannot be undone; the controller recreates the member either way.
    ctx.note('nothing to undo: the controller replaces evicted members by itself');
  }
}
