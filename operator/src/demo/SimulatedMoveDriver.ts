import type { V1Pod } from '@kubernetes/client-node';
import { type Clock, sleepOn, type Timers } from '../core/clock';
import { DEFAULT_MOVE_TIMING, MoveTiming } from '../core/migrationPlanner';
import { PODS } from '../kube/client/resources';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
} from '../migration/MigrationDriver';
import type { SimulatedCluster } from './SimulatedCluster';

/**
 * The demo's migration driver: a live hand-off that takes as long as the
 * engine's timing says a real one takes (the target pod's start, the state at
 * the measured transfer rate, the switch-over's write pause) on the demo's
 * clock, and then moves the member's pod to the target node in the simulated
 * cluster. Each phase records when it ends in the Migration's driver state, so
 * a resumed step waits only for what is left.
 */
export class SimulatedMoveDriver implements MigrationDriver {
  readonly method: MigrationDriver['method'];
  private readonly timing: MoveTiming;

  constructor(
    private readonly options: {
      /** The method it stands in for; `valkey` when left out. */
      method?: MigrationDriver['method'];
      cluster: SimulatedCluster;
      clock: Clock;
      /** The demo clock's timers: a phase waits on them. */
      timers: Timers;
      /** Bytes of state a member holds: what the transfer moves. */
      stateBytesOf: (namespace: string, pod: string) => number;
      timing?: MoveTiming;
    },
  ) {
    this.timing = options.timing ?? DEFAULT_MOVE_TIMING;
    this.method = options.method ?? 'valkey';
  }

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    // As the cluster's hand-off: a move to a node yet to launch is not one it can make.
    if (!ctx.migration.spec.targetNode) {
      throw new PermanentMigrationError(
        'a valkey hand-off needs spec.targetNode',
      );
    }
    await this.waitFor(ctx, 'prepared', this.timing.podStartMs);
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    const { namespace } = ctx.migration.metadata;
    const bytes = this.options.stateBytesOf(namespace, ctx.migration.spec.pod);
    const ms = (bytes / this.timing.bytesPerSecond) * 1000;
    if (await this.waitFor(ctx, 'transferred', ms)) ctx.addBytesMoved(bytes);
  }

  async switchOver(ctx: MigrationStepContext): Promise<void> {
    const started = ctx.clock.now();
    await this.waitFor(ctx, 'switched', this.timing.switchoverMs);
    this.movePod(ctx);
    ctx.recordWritePause(Math.max(0, ctx.clock.now() - started));
  }

  async verify(): Promise<void> {}

  async cleanUp(): Promise<void> {}

  /** Nothing moved before the switch-over, and the switch-over is the last step that can fail. */
  async rollBack(): Promise<void> {}

  private movePod(ctx: MigrationStepContext): void {
    const { namespace } = ctx.migration.metadata;
    const key = `${namespace}/${ctx.migration.spec.pod}`;
    const pod = this.options.cluster.object<V1Pod>(PODS, key);
    const target = ctx.migration.spec.targetNode!;
    if (!pod) throw new Error(`pod ${key} is gone`);
    this.options.cluster.put<V1Pod>(PODS, {
      ...pod,
      spec: { ...pod.spec!, nodeName: target },
    });
  }

  /**
   * Waits until `ms` of demo time after the step first began (kept under
   * `key` in the driver state); true when this call did the waiting.
   */
  private async waitFor(
    ctx: MigrationStepContext,
    key: string,
    ms: number,
  ): Promise<boolean> {
    const recorded = ctx.state[key];
    const until = recorded ? Number(recorded) : ctx.clock.now() + ms;
    ctx.state[key] = String(until);
    while (ctx.clock.now() < until) {
      if (ctx.signal.aborted) throw new Error('the operator is stopping');
      await sleepOn(
        this.options.timers,
        until - ctx.clock.now(),
        ctx.signal,
      ).catch(() => {});
    }
    return !recorded;
  }
}
