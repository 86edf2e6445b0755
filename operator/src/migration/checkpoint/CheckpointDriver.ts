import type { Clock } from '../../core/clock';
import { AgentUnreachableError, NodeAgentClient } from '../../agent/NodeAgentClient';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  SourceLostError,
  TargetLostError,
} from '../MigrationDriver';

/** The process to move and the address it serves on. */
export interface CheckpointedProcess {
  /** PID of the container's init process, as the source node's agent sees it. */
  pid: number;
  /** The pod's IP: it moves with the process so established connections survive. */
  address: string;
}

/** Where the pod's process is, and how its address moves: the container runtime and the CNI. */
export interface CheckpointWorkloadRuntime {
  /** The pod's process on its node. */
  resolveProcess(pod: string, node: string): Promise<CheckpointedProcess>;
  /**
   * Makes `address` usable on `node` without routing traffic to it yet: the
   * restored sockets bind to it, while clients' packets still reach the locked
   * (dropping) source and are retransmitted instead of reset.
   */
  attachAddress(address: string, node: string): Promise<void>;
  /**
   * Routes `address` to `node` and takes it off every other node, as CNIs that
   * keep a pod's IP across nodes do; idempotent.
   */
  routeAddress(address: string, node: string): Promise<void>;
}

/** Finds the node agent of a node. */
export interface NodeAgentDirectory {
  /** The agent's client, or throws when the node has none. */
  agentFor(node: string): NodeAgentClient;
}

/** What the checkpoint driver needs. */
export interface CheckpointDriverOptions {
  runtime: CheckpointWorkloadRuntime;
  agents: NodeAgentDirectory;
  clock: Clock;
  /**
   * Send memory pages to a CRIU page server on the target while the dump runs
   * (default), overlapping the dump with the transfer. The price: the source
   * keeps no pages, so a target lost after the dump cannot be rolled back to
   * the source. `false` dumps locally and streams after: a longer freeze, but
   * the source can restore its own images.
   */
  streamWhileDumping?: boolean;
}

/**
 * Moves a container's whole process tree (memory, open sockets) with CRIU
 * through Ferry's node agents: dump on the source node, stream the images to
 * the target node's agent, move the pod's address, restore there.
 *
 * It is stop-and-copy (see docs/migration.md for why): the freeze runs from the
 * dump to the end of the restore, and is recorded as the write pause. Until the
 * target has restored, the source agent keeps its images, so a failed move is
 * rolled back by restoring on the source.
 */
export class CheckpointDriver implements MigrationDriver {
  readonly method = 'checkpoint' as const;

  constructor(private readonly options: CheckpointDriverOptions) {}

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    if (!spec.targetNode) {
      throw new PermanentMigrationError('a checkpoint move needs spec.targetNode');
    }
    await this.target(ctx).health().catch(error => {
      throw new TargetLostError(`no node agent on ${spec.targetNode}: ${error.message}`, { cause: error });
    });
    await this.source(ctx).health().catch(error => {
      throw new SourceLostError(`no node agent on ${spec.sourceNode}: ${error.message}`, { cause: error });
    });
    if (!ctx.state.pid) {
      const process = await this.options.runtime.resolveProcess(spec.pod, spec.sourceNode);
      ctx.state.pid = String(process.pid);
      ctx.state.address = process.address;
    }
    ctx.state.imageId ??= imageId(ctx);
    ctx.state.targetPod = spec.pod; // The pod keeps its name and address.
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    const id = ctx.state.imageId;
    let report;
    try {
      let pageServerPort: number | undefined;
      if (this.options.streamWhileDumping !== false && !(await this.source(ctx).image(id)).dumped) {
        pageServerPort = (await this.target(ctx).startPageServer(id)).port;
      }
      // The freeze starts with the dump; the page server is ready before it.
      ctx.state.freezeStartedAt ??= String(this.options.clock.now());
      report = await this.source(ctx).checkpoint(
        id,
        Number(ctx.state.pid),
        this.target(ctx).url,
        pageServerPort,
        ctx.state.address,
      );
    } catch (error) {
      if (error instanceof AgentUnreachableError) {
        throw new SourceLostError(error.message, { cause: error });
      }
      // The agent could not reach the target's agent: the target is the one lost.
      if (/target agent|ECONNREFUSED|EHOSTUNREACH|socket hang up/.test(String(error))) {
        throw new TargetLostError(String(error), { cause: error });
      }
      throw error;
    }
    if (ctx.state.bytesCounted !== '1') {
      ctx.addBytesMoved(report.bytes);
      ctx.state.bytesCounted = '1';
    }
    ctx.state.dumpMs = String(report.dumpMs);
    ctx.state.streamMs = String(report.streamMs);
  }

  async switchOver(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    await this.options.runtime.attachAddress(ctx.state.address, spec.targetNode!);
    let report;
    try {
      report = await this.target(ctx).restore(ctx.state.imageId);
    } catch (error) {
      if (error instanceof AgentUnreachableError) {
        throw new TargetLostError(error.message, { cause: error });
      }
      throw error;
    }
    await this.options.runtime.routeAddress(ctx.state.address, spec.targetNode!);
    ctx.state.restoredPid = String(report.pid);
    if (report.restoreMs > 0) ctx.state.restoreMs = String(report.restoreMs);
    if (ctx.state.freezeRecorded !== '1') {
      ctx.recordWritePause(this.options.clock.now() - Number(ctx.state.freezeStartedAt));
      ctx.state.freezeRecorded = '1';
    }
  }

  async verify(ctx: MigrationStepContext): Promise<void> {
    const image = await this.target(ctx).image(ctx.state.imageId);
    if (!image.restoredPid) {
      throw new Error(`the restored process on ${ctx.migration.spec.targetNode} is not running`);
    }
  }

  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    // Images hold the process's memory, secrets included: none may outlive the move.
    await this.target(ctx).deleteImages(ctx.state.imageId);
    await this.source(ctx)
      .deleteImages(ctx.state.imageId)
      .catch(error => {
        // The source node may already be gone, and its tmpfs with it.
        if (!(error instanceof AgentUnreachableError)) throw error;
      });
  }

  async rollBack(ctx: MigrationStepContext): Promise<void> {
    const id = ctx.state.imageId;
    if (!id) return;
    const { spec } = ctx.migration;
    const onTarget = await this.target(ctx).image(id).catch(() => undefined);
    if (onTarget?.restoredPid) {
      // Restored and running on the target: that is the only live copy; keep it.
      ctx.note('the target had already restored; keeping it');
      return;
    }
    const onSource = await this.source(ctx).image(id);
    if (onSource.dumped && !onSource.pagesLocal) {
      // The pages went to the target's page server: the only complete copy is there.
      if (onTarget?.received) {
        await this.switchOver(ctx);
        // The source has nothing left to restore; it stops answering for the process.
        await this.source(ctx).deleteImages(id).catch(() => {});
        ctx.note(`the source holds no pages; restored on ${spec.targetNode} instead`);
        return;
      }
      // The source's images stay: they are what tells a retried roll-back that the state is lost.
      throw new Error('the dump streamed its pages to a target that is gone; the state is lost');
    }
    await this.options.runtime.routeAddress(ctx.state.address, spec.sourceNode);
    if (!onSource.dumped) {
      // The dump never completed; CRIU resumes a tree whose dump failed.
      return;
    }
    await this.source(ctx).restore(id);
    await this.target(ctx).deleteImages(id).catch(() => {});
    ctx.note(`restored on ${spec.sourceNode} from its own images`);
  }

  async salvage(ctx: MigrationStepContext): Promise<void> {
    // Stop-and-copy has no replica: what the target received is all there is.
    const id = ctx.state.imageId;
    const image = id ? await this.target(ctx).image(id) : undefined;
    if (!image?.received && !image?.restoredPid) {
      throw new Error('the source was lost before its images reached the target; the state is gone');
    }
    await this.switchOver(ctx);
  }

  private source(ctx: MigrationStepContext): NodeAgentClient {
    return this.options.agents.agentFor(ctx.migration.spec.sourceNode);
  }

  private target(ctx: MigrationStepContext): NodeAgentClient {
    return this.options.agents.agentFor(ctx.migration.spec.targetNode!);
  }
}

function imageId(ctx: MigrationStepContext): string {
  const m = ctx.migration.metadata;
  return `${m.namespace}.${m.name}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 120);
}
