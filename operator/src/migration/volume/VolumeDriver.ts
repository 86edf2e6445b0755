import type { Clock } from '../../core/clock';
import {
  DeadlineExceededError,
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  sleep,
} from '../MigrationDriver';

/** How often volume and pod states are polled. */
export const VOLUME_POLL_MS = 1_000;
/** Longest wait for a detach, a snapshot or a pod to become ready. */
export const VOLUME_WAIT_TIMEOUT_MS = 10 * 60_000;

/** A pod's persistent volume claim, as the driver needs it. */
export interface ClaimInfo {
  claim: string;
  /** Zone the bound volume lives in; undefined for volumes reachable from every zone. */
  zone?: string;
  sizeBytes: number;
}

/**
 * The storage and scheduling operations the volume driver relies on; on a cluster,
 * PersistentVolumeClaims, VolumeSnapshots (CSI) and pod placement. Every method is
 * idempotent by name, so a resumed migration may call it again.
 */
export interface VolumeRuntime {
  /** The claim the pod mounts. */
  claimOf(pod: string): Promise<ClaimInfo>;
  /** Zone of a node (`topology.kubernetes.io/zone`). */
  zoneOf(node: string): Promise<string>;
  /** Stops the pod so its ReadWriteOnce volume detaches; no error if already stopped. */
  stopPod(pod: string): Promise<void>;
  /** Whether the claim's volume is attached to no node. */
  isDetached(claim: string): Promise<boolean>;
  /** Takes (or finds) a snapshot `name` of the claim. */
  snapshot(claim: string, name: string): Promise<void>;
  /** Whether snapshot `name` is ready to restore from. */
  snapshotReady(name: string): Promise<boolean>;
  /** Creates (or finds) claim `claim` in `zone` from snapshot `snapshot`. */
  restoreClaim(snapshot: string, claim: string, zone: string): Promise<void>;
  /** Runs the pod on `node` with `claim` mounted; replaces a stopped pod of the same name. */
  startPod(pod: string, node: string, claim: string): Promise<void>;
  /** Whether the pod runs and is ready on `node`. */
  podReady(pod: string, node: string): Promise<boolean>;
  /** The node the pod's current incarnation is scheduled on, if any; a stopped or stopping one has none. */
  podNode(pod: string): Promise<string | undefined>;
  deleteSnapshot(name: string): Promise<void>;
  deleteClaim(claim: string): Promise<void>;
}

/** What the volume driver needs. */
export interface VolumeDriverOptions {
  runtime: VolumeRuntime;
  clock: Clock;
  /** Poll interval; tests shorten it. */
  pollMs?: number;
}

/**
 * Moves a pod whose state is its persistent volume. Within the volume's zone the
 * volume is re-attached to the target node; across zones its data goes along:
 * a first snapshot while the pod still serves (CSI snapshots are incremental, so
 * the second is small), then stop, a final snapshot, a new claim restored in the
 * target zone, and the pod started there.
 */
export class VolumeDriver implements MigrationDriver {
  readonly method = 'volume' as const;
  private readonly pollMs: number;

  constructor(private readonly options: VolumeDriverOptions) {
    this.pollMs = options.pollMs ?? VOLUME_POLL_MS;
  }

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    if (!spec.targetNode) {
      throw new PermanentMigrationError('a volume move needs spec.targetNode');
    }
    const { runtime } = this.options;
    const claim = await runtime.claimOf(spec.pod);
    const targetZone = await runtime.zoneOf(spec.targetNode);
    ctx.state.sourceClaim ??= claim.claim;
    ctx.state.targetZone = targetZone;
    ctx.state.mode ??= !claim.zone || claim.zone === targetZone ? 'reattach' : 'snapshot';
    ctx.state.targetClaim ??= ctx.state.mode === 'reattach' ? claim.claim : `${claim.claim}-${targetZone}`;
    ctx.state.sizeBytes = String(claim.sizeBytes);
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    if (ctx.state.mode !== 'snapshot') return;
    // Bulk copy while the pod still serves; the final snapshot only carries the difference.
    const name = `${ctx.state.sourceClaim}-ferry-pre`;
    await this.options.runtime.snapshot(ctx.state.sourceClaim, name);
    // Bounded by the notice: a pre-copy that cannot finish is not worth the node's last minutes.
    await this.waitFor(ctx, () => this.options.runtime.snapshotReady(name), `snapshot ${name}`, true);
    ctx.state.preSnapshot = name;
  }

  async switchOver(ctx: MigrationStepContext): Promise<void> {
    const { runtime } = this.options;
    const { spec } = ctx.migration;
    const started = this.options.clock.now();
    await runtime.stopPod(spec.pod);
    // ReadWriteOnce: attaching elsewhere before the old attachment is gone would corrupt it.
    await this.waitFor(ctx, () => runtime.isDetached(ctx.state.sourceClaim), `detach of ${ctx.state.sourceClaim}`);
    if (ctx.state.mode === 'snapshot') {
      const name = `${ctx.state.sourceClaim}-ferry-final`;
      await runtime.snapshot(ctx.state.sourceClaim, name);
      await this.waitFor(ctx, () => runtime.snapshotReady(name), `snapshot ${name}`);
      ctx.state.finalSnapshot = name;
      await runtime.restoreClaim(name, ctx.state.targetClaim, ctx.state.targetZone);
      if (ctx.state.bytesCounted !== '1') {
        ctx.addBytesMoved(Number(ctx.state.sizeBytes));
        ctx.state.bytesCounted = '1';
      }
    }
    await runtime.startPod(spec.pod, spec.targetNode!, ctx.state.targetClaim);
    await this.waitFor(ctx, () => this.readyOnTarget(spec.pod, spec.targetNode!), `pod ${spec.pod} on ${spec.targetNode}`);
    if (ctx.state.pauseRecorded !== '1') {
      ctx.recordWritePause(this.options.clock.now() - started);
      ctx.state.pauseRecorded = '1';
    }
  }

  async verify(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    if (!(await this.options.runtime.podReady(spec.pod, spec.targetNode!))) {
      throw new Error(`pod ${spec.pod} is not ready on ${spec.targetNode}`);
    }
  }

  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    const { runtime } = this.options;
    for (const name of [ctx.state.preSnapshot, ctx.state.finalSnapshot]) {
      if (name) await runtime.deleteSnapshot(name);
    }
    if (ctx.state.mode === 'snapshot') {
      // The data lives in the target zone's claim now; the old one would only cost money.
      await runtime.deleteClaim(ctx.state.sourceClaim);
    }
  }

  async rollBack(ctx: MigrationStepContext): Promise<void> {
    const { runtime } = this.options;
    const { spec } = ctx.migration;
    if (!ctx.state.sourceClaim) return;
    if (await runtime.podReady(spec.pod, spec.sourceNode)) {
      await this.dropTargetClaim(ctx);
      return;
    }
    const serving = await runtime.podNode(spec.pod);
    if (serving && (await runtime.podReady(spec.pod, serving))) {
      // Already serving from the target (or wherever it escaped to) with its volume;
      // stopping it to go back would only add downtime.
      ctx.note(`pod ${spec.pod} already serves on ${serving}; kept there`);
      return;
    }
    await runtime.stopPod(spec.pod);
    await this.waitFor(ctx, () => runtime.isDetached(ctx.state.sourceClaim), `detach of ${ctx.state.sourceClaim}`);
    await runtime.startPod(spec.pod, spec.sourceNode, ctx.state.sourceClaim);
    await this.waitFor(ctx, () => runtime.podReady(spec.pod, spec.sourceNode), `pod ${spec.pod} on ${spec.sourceNode}`);
    await this.dropTargetClaim(ctx);
  }

  /**
   * Whether the started pod is ready on the target. One that was scheduled
   * elsewhere will not come to the target by waiting: the move fails at once,
   * saying why, instead of waiting out the step's timeout.
   */
  private async readyOnTarget(pod: string, target: string): Promise<boolean> {
    const node = await this.options.runtime.podNode(pod);
    if (node && node !== target) {
      throw new PermanentMigrationError(
        `pod ${pod} was started on ${node}, not on the target ${target}: the placement webhook did not pin it (is the webhook enabled for this namespace, and did it answer within its timeout?)`,
      );
    }
    return this.options.runtime.podReady(pod, target);
  }

  private async dropTargetClaim(ctx: MigrationStepContext): Promise<void> {
    if (ctx.state.mode === 'snapshot' && ctx.state.targetClaim !== ctx.state.sourceClaim) {
      await this.options.runtime.deleteClaim(ctx.state.targetClaim);
    }
  }

  private async waitFor(
    ctx: MigrationStepContext,
    check: () => Promise<boolean>,
    what: string,
    withinNotice = false,
  ): Promise<void> {
    const clock = this.options.clock;
    const limit = clock.now() + VOLUME_WAIT_TIMEOUT_MS;
    const until = withinNotice ? Math.min(limit, ctx.deadline ?? Infinity) : limit;
    while (!(await check())) {
      if (clock.now() > until) {
        throw new DeadlineExceededError(`${what} did not finish in time`);
      }
      await sleep(this.pollMs, ctx.signal);
    }
  }
}
