import type { Clock } from '../../core/clock';
import {
  DeadlineExceededError,
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  SourceLostError,
  TargetLostError,
  sleep,
} from '../MigrationDriver';
import {
  MemberUnreachableError,
  ReplicationInfo,
  ValkeyAccess,
  ValkeyAdmin,
  ValkeyAdminSession,
  ValkeyEndpoint,
} from './ValkeyAdmin';

/** How often replication progress is polled once the replica streams (the switch is near). */
export const REPLICATION_POLL_MS = 20;
/** How often the replica's offset is read inside the write pause, while it applies the last bytes. */
export const DRAIN_POLL_MS = 1;
/** How often it is polled while the replica still receives its initial snapshot. */
export const BULK_SYNC_POLL_MS = 250;
/** Longest wait for a freshly started member to answer PING. */
export const TARGET_READY_TIMEOUT_MS = 30_000;
/** Longest wait for the initial sync when no notice deadline is closer. */
export const INITIAL_SYNC_TIMEOUT_MS = 10 * 60_000;
/** Replication lag below which the replica counts as caught up and the switch may begin. */
export const SWITCH_LAG_BYTES = 1024 * 1024;
/** Time kept back before the notice runs out for the switch itself. */
export const SWITCH_RESERVE_MS = 5_000;
/**
 * Bound of the write pause on the old primary. If the operator dies during the
 * switch the server unpauses itself after this long, so a crash never leaves
 * the service frozen.
 */
export const WRITE_PAUSE_TIMEOUT_MS = 2_000;
/** Longest wait for a FAILOVER to settle. */
export const FAILOVER_SETTLE_TIMEOUT_MS = WRITE_PAUSE_TIMEOUT_MS + 3_000;
/**
 * Longest the switch holds writes for subscribers to re-subscribe on the new
 * primary. Publishes are paused with the other writes, so a subscriber that is
 * back before they resume misses nothing; one that is slower misses what is
 * published until it is back. Client libraries reconnect within tens of ms
 * (ioredis/iovalkey: 50 ms on the first retry by default, node-redis 50 ms).
 */
export const RESUBSCRIBE_WAIT_MS = 300;
/** Unreachable for this long (several polls in a row) before the source counts as lost. */
export const SOURCE_LOST_CONFIRM_MS = 1_500;

/**
 * Where members run and how clients find them; on a cluster this is pods and a
 * Service, in tests network namespaces and a moving address.
 */
export interface ValkeyMemberRuntime {
  /** The endpoint of an existing member pod. */
  resolveMember(pod: string, node: string): Promise<ValkeyEndpoint>;
  /**
   * Starts the replacement member on `node`, empty and ready to replicate, or
   * returns it if it already runs (idempotent by `name`).
   */
  startMember(name: string, node: string): Promise<ValkeyEndpoint>;
  /** Stops a member and releases its pod; no error when it is already gone. */
  stopMember(member: ValkeyEndpoint): Promise<void>;
  /**
   * Makes sure a member that is believed lost can never serve clients again
   * (deletes its pod, takes its address away); no error when it is gone.
   */
  fenceMember(member: ValkeyEndpoint): Promise<void>;
  /** Other replicas of the same workload, candidates when the source is lost. */
  otherReplicas?(pod: string): Promise<ValkeyEndpoint[]>;
}

/** Sends clients to the primary: a Service selector, a moving address, a proxy. */
export interface ClientRedirector {
  /**
   * Readies everything that can be readied before the switch (an address
   * attached but not routed, an endpoint created but not ready), so that
   * `pointTo` inside the write pause does as little as possible.
   */
  prepare?(member: ValkeyEndpoint): Promise<void>;
  /** Routes new client connections to `member`; idempotent. */
  pointTo(member: ValkeyEndpoint): Promise<void>;
  /** The member (by name) clients are routed to now. */
  current(): Promise<string | undefined>;
}

/** How the final switch is made (see {@link ValkeyDriverOptions.switchover}). */
export type SwitchoverMode = 'auto' | 'failover' | 'pause';

/** What the valkey driver needs. */
export interface ValkeyDriverOptions {
  runtime: ValkeyMemberRuntime;
  redirector: ClientRedirector;
  access: ValkeyAccess;
  /**
   * `pause` (the default, `auto`) does CLIENT PAUSE WRITE, waits for equal
   * offsets and promotes by hand; `failover` uses the server's FAILOVER (Redis
   * 6.2+, Valkey). Measured here, FAILOVER holds writes for 0.6-1 s: the primary
   * waits for the replica's offset acknowledgement, which replicas send once a
   * second, while the hand-made switch reads the replica's offset directly and
   * pauses for tens of milliseconds. So `auto` means `pause`; both need 6.2+.
   */
  switchover?: SwitchoverMode;
  clock: Clock;
}

/**
 * Live hand-off of a Valkey/Redis member: the new member replicates from the old
 * one while it serves, writes pause only for the final switch, clients are
 * redirected, the old member retires.
 */
export class ValkeyDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  private readonly runtime: ValkeyMemberRuntime;
  private readonly redirector: ClientRedirector;
  private readonly access: ValkeyAccess;
  private readonly mode: SwitchoverMode;
  private readonly clock: Clock;
  /** Last offset seen on the source, per migration; lost on restart, which only widens the reported risk. */
  private readonly lastSeen = new Map<string, { offset: number; at: number }>();

  constructor(options: ValkeyDriverOptions) {
    this.runtime = options.runtime;
    this.redirector = options.redirector;
    this.access = options.access;
    this.mode = options.switchover ?? 'auto';
    this.clock = options.clock;
  }

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    if (!spec.targetNode) {
      throw new PermanentMigrationError('a valkey hand-off needs spec.targetNode');
    }
    const source = await this.runtime.resolveMember(spec.pod, spec.sourceNode);
    saveEndpoint(ctx.state, 'source', source);
    const targetName = ctx.state.targetName ?? `${spec.pod}-ferry-${shortId(ctx)}`;
    const target = await this.runtime.startMember(targetName, spec.targetNode);
    saveEndpoint(ctx.state, 'target', target);
    ctx.state.targetPod = target.name;
    await this.waitUntilAnswers(target, ctx);
    await this.withSource(ctx, async admin => {
      const stats = await admin.info('stats');
      ctx.state.sourceReplBytesAtStart ??= stats.total_net_repl_output_bytes ?? '0';
      const repl = await admin.replication();
      if (repl.role !== 'master') {
        throw new PermanentMigrationError(
          `source ${source.name} is a replica; only a primary is handed off`,
        );
      }
    });
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    const source = endpoint(ctx.state, 'source');
    const target = endpoint(ctx.state, 'target');
    await this.withTarget(ctx, async admin => {
      const repl = await admin.replication();
      if (repl.role === 'master' || repl.masterHost !== source.host || repl.masterPort !== source.port) {
        if (this.access.replicationPassword) {
          if (this.access.replicationUser) {
            await admin.call('CONFIG', 'SET', 'masteruser', this.access.replicationUser);
          }
          await admin.call('CONFIG', 'SET', 'masterauth', this.access.replicationPassword);
        }
        // The full sync runs with the owner's settings, on purpose. It is CPU-bound
        // (RDB encoding in the source's child, parsing on the replica; a 1 GiB,
        // million-key sync took 4.5-8 s here on a link that moves 1 GiB in 0.8 s),
        // and nothing the hand-off could switch for its duration pays: `rdbchecksum`
        // cannot be changed at run time (Redis 7 and Valkey refuse CONFIG SET of
        // it), `rdbcompression no` made a compressible dataset sync slower (5.7 s
        // against 4.0 s: the replica then parses 25x more bytes), and
        // `repl-diskless-load` is the target member's own setting (on-empty-db was
        // fastest: swapdb 9.4 s, disabled 11.2 s).
        await admin.call('REPLICAOF', source.host, source.port);
      }
    });
    const limit = Math.min(
      this.clock.now() + INITIAL_SYNC_TIMEOUT_MS,
      ctx.deadline !== undefined ? ctx.deadline - SWITCH_RESERVE_MS : Infinity,
    );
    const sourceSession = new ValkeyAdminSession(source, this.access);
    const targetSession = new ValkeyAdminSession(target, this.access);
    let unreachableSince: number | undefined;
    let previous: { source?: number; target: number } | undefined;
    try {
      for (;;) {
        ctx.signal.throwIfAborted();
        let sourceRepl: ReplicationInfo | undefined;
        try {
          // Stamped before asking: every write acknowledged before this instant is
          // inside the offset the source reports.
          const askedAt = this.clock.now();
          sourceRepl = await sourceSession.run(a => a.replication());
          unreachableSince = undefined;
          this.lastSeen.set(key(ctx), { offset: sourceRepl.offset, at: askedAt });
        } catch (error) {
          if (!(error instanceof MemberUnreachableError)) throw error;
          unreachableSince ??= this.clock.now();
          if (this.clock.now() - unreachableSince >= SOURCE_LOST_CONFIRM_MS) {
            throw new SourceLostError(error.message, { cause: error });
          }
        }
        const targetRepl = await targetSession.run(a => a.replication()).catch(error => {
          throw error instanceof MemberUnreachableError ? new TargetLostError(error.message, { cause: error }) : error;
        });
        // After a diskless full sync the source holds the writes it took meanwhile
        // until the replica's first acknowledgement, which can come up to a second
        // later (replicas acknowledge once a second). A replica that looks in sync
        // then has a stalled stream, and a switch begun now keeps writes paused
        // until that acknowledgement. So switch only once the stream flows: the
        // replica's offset moved since the last poll, or reached what the source
        // had then. This waits outside the pause, while writes still flow.
        const streaming =
          previous !== undefined &&
          (targetRepl.offset > previous.target ||
            (previous.source !== undefined && targetRepl.offset >= previous.source));
        const synced = isSyncedReplica(targetRepl, source);
        const caughtUp = sourceRepl && synced && sourceRepl.offset - targetRepl.offset <= SWITCH_LAG_BYTES;
        // Offsets count only once the sync is over: loading the snapshot moves the offset too.
        previous = synced ? { source: sourceRepl?.offset, target: targetRepl.offset } : undefined;
        if (sourceRepl && caughtUp && streaming) {
          // Read now, not before: a primary takes a new replication id when its first
          // replica attaches (it creates its backlog then).
          ctx.state.sourceReplid = sourceRepl.replid;
          this.rememberSourceOffset(ctx);
          await this.redirector.prepare?.(target);
          return;
        }
        if (this.clock.now() > limit) {
          throw new DeadlineExceededError(
            `replica ${target.name} did not catch up before ${new Date(limit).toISOString()}`,
          );
        }
        // While the bulk sync runs there is nothing to decide; poll gently.
        await sleep(targetRepl.syncInProgress ? BULK_SYNC_POLL_MS : REPLICATION_POLL_MS, ctx.signal);
      }
    } finally {
      sourceSession.close();
      targetSession.close();
    }
  }

  async switchOver(ctx: MigrationStepContext): Promise<void> {
    const source = endpoint(ctx.state, 'source');
    const target = endpoint(ctx.state, 'target');
    const targetRepl = await this.withTarget(ctx, a => a.replication());
    let sourceRepl: ReplicationInfo;
    try {
      sourceRepl = await ValkeyAdmin.with(source, this.access, a => a.replication());
    } catch (error) {
      if (error instanceof MemberUnreachableError) {
        if (targetRepl.role === 'master' && (await this.redirector.current()) === target.name) {
          // The switch finished before the source went away; nothing to salvage.
          return;
        }
        // A slow answer on a busy node is not a lost node: salvage fences the
        // source for good, so be sure first.
        if (await this.staysUnreachable(source, ctx.signal)) {
          throw new SourceLostError(error.message, { cause: error });
        }
        throw new Error(`source ${source.name} did not answer for a moment; trying the switch again`);
      }
      throw error;
    }

    let started = this.clock.now();
    let redirected = false;
    let unpausedAt: number | undefined;
    // Only a switch made by this call paused writes. A resumed step that finds
    // the roles swapped already records nothing: the pause happened in a run
    // whose measurement died with it, and the redirect it redoes pauses nothing.
    let paused = false;
    if (targetRepl.role === 'master' && sourceRepl.role === 'master') {
      await this.resolveTwoPrimaries(source, target, sourceRepl, targetRepl);
    } else if (targetRepl.role === 'slave' && sourceRepl.role === 'master') {
      if (!isSyncedReplica(targetRepl, source)) {
        // Never demote a primary whose replica is not in sync: the data would go with it.
        throw new Error(`replica ${target.name} is not in sync with ${source.name}; not switching`);
      }
      // The old primary may be gone moments after the switch (a ReplicaSet
      // removes it): read what it has sent so far while it surely answers.
      await this.noteBytesSent(ctx);
      const subscribers = await this.withSource(ctx, a => pubsubClients(a)).catch(() => 0);
      paused = true;
      // Where the pause goes, part by part (ms), for the Migration's record.
      const switchSteps: string[] = [];
      let stepMark = this.clock.now();
      const switchStep = (name: string) => {
        const now = this.clock.now();
        if (name !== 'start') switchSteps.push(`${name} ${now - stepMark}`);
        stepMark = now;
      };
      if (await this.useFailover(source)) {
        await this.failover(source, target);
      } else {
        // Redirect while the old primary is still paused, on the connection that
        // paused it: every millisecond here is a millisecond of write pause.
        started = await this.pauseAndPromote(source, target, async (fromAdmin, step) => {
          await this.redirector.pointTo(target);
          step('redirect');
          // Clients go to the target now. The old primary may be removed at any
          // moment from here (a ReplicaSet deletes it on the redirect), and a
          // server that is gone pauses nobody: the rest is best effort, so the
          // switch and its pause are recorded rather than retried.
          if (subscribers > 0) {
            // Subscribers first, and publishers (normal clients, whose PUBLISH is
            // paused here and resent by their library on reconnect) only once the
            // subscribers are back on the target: a message then finds them there.
            await fromAdmin.call('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => {});
            await this.waitForSubscribers(target, subscribers);
            step('resubscribe');
          }
          await fromAdmin.call('CLIENT', 'KILL', 'TYPE', 'normal').catch(() => {});
          step('disconnect');
          await fromAdmin.call('CLIENT', 'UNPAUSE').catch(() => {});
          step('unpause');
          unpausedAt = this.clock.now();
          redirected = true;
        }, switchStep);
        ctx.state.switchStepsMs = switchSteps.join(', ');
      }
    } else if (!(targetRepl.role === 'master' && sourceRepl.role === 'slave')) {
      throw new Error(`unexpected roles: source ${sourceRepl.role}, target ${targetRepl.role}`);
    }
    if (!redirected) {
      await this.redirector.pointTo(target);
    }
    // Clients still attached to the old primary reconnect through the stable address.
    await this.withSource(ctx, async admin => {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await admin.call('CLIENT', 'UNPAUSE');
    }).catch(() => {});
    if (paused && ctx.state.writePauseRecorded !== '1') {
      ctx.recordWritePause((unpausedAt ?? this.clock.now()) - started);
      ctx.state.writePauseRecorded = '1';
    }
    await this.countBytes(ctx);
  }

  async verify(ctx: MigrationStepContext): Promise<void> {
    const target = endpoint(ctx.state, 'target');
    const repl = await this.withTarget(ctx, a => a.replication());
    if (repl.role !== 'master') {
      throw new Error(`target ${target.name} is not the primary after the switch`);
    }
    const routed = await this.redirector.current();
    if (routed !== target.name) {
      await this.redirector.pointTo(target);
    }
    if (ctx.state.salvaged === '1') {
      return;
    }
    const source = endpoint(ctx.state, 'source');
    try {
      const sourceRepl = await ValkeyAdmin.with(source, this.access, a => a.replication());
      if (sourceRepl.role === 'master') {
        throw new Error(`old primary ${source.name} still acts as a primary`);
      }
    } catch (error) {
      // The old node may be gone by now; that is what the notice said would happen.
      if (!(error instanceof MemberUnreachableError)) throw error;
    }
  }

  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    await this.runtime.stopMember(endpoint(ctx.state, 'source'));
  }

  async rollBack(ctx: MigrationStepContext): Promise<void> {
    if (!ctx.state.sourceHost) {
      return; // Nothing was started.
    }
    const source = endpoint(ctx.state, 'source');
    const target = ctx.state.targetHost ? endpoint(ctx.state, 'target') : undefined;
    const sourceRepl = await ValkeyAdmin.with(source, this.access, a => a.replication()).catch(
      error => {
        if (error instanceof MemberUnreachableError) return undefined;
        throw error;
      },
    );
    const targetRepl = target
      ? await ValkeyAdmin.with(target, this.access, a => a.replication()).catch(() => undefined)
      : undefined;

    if (sourceRepl?.role === 'master') {
      // The source never stopped being the primary: undo the pause, drop the target.
      await ValkeyAdmin.with(source, this.access, a => a.call('CLIENT', 'UNPAUSE'));
      await this.redirector.pointTo(source);
      if (target) await this.runtime.stopMember(target);
      ctx.note(`rolled back; ${source.name} kept serving`);
      return;
    }
    if (sourceRepl && target && targetRepl?.role === 'master') {
      // The switch happened; hand back with the same no-loss switch.
      await this.handBack(target, source);
      await this.runtime.stopMember(target);
      ctx.note(`rolled back after the switch; ${source.name} serves again`);
      return;
    }
    if (sourceRepl && !targetRepl) {
      // The new primary died after the switch: the old one holds everything it replicated.
      await ValkeyAdmin.with(source, this.access, a => a.call('REPLICAOF', 'NO', 'ONE'));
      await this.redirector.pointTo(source);
      if (target) await this.runtime.fenceMember(target);
      ctx.note(`target lost after the switch; ${source.name} promoted back`);
      return;
    }
    if (!sourceRepl && targetRepl?.role === 'master') {
      await this.redirector.pointTo(target!);
      ctx.note(`source gone; ${target!.name} keeps serving`);
      return;
    }
    throw new Error('neither member can serve; a person must look at this workload');
  }

  async salvage(ctx: MigrationStepContext): Promise<void> {
    const source = endpoint(ctx.state, 'source');
    const candidates: ValkeyEndpoint[] = [];
    if (ctx.state.targetHost) candidates.push(endpoint(ctx.state, 'target'));
    candidates.push(...((await this.runtime.otherReplicas?.(ctx.migration.spec.pod)) ?? []));
    // Before promoting anything, make sure the old primary cannot come back and serve.
    await this.runtime.fenceMember(source);

    let best: { member: ValkeyEndpoint; repl: ReplicationInfo } | undefined;
    for (const member of candidates) {
      const repl = await ValkeyAdmin.with(member, this.access, a => a.replication()).catch(
        () => undefined,
      );
      const copiesSource =
        repl && (repl.replid === ctx.state.sourceReplid || repl.replid2 === ctx.state.sourceReplid);
      // A replica that never finished its first sync holds a partial dataset: never promote it.
      const completedSync = repl && !repl.syncInProgress && repl.offset > 0;
      if (repl && copiesSource && completedSync && (!best || repl.offset > best.repl.offset)) {
        best = { member, repl };
      }
    }
    if (!best) {
      throw new Error(`source ${source.name} lost and no replica holds a complete copy`);
    }
    if (best.repl.role !== 'master') {
      await ValkeyAdmin.with(best.member, this.access, a => a.call('REPLICAOF', 'NO', 'ONE'));
    }
    await this.redirector.pointTo(best.member);
    const seen = this.lastSeen.get(key(ctx)) ?? {
      offset: Number(ctx.state.lastSeenSourceOffset ?? best.repl.offset),
      at: Number(ctx.state.lastSeenSourceAt ?? this.clock.now()),
    };
    const promotedOffset =
      best.repl.role === 'master' && best.repl.secondOffset > 0
        ? best.repl.secondOffset - 1
        : best.repl.offset;
    ctx.recordAtRisk({
      lastSeenSourceOffset: seen.offset,
      promotedOffset,
      bytes: Math.max(0, seen.offset - promotedOffset),
      lastSeenAt: new Date(seen.at).toISOString(),
      promotedMember: best.member.name,
    });
    saveEndpoint(ctx.state, 'target', best.member);
    ctx.state.targetPod = best.member.name;
    ctx.state.salvaged = '1';
  }

  private async useFailover(source: ValkeyEndpoint): Promise<boolean> {
    if (this.mode === 'pause' || this.mode === 'auto') {
      const [major, minor] = await ValkeyAdmin.with(source, this.access, a => a.version());
      if (major < 6 || (major === 6 && minor < 2)) {
        throw new PermanentMigrationError(
          `${source.name} runs ${major}.${minor}; a live hand-off needs CLIENT PAUSE WRITE (6.2+)`,
        );
      }
      return false;
    }
    return true;
  }

  /** Hands the primary role from `from` back to `to` with the same no-loss switch, clients included. */
  private async handBack(from: ValkeyEndpoint, to: ValkeyEndpoint): Promise<void> {
    if (await this.useFailover(from)) {
      await this.failover(from, to);
      await this.redirector.pointTo(to);
      await ValkeyAdmin.with(from, this.access, a => a.call('CLIENT', 'KILL', 'TYPE', 'normal'));
      return;
    }
    await this.pauseAndPromote(from, to, async fromAdmin => {
      await this.redirector.pointTo(to);
      await fromAdmin.call('CLIENT', 'KILL', 'TYPE', 'normal');
      await fromAdmin.call('CLIENT', 'UNPAUSE');
    });
  }

  /** The server's own switch: it pauses writes, waits for the offsets, and swaps roles. */
  private async failover(from: ValkeyEndpoint, to: ValkeyEndpoint): Promise<void> {
    await ValkeyAdmin.with(from, this.access, async admin => {
      const before = await admin.replication();
      if (before.failoverState === 'no-failover') {
        await admin.call('FAILOVER', 'TO', to.host, to.port, 'TIMEOUT', WRITE_PAUSE_TIMEOUT_MS);
      }
      const until = this.clock.now() + FAILOVER_SETTLE_TIMEOUT_MS;
      for (;;) {
        const repl = await admin.replication();
        if (repl.failoverState === 'no-failover') {
          if (repl.role === 'slave') return;
          throw new Error(`FAILOVER to ${to.name} was aborted by the server; ${from.name} stays primary`);
        }
        if (this.clock.now() > until) {
          await admin.call('FAILOVER', 'ABORT').catch(() => {});
          throw new Error(`FAILOVER to ${to.name} did not settle`);
        }
        await sleep(REPLICATION_POLL_MS / 4);
      }
    });
  }

  /**
   * The switch by hand: pause, equal offsets, promote, demote; returns when the
   * pause began. `step` is told each part's end, for the record of where the
   * pause went.
   */
  private async pauseAndPromote(
    from: ValkeyEndpoint,
    to: ValkeyEndpoint,
    whilePaused?: (fromAdmin: ValkeyAdmin, step: (name: string) => void) => Promise<void>,
    step: (name: string) => void = () => {},
  ): Promise<number> {
    // Both connections open before the pause: a connection's handshake (and AUTH,
    // and TLS) inside it is pause.
    const fromAdmin = await ValkeyAdmin.connect(from, this.access);
    let toAdmin: ValkeyAdmin | undefined;
    try {
      toAdmin = await ValkeyAdmin.connect(to, this.access);
      const pausedAt = this.clock.now();
      step('start');
      await fromAdmin.call('CLIENT', 'PAUSE', WRITE_PAUSE_TIMEOUT_MS, 'WRITE');
      step('pause');
      const until = this.clock.now() + WRITE_PAUSE_TIMEOUT_MS / 2;
      // A paused primary's offset stands still (writes, expiry, eviction and its
      // pings to replicas are all paused), so only the replica is polled, without a
      // pause between polls: the drain is the replica applying the last bytes. The
      // source is read again before promoting, in case something did move it.
      let a = await fromAdmin.replication();
      for (;;) {
        const b = await toAdmin.replication();
        if (b.masterLinkUp && a.offset === b.offset) {
          const again = await fromAdmin.replication();
          if (again.offset === a.offset) break;
          a = again;
        }
        if (this.clock.now() > until) {
          throw new Error(`offsets did not meet (${a.offset} vs ${b.offset}); not promoting`);
        }
        await sleep(DRAIN_POLL_MS);
      }
      step('drain');
      await toAdmin.call('REPLICAOF', 'NO', 'ONE');
      step('promote');
      // Demote while still paused: the old primary takes no write the new one lacks.
      await fromAdmin.call('REPLICAOF', to.host, to.port);
      step('demote');
      await whilePaused?.(fromAdmin, step);
      return pausedAt;
    } catch (error) {
      await fromAdmin.call('CLIENT', 'UNPAUSE').catch(() => {});
      throw error;
    } finally {
      toAdmin?.close();
      fromAdmin.close();
    }
  }

  /**
   * Both members act as primary: an operator died between promoting the target
   * and demoting the source. If the source took no write since the target's
   * promotion, the target has everything and the source is demoted; otherwise
   * the target is stale and goes back to being a replica.
   */
  private async resolveTwoPrimaries(
    source: ValkeyEndpoint,
    target: ValkeyEndpoint,
    sourceRepl: ReplicationInfo,
    targetRepl: ReplicationInfo,
  ): Promise<void> {
    const sameHistory = targetRepl.replid2 === sourceRepl.replid;
    if (sameHistory && sourceRepl.offset < targetRepl.secondOffset) {
      await ValkeyAdmin.with(source, this.access, a => a.call('REPLICAOF', target.host, target.port));
      return;
    }
    await ValkeyAdmin.with(target, this.access, a => a.call('REPLICAOF', source.host, source.port));
    throw new Error(`the source took writes after ${target.name} was promoted; re-syncing before another switch`);
  }

  private async waitUntilAnswers(target: ValkeyEndpoint, ctx: MigrationStepContext): Promise<void> {
    const until = this.clock.now() + TARGET_READY_TIMEOUT_MS;
    for (;;) {
      try {
        await ValkeyAdmin.with(target, this.access, a => a.call('PING'));
        return;
      } catch (error) {
        if (this.clock.now() > until) throw new TargetLostError(`target ${target.name} never answered`);
        await sleep(REPLICATION_POLL_MS * 5, ctx.signal);
      }
    }
  }

  /** Waits, at most {@link RESUBSCRIBE_WAIT_MS}, until `member` has `count` subscribed clients. */
  private async waitForSubscribers(member: ValkeyEndpoint, count: number): Promise<void> {
    const until = this.clock.now() + RESUBSCRIBE_WAIT_MS;
    await ValkeyAdmin.with(member, this.access, async admin => {
      while ((await pubsubClients(admin)) < count && this.clock.now() < until) {
        await sleep(REPLICATION_POLL_MS / 10);
      }
    }).catch(() => {});
  }

  /** Whether `member` keeps failing to answer for {@link SOURCE_LOST_CONFIRM_MS}. */
  private async staysUnreachable(member: ValkeyEndpoint, signal: AbortSignal): Promise<boolean> {
    const until = this.clock.now() + SOURCE_LOST_CONFIRM_MS;
    while (this.clock.now() < until) {
      try {
        await ValkeyAdmin.with(member, this.access, a => a.call('PING'));
        return false;
      } catch (error) {
        if (!(error instanceof MemberUnreachableError)) return false;
        await sleep(REPLICATION_POLL_MS * 5, signal);
      }
    }
    return true;
  }

  private rememberSourceOffset(ctx: MigrationStepContext): void {
    const seen = this.lastSeen.get(key(ctx));
    if (seen) {
      ctx.state.lastSeenSourceOffset = String(seen.offset);
      ctx.state.lastSeenSourceAt = String(seen.at);
    }
  }

  /** Records the replication bytes the source has sent, for countBytes when the source is gone. */
  private async noteBytesSent(ctx: MigrationStepContext): Promise<void> {
    const stats = await this.withSource(ctx, a => a.info('stats')).catch(() => undefined);
    const total = Number(stats?.total_net_repl_output_bytes ?? NaN);
    if (Number.isFinite(total)) ctx.state.sourceReplBytesBeforeSwitch = String(total);
  }

  private async countBytes(ctx: MigrationStepContext): Promise<void> {
    if (ctx.state.bytesCounted === '1') return;
    const stats = await this.withSource(ctx, a => a.info('stats')).catch(() => undefined);
    // The few writes between that reading and the pause are missed when the source is gone.
    const total = Number(stats?.total_net_repl_output_bytes ?? ctx.state.sourceReplBytesBeforeSwitch ?? NaN);
    const start = Number(ctx.state.sourceReplBytesAtStart ?? 0);
    if (Number.isFinite(total) && total >= start) {
      ctx.addBytesMoved(total - start);
      ctx.state.bytesCounted = '1';
    }
  }

  private withSource<T>(ctx: MigrationStepContext, fn: (a: ValkeyAdmin) => Promise<T>): Promise<T> {
    return ValkeyAdmin.with(endpoint(ctx.state, 'source'), this.access, fn);
  }

  private async withTarget<T>(ctx: MigrationStepContext, fn: (a: ValkeyAdmin) => Promise<T>): Promise<T> {
    try {
      return await ValkeyAdmin.with(endpoint(ctx.state, 'target'), this.access, fn);
    } catch (error) {
      if (error instanceof MemberUnreachableError) {
        throw new TargetLostError(error.message, { cause: error });
      }
      throw error;
    }
  }
}

/** How many clients of `admin`'s member are subscribed to channels or patterns. */
async function pubsubClients(admin: ValkeyAdmin): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
  return list.split('\n').filter(line => line.trim()).length;
}

/** Whether `repl` describes a replica of `source` that finished its sync and is attached. */
function isSyncedReplica(repl: ReplicationInfo, source: ValkeyEndpoint): boolean {
  return (
    repl.role === 'slave' &&
    repl.masterHost === source.host &&
    repl.masterPort === source.port &&
    repl.masterLinkUp &&
    !repl.syncInProgress
  );
}

function saveEndpoint(state: Record<string, string>, role: 'source' | 'target', e: ValkeyEndpoint): void {
  state[`${role}Name`] = e.name;
  state[`${role}Node`] = e.node;
  state[`${role}Host`] = e.host;
  state[`${role}Port`] = String(e.port);
}

function endpoint(state: Record<string, string>, role: 'source' | 'target'): ValkeyEndpoint {
  const host = state[`${role}Host`];
  if (!host) {
    throw new Error(`no ${role} member recorded`);
  }
  return {
    name: state[`${role}Name`],
    node: state[`${role}Node`],
    host,
    port: Number(state[`${role}Port`]),
  };
}

function key(ctx: MigrationStepContext): string {
  return `${ctx.migration.metadata.namespace}/${ctx.migration.metadata.name}`;
}

function shortId(ctx: MigrationStepContext): string {
  const uid = ctx.migration.metadata.uid ?? ctx.migration.metadata.name;
  let hash = 0;
  for (const c of uid) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return hash.toString(36).slice(0, 5);
}
