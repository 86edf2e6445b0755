/**
 * The checkpoint method on a cluster: a member's container moves with its
 * memory. The source node's agent pauses the container and checkpoints it with
 * `runc checkpoint` (its pages streamed to the target's agent while it dumps);
 * the replacement pod is created the way the valkey hand-offs create theirs (a
 * bare pod the ReplicaSet adopts, or the StatefulSet's recreation pinned to
 * the target by the placement webhook), with `runtimeClassName: ferry` and the
 * annotation RESTORE_FROM_ANNOTATION, so Ferry's runtime wrapper on the target
 * restores its container from the images instead of starting it.
 *
 * The source stays paused, with all its memory, until the replacement serves:
 * a move that fails before the switch is rolled back by letting it run on,
 * where nothing was lost. Once clients are sent to the replacement, the source
 * is killed without running again (`retire`). The pod's address changes:
 * connections are restored closed and clients reconnect through the Service.
 *
 * A StatefulSet's member cannot keep its source: the old incarnation must be
 * gone before the StatefulSet recreates it. Its pages are dumped on the source,
 * which keeps the images until the restore is confirmed; should the target die
 * mid-restore, the rollback recreates the member on the source (the webhook
 * pins it there by `restoreNode`) restored from those images.
 */
import type { KubeConfig, V1Container, V1Pod } from '@kubernetes/client-node';
import type { Clock } from '../../../core/clock';
import {
  AgentUnreachableError,
  NodeAgentClient,
} from '../../../agent/NodeAgentClient';
import type { HibernationStatus } from '../../../agent/ContainerHibernation';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  SourceLostError,
  TargetLostError,
  sleep,
} from '../../../migration/MigrationDriver';
import { apiRequest, isNotFound } from '../../client/apiRequest';
import { FERRY_RUNTIME_CLASS } from '../../admission/PodPlacer';
import { isReady } from '../../state/workloadViews';
import {
  MEMBER_POD_POLL_MS,
  NamespacePods,
  ReplicaSetHandoff,
  handoffPod,
} from '../valkey/KubeValkeyMembers';
import {
  HIBERNATE_AFTER_ANNOTATION,
  HIBERNATION_LABEL,
  HIBERNATION_SUSPENDED_ANNOTATION,
  RESTORE_FROM_ANNOTATION,
} from '../../client/ferryKeys';
import { hibernationId } from '../../hibernation/hibernationPolicy';

/** Longest wait for the replacement to serve once the images are there (restore, probes). */
export const RESTORED_POD_READY_TIMEOUT_MS = 60_000;
/** Longest wait for the ReplicaSet to delete the old member after the hand-off. */
const OLD_MEMBER_DELETION_TIMEOUT_MS = 30_000;
/**
 * How long a rollback waits for the source node's agent to answer again (a
 * restarting agent), and how often it asks meanwhile.
 */
const SOURCE_AGENT_RETURN_TIMEOUT_MS = 120_000;
const SOURCE_AGENT_RETURN_POLL_MS = 1_000;
/**
 * How long the switch waits for the target node's agent when it stops
 * answering during the restore: long enough for its DaemonSet to restart it,
 * short against a notice, as a node that is gone keeps the source frozen meanwhile.
 */
const TARGET_AGENT_RETURN_TIMEOUT_MS = 15_000;
/** How often the operator looks whether the RuntimeClass `ferry` exists. */
export const RUNTIME_CLASS_REFRESH_MS = 30_000;
/**
 * The lazy route needs the source alive until every page has reached the
 * target: it is taken only with at least this long left before the deadline
 * (the time a 1 GiB copy takes on a loaded link, with room to spare), else the
 * move is stop-and-copy, whose source may die as soon as the images are across.
 */
export const LAZY_COPY_MIN_LEAD_MS = 30_000;
/** How long a lazy copy may take when the move has no deadline (a drain). */
const LAZY_COPY_TIMEOUT_MS = 5 * 60_000;
/** How often the operator asks whether the lazy copy has ended. */
const LAZY_COPY_POLL_MS = 200;
/** The CRIU release the agents need: 3.x fails on current kernels' vDSO. */
const MIN_CRIU_MAJOR = 4;

/** Finds the node agent of a node. */
export interface NodeAgentFinder {
  /** The agent's client; throws when the node has none. */
  agentFor(node: string): Promise<NodeAgentClient>;
}

/** What the checkpoint driver on a cluster needs. */
export interface KubeCheckpointDriverOptions {
  kubeConfig: KubeConfig;
  agents: NodeAgentFinder;
  clock: Clock;
  /**
   * Memory pages go to a CRIU page server on the target while the dump runs
   * (default). The source keeps its memory either way (it stays paused), so a
   * failed move still rolls back without loss.
   */
  streamWhileDumping?: boolean;
  /**
   * How the memory moves against the freeze (default `stop-and-copy`). `lazy`
   * (post-copy): the target restores from the images without the memory pages
   * and serves at once, fetching each page from the paused source when touched
   * and the rest in the background; the source is retired once all arrived.
   * Taken for Deployments' members with LAZY_COPY_MIN_LEAD_MS before the deadline.
   */
  route?: CheckpointRoute;
}

/** How a checkpoint's memory moves against the freeze. */
export type CheckpointRoute = 'stop-and-copy' | 'lazy';
/** Every route, the default first. */
export const CHECKPOINT_ROUTES: readonly CheckpointRoute[] = [
  'stop-and-copy',
  'lazy',
];

/** The container a checkpoint moves: Valkey's or Redis's, else the pod's only one. */
export function checkpointedContainer(pod: V1Pod): V1Container | undefined {
  const containers = pod.spec?.containers ?? [];
  return (
    containers.find(c => /^(valkey|redis)$/.test(c.name)) ??
    containers.find(c => /valkey|redis/.test(c.image ?? '')) ??
    (containers.length === 1 ? containers[0] : undefined)
  );
}

/**
 * Why a pod cannot be moved by checkpoint, as far as its spec says; undefined
 * when it can. The agent looks at the processes themselves (io_uring, devices).
 */
export function checkpointRefusal(pod: V1Pod): string | undefined {
  const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const runtimeClass = pod.spec?.runtimeClassName;
  if (runtimeClass && runtimeClass !== FERRY_RUNTIME_CLASS) {
    return `pod ${name} runs with its own runtime class '${runtimeClass}', which Ferry keeps; the checkpoint method restores only through the runtime class '${FERRY_RUNTIME_CLASS}'. Set the SpotPolicy's migration to valkey or reschedule, or drop the pod's runtimeClassName`;
  }
  const container = checkpointedContainer(pod);
  if (!container) {
    const names = (pod.spec?.containers ?? []).map(c => c.name).join(', ');
    return `pod ${name} has several containers (${names}) and none is named valkey or redis; the checkpoint method moves one container`;
  }
  for (const c of [
    ...(pod.spec?.containers ?? []),
    ...(pod.spec?.initContainers ?? []),
  ]) {
    const devices = Object.keys({
      ...c.resources?.limits,
      ...c.resources?.requests,
    }).filter(r => r.includes('/') && !r.startsWith('hugepages-'));
    if (devices.length) {
      return `container ${c.name} of pod ${name} uses devices (${devices.join(
        ', ',
      )}); a device's state cannot be checkpointed`;
    }
  }
  if (pod.spec?.shareProcessNamespace) {
    return `pod ${name} shares one PID namespace between its containers; a checkpoint needs the container's own`;
  }
  return undefined;
}

/**
 * The route a checkpoint move takes, and why, when it is not the one asked for:
 * lazy only for a Deployment's member (a StatefulSet's is recreated under its
 * name once the old one is gone, and the lazy copy needs the old one) and with
 * LAZY_COPY_MIN_LEAD_MS or more before the deadline, as its copy needs the source alive.
 */
export function checkpointRoute(
  asked: CheckpointRoute,
  ownerKind: string | undefined,
  msLeft: number,
): { route: CheckpointRoute; why?: string } {
  if (asked !== 'lazy') return { route: asked };
  if (ownerKind !== 'ReplicaSet') {
    return {
      route: 'stop-and-copy',
      why: 'stop-and-copy, not lazy: a StatefulSet member is recreated under its name only after the old one is gone, and the lazy route needs the source until its pages are across',
    };
  }
  if (msLeft < LAZY_COPY_MIN_LEAD_MS) {
    return {
      route: 'stop-and-copy',
      why: `stop-and-copy, not lazy: ${Math.round(
        msLeft / 1000,
      )} s left before the deadline, and the lazy route needs the source alive for its copy (at least ${
        LAZY_COPY_MIN_LEAD_MS / 1000
      } s)`,
    };
  }
  return { route: 'lazy' };
}

/**
 * The checkpoint driver for Migrations on a cluster. Its memory is the
 * Migration's driver state: `containerId`, `container`, `imageId`,
 * `sourceUid`, `targetPod`, `kind`, `freezeStartedAt`, and on the way back
 * `restoreNode` (where a StatefulSet's member is restored instead) and
 * `lazyCopyLost` (why a lazy copy's replacement was deleted).
 */
export class KubeCheckpointDriver implements MigrationDriver {
  readonly method = 'checkpoint' as const;

  constructor(private readonly options: KubeCheckpointDriverOptions) {}

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    const { spec, metadata } = ctx.migration;
    if (!spec.targetNode) {
      throw new PermanentMigrationError(
        'a checkpoint move needs spec.targetNode',
      );
    }
    const pods = this.pods(ctx);
    if (!ctx.state.containerId) {
      // Everything that could stop the move is checked before anything is touched.
      const pod = await pods.get(spec.pod);
      if (!pod || pod.metadata?.deletionTimestamp) {
        throw new PermanentMigrationError(
          `member pod ${metadata.namespace}/${spec.pod} is gone; there is nothing to move`,
        );
      }
      const refusal = checkpointRefusal(pod);
      if (refusal) throw new PermanentMigrationError(refusal);
      const owner = pod.metadata?.ownerReferences?.find(ref => ref.controller);
      if (owner?.kind !== 'ReplicaSet' && owner?.kind !== 'StatefulSet') {
        throw new PermanentMigrationError(
          `${metadata.namespace}/${spec.pod} is ${
            owner ? `a member of ${owner.kind} ${owner.name}` : 'a bare pod'
          }: the checkpoint method moves members of Deployments and StatefulSets`,
        );
      }
      await this.requireRuntimeClass();
      const [source, target] = await Promise.all([
        this.agent(spec.sourceNode, 'source'),
        this.agent(spec.targetNode, 'target'),
      ]);
      const [, targetHealth] = await Promise.all([
        requireCriu(source, spec.sourceNode),
        requireCriu(target, spec.targetNode),
      ]);
      const container = checkpointedContainer(pod)!;
      const awake = await this.keepAwake(ctx, pod, container.name, source);
      const status = awake.status?.containerStatuses?.find(
        s => s.name === container.name,
      );
      const containerId = status?.containerID?.replace(/^[a-z0-9.-]+:\/\//, '');
      if (!status?.state?.running || !containerId) {
        throw new Error(
          `container ${container.name} of ${metadata.namespace}/${spec.pod} is not running yet; trying again`,
        );
      }
      const imageId = imageIdOf(ctx);
      const inspection = await source.inspectContainer(imageId, containerId);
      if (inspection.refusals.length) {
        throw new PermanentMigrationError(
          `container ${container.name} of ${metadata.namespace}/${
            spec.pod
          } cannot be checkpointed: ${inspection.refusals.join('; ')}`,
        );
      }
      // The images hold about the container's resident memory, and they land
      // in the target's image directory (a tmpfs): a dump that fills it fails
      // half way, with the source paused the while. Refused before the pause.
      const free = targetHealth.imagesFreeBytes;
      if (free !== undefined && free < inspection.memoryBytes) {
        throw new PermanentMigrationError(
          `the checkpoint image directory of the target node ${
            spec.targetNode
          } has ${mib(free)} MiB free, and container ${container.name} of ${
            metadata.namespace
          }/${spec.pod} holds ${mib(
            inspection.memoryBytes,
          )} MiB in memory, which its images need there: give the node agent's image directory (its tmpfs) more room, or move the member to another node`,
        );
      }
      ctx.state.kind = owner.kind;
      ctx.state.sourceUid = pod.metadata!.uid!;
      ctx.state.container = container.name;
      ctx.state.imageId = imageId;
      ctx.state.containerId = containerId;
    }
    if (ctx.state.kind === 'ReplicaSet') {
      // Created now, so its sandbox is up while the source dumps: the runtime
      // wrapper waits in the container's create until the images are there.
      ctx.state.targetPod ??= `${spec.pod}-ferry-${ctx.migration.metadata.name}`
        .slice(0, 63)
        .replace(/-+$/, '');
      if (!(await pods.get(ctx.state.targetPod))) {
        const pod = await handoffPod(
          {
            kubeConfig: this.options.kubeConfig,
            namespace: metadata.namespace,
            sourcePod: spec.pod,
          },
          ctx.state.targetPod,
          spec.targetNode,
          'checkpoint',
        );
        await pods.create(
          restoredFrom(pod, ctx.state.container, ctx.state.imageId),
        );
      }
    } else {
      // The StatefulSet recreates the member under its name once the old one is gone.
      ctx.state.targetPod = spec.pod;
    }
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    const id = ctx.state.imageId;
    const source = await this.agent(spec.sourceNode, 'source');
    const target = await this.agent(spec.targetNode!, 'target');
    if (ctx.state.sourceUid && !ctx.state.freezeStartedAt) {
      // A watch the hibernation controller started before it saw the pod
      // marked would checkpoint the container under the dump.
      await stopHibernationWatch(source, ctx.state.sourceUid);
    }
    let report;
    try {
      let pageServerPort: number | undefined;
      const image = await source.image(id);
      const lazy = (ctx.state.route ??= this.routeFor(ctx)) === 'lazy';
      // A dump still under way (asked for by an operator that died since) has
      // its page server: the call below joins that dump, and a new page server
      // would start by wiping the pages it is receiving. A StatefulSet's member
      // is dumped on its own node, pages and all: its old incarnation dies
      // before the recreation restores, and if the target dies mid-restore the
      // member is restored on the source from these images (see rollBack).
      if (
        this.options.streamWhileDumping !== false &&
        ctx.state.kind !== 'StatefulSet' &&
        !lazy &&
        !image.dumped &&
        !image.dumping
      ) {
        pageServerPort = (await target.startPageServer(id)).port;
      }
      // The freeze starts with the pause before the dump: the agent's, when an
      // operator that died since had asked for it.
      ctx.state.freezeStartedAt ??= String(
        image.pausedAt ?? this.options.clock.now(),
      );
      report = await source.checkpointContainer(
        id,
        ctx.state.containerId,
        target.url,
        ctx.state.route === 'lazy' ? undefined : pageServerPort,
        ctx.state.route === 'lazy',
      );
    } catch (error) {
      if (error instanceof AgentUnreachableError) {
        // A source agent that stops answering mid-dump may only be restarting
        // (its DaemonSet brings it back): the step is tried again, and a dump that
        // never finished is done again on the container, still paused.
        if (error.url === source.url) throw error;
        throw new TargetLostError(
          `the target node ${spec.targetNode} was lost during the transfer: ${error.message}`,
          { cause: error },
        );
      }
      if (
        /target agent|ECONNREFUSED|EHOSTUNREACH|socket hang up/.test(
          String(error),
        )
      ) {
        throw new TargetLostError(
          `the target node ${spec.targetNode} was lost during the transfer: ${error}`,
          { cause: error },
        );
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
    const pods = this.pods(ctx);
    if (ctx.state.kind === 'StatefulSet') {
      // The old incarnation goes first (its name is the member's identity); it
      // is paused, so it is killed without running again.
      await pods.delete(spec.pod, 0, ctx.state.sourceUid);
      await this.retireSource(ctx);
    }
    const pod = await this.waitForRestored(ctx, spec.targetNode!).catch(
      error => {
        if (ctx.state.kind === 'StatefulSet') {
          // Should the recreation never serve on the target, the rollback
          // recreates the member on the source, from the images kept there:
          // recorded with the failure, so the placement webhook pins it there.
          ctx.state.restoreNode = spec.sourceNode;
        }
        throw error;
      },
    );
    if (ctx.state.kind === 'ReplicaSet') {
      const handoff = new ReplicaSetHandoff({
        kubeConfig: this.options.kubeConfig,
        namespace: ctx.migration.metadata.namespace,
        sourcePod: spec.pod,
      });
      const member = {
        name: pod.metadata!.name!,
        node: spec.targetNode!,
        host: pod.status?.podIP ?? '',
        port: 0,
      };
      await handoff.prepare(member);
      await handoff.pointTo(member);
      if (ctx.state.route === 'lazy') {
        // Clients are served from here on; the pages still on the source follow.
        this.recordFreeze(ctx);
        await this.waitForLazyCopy(ctx, pod);
      }
      // The ReplicaSet deletes the old member; only then may its container
      // die, or the kubelet would restart it, empty, behind the Service.
      await this.waitForDeletion(
        pods,
        spec.pod,
        ctx.state.sourceUid,
        ctx.signal,
      );
      await this.retireSource(ctx);
    }
    this.recordFreeze(ctx);
  }

  private recordFreeze(ctx: MigrationStepContext): void {
    if (ctx.state.freezeRecorded === '1') return;
    ctx.recordWritePause(
      this.options.clock.now() - Number(ctx.state.freezeStartedAt),
    );
    ctx.state.freezeRecorded = '1';
  }

  /** The route this move takes, and why not the one asked for. */
  private routeFor(ctx: MigrationStepContext): CheckpointRoute {
    const { deadline } = ctx.migration.spec;
    const { route, why } = checkpointRoute(
      this.options.route ?? 'stop-and-copy',
      ctx.state.kind,
      deadline ? Date.parse(deadline) - this.options.clock.now() : Infinity,
    );
    if (why) ctx.note(why);
    return route;
  }

  /**
   * Waits until every page of a lazy move has left the source, up to the
   * deadline, when the source node goes (LAZY_COPY_TIMEOUT_MS without one). A copy that does not end leaves the
   * restored member with memory it never fetched (userfaultfd then reads those
   * pages as zeros), so the replacement is deleted and the Migration says what
   * was lost.
   */
  private async waitForLazyCopy(
    ctx: MigrationStepContext,
    replacement: V1Pod,
  ): Promise<void> {
    const { spec } = ctx.migration;
    const started = this.options.clock.now();
    const deadline = spec.deadline
      ? Date.parse(spec.deadline)
      : started + LAZY_COPY_TIMEOUT_MS;
    let outcome: string;
    for (;;) {
      const source = await this.options.agents
        .agentFor(spec.sourceNode)
        .catch(() => undefined);
      const image = await source
        ?.image(ctx.state.imageId)
        .catch((error: unknown) =>
          error instanceof AgentUnreachableError
            ? undefined
            : Promise.reject(error),
        );
      // An agent that does not answer may be restarting: asked again until the deadline.
      outcome = image
        ? image.lazyCopy ?? 'no lazy copy on the source'
        : 'running';
      if (outcome !== 'running') break;
      if (this.options.clock.now() > deadline) {
        outcome = image
          ? 'the deadline passed'
          : `the agent of ${spec.sourceNode} stopped answering, and the deadline passed`;
        break;
      }
      await sleep(LAZY_COPY_POLL_MS, ctx.signal);
    }
    ctx.state.lazyCopyMs = String(this.options.clock.now() - started);
    if (outcome === 'ok') return;
    await this.pods(ctx)
      .delete(replacement.metadata!.name!, 0, replacement.metadata?.uid)
      .catch(() => {});
    // Kept for the rollback, which can only resume the paused source, if it is there.
    ctx.state.lazyCopyLost = `the lazy copy of ${spec.pod}'s memory from ${spec.sourceNode} did not end (${outcome}) after ${ctx.state.targetPod} on ${spec.targetNode} began serving: its memory lacks the pages it had not fetched, so it was deleted, and with it every write it acknowledged`;
    throw new PermanentMigrationError(
      `${ctx.state.lazyCopyLost}; the member's data now lives only in the paused source on ${spec.sourceNode}, if that node is still up`,
    );
  }

  async verify(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    const target = await this.agent(spec.targetNode!, 'target');
    const image = await target.image(ctx.state.imageId);
    // runc's restore alone, as the runtime wrapper timed it: the freeze's floor beside the dump.
    if (image.restoreMs !== undefined)
      ctx.state.restoreMs = String(image.restoreMs);
    const pod = await this.pods(ctx).get(ctx.state.targetPod);
    const running = runningContainerId(pod, ctx.state.container);
    if (!image.restoredContainer || running !== image.restoredContainer) {
      throw new Error(
        `${
          ctx.state.targetPod
        } does not run the restored container (restored: ${
          image.restoredContainer ?? 'none'
        }, running: ${running ?? 'none'})`,
      );
    }
  }

  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    const { spec } = ctx.migration;
    const pods = this.pods(ctx);
    // A later restart of the container starts fresh anyway (the wrapper restores
    // an image once); without the annotation a new sandbox does not even look.
    await pods
      .patchMetadata(ctx.state.targetPod, {
        annotations: { [RESTORE_FROM_ANNOTATION]: null },
      })
      .catch(error => {
        if (!isNotFound(error)) throw error;
      });
    // Images hold the process's memory, secrets included: none may outlive the move.
    const target = await this.agent(spec.targetNode!, 'target');
    await target.deleteImages(ctx.state.imageId);
    const source = await this.options.agents
      .agentFor(spec.sourceNode)
      .catch(() => undefined);
    await source?.deleteImages(ctx.state.imageId).catch(error => {
      // The source node may be gone already, and its tmpfs with it.
      if (!(error instanceof AgentUnreachableError)) throw error;
    });
  }

  async rollBack(ctx: MigrationStepContext): Promise<void> {
    const { spec, metadata } = ctx.migration;
    const pods = this.pods(ctx);
    // The source stays: it may hibernate again (the controller puts its
    // requests back first, as for any wake).
    const held = await pods.get(spec.pod);
    if (held?.metadata?.annotations?.[HIBERNATION_SUSPENDED_ANNOTATION]) {
      await pods
        .patchMetadata(spec.pod, {
          annotations: { [HIBERNATION_SUSPENDED_ANNOTATION]: null },
        })
        .catch(error => {
          if (!isNotFound(error)) throw error;
        });
    }
    const id = ctx.state.imageId;
    if (!id) return; // Refused before anything was touched.
    const target = await this.options.agents
      .agentFor(spec.targetNode!)
      .catch(() => undefined);
    if (ctx.state.kind === 'ReplicaSet') {
      const replacement = await pods.get(ctx.state.targetPod);
      const adopted =
        !replacement?.metadata?.deletionTimestamp &&
        replacement?.metadata?.ownerReferences?.some(ref => ref.controller);
      if (adopted) {
        ctx.note(
          `${ctx.state.targetPod} was adopted by the ReplicaSet and serves; keeping it`,
        );
        return;
      }
      await new ReplicaSetHandoff({
        kubeConfig: this.options.kubeConfig,
        namespace: metadata.namespace,
        sourcePod: spec.pod,
      })
        .pointTo({ name: spec.pod, node: spec.sourceNode, host: '', port: 0 })
        .catch(error =>
          ctx.note(
            `could not undo the hand-off's deletion cost: ${error.message}`,
          ),
        );
      await pods.delete(ctx.state.targetPod, 0);
    } else {
      const member = await pods.get(spec.pod);
      if (
        member &&
        ctx.state.restoreNode === spec.sourceNode &&
        member.spec?.nodeName === spec.sourceNode &&
        isReady(member)
      ) {
        ctx.note(`${spec.pod} was restored on ${spec.sourceNode}; keeping it`);
        return;
      }
      if (member && member.metadata?.uid !== ctx.state.sourceUid) {
        const image = await target?.image(id).catch(() => undefined);
        if (
          image?.restoredContainer &&
          member.spec?.nodeName === spec.targetNode
        ) {
          ctx.note(
            `the StatefulSet's recreation on ${spec.targetNode} was restored and serves; keeping it`,
          );
          return;
        }
        await this.restoreOnSource(ctx, member, image?.restoreError);
        return;
      }
      if (!member && ctx.state.restoreNode) {
        await this.restoreOnSource(ctx, undefined, undefined);
        return;
      }
    }
    if (ctx.state.lazyCopyLost) {
      // The replacement they were for is deleted.
      await target?.deleteImages(id).catch(() => {});
      // The copy ended because the source went quiet: asked once, as a node
      // that is gone would otherwise hold the Migration for the agent's wait.
      const source = await this.options.agents
        .agentFor(spec.sourceNode)
        .catch(() => undefined);
      const resumed = await source
        ?.resumeContainer(id, ctx.state.containerId)
        .then(
          () => true,
          () => false,
        );
      if (!resumed) {
        throw new PermanentMigrationError(
          `${ctx.state.lazyCopyLost}; the agent of ${spec.sourceNode} does not answer either, so the paused source, the only other copy, is lost with its node: the member's memory and every write it acknowledged are gone unless ${spec.sourceNode} comes back. Its ReplicaSet starts an empty member once the old pod ${spec.pod} is deleted (delete it if ${spec.sourceNode} is not coming back)`,
        );
      }
      await source!.deleteImages(id).catch(() => {});
      ctx.note(
        `the member runs on from the paused source on ${spec.sourceNode}, where it was paused; writes acknowledged by ${ctx.state.targetPod} meanwhile are lost`,
      );
      return;
    }
    const source = await this.resumeSource(ctx);
    await source.deleteImages(id).catch(() => {});
    await target?.deleteImages(id).catch(() => {});
    // The container was frozen from the pause before the dump until now: it
    // acknowledged nothing it does not still hold, whatever became of the target.
    ctx.note(
      `nothing was at risk: the source container on ${spec.sourceNode} was paused from the dump on, holds every write it acknowledged, and runs on from where it was paused`,
    );
  }

  /**
   * A StatefulSet's member whose old incarnation was retired while its
   * recreation on the target did not serve (the target died mid-restore, or
   * the restore failed): the recreation is deleted (forcibly, as its node may
   * be gone), and the StatefulSet's next one, pinned to the source by the
   * placement webhook (`restoreNode`), is restored from the images the source
   * kept. They were taken with the member paused, so they hold every write it
   * acknowledged.
   */
  private async restoreOnSource(
    ctx: MigrationStepContext,
    recreation: V1Pod | undefined,
    restoreError: string | undefined,
  ): Promise<void> {
    const { spec } = ctx.migration;
    const id = ctx.state.imageId;
    const source = await this.agent(spec.sourceNode, 'source');
    const kept = await source.image(id);
    if (!kept.pagesLocal) {
      throw new Error(
        `the old ${spec.pod} was retired and its recreation on ${
          spec.targetNode
        } was not restored (${restoreError ?? 'no outcome yet'}), and ${
          spec.sourceNode
        } kept no complete images: the member's state is only in the images on ${
          spec.targetNode
        }; bring that node back, or restore ${spec.pod} from them by hand`,
      );
    }
    if (ctx.state.restoreNode !== spec.sourceNode) {
      // Recorded first: the webhook must pin the next recreation to the source.
      ctx.state.restoreNode = spec.sourceNode;
      throw new Error(
        `restoring ${spec.pod} on ${spec.sourceNode} from the images kept there, once that is recorded`,
      );
    }
    // A recreation the target's kubelet had marked Ready may have acknowledged
    // writes before its node died; the images cannot hold those.
    const servedOnTarget =
      recreation?.spec?.nodeName === spec.targetNode &&
      recreation?.status?.conditions?.some(
        c => c.type === 'Ready' && c.status === 'True',
      );
    await this.recreateOn(ctx, spec.sourceNode, recreation);
    await this.waitForRestored(ctx, spec.sourceNode);
    await source.deleteImages(id);
    const target = await this.options.agents
      .agentFor(spec.targetNode!)
      .catch(() => undefined);
    await target?.deleteImages(id).catch(() => {});
    ctx.note(
      servedOnTarget
        ? `${spec.pod} was restored on ${spec.sourceNode} from the checkpoint kept there; its recreation on ${spec.targetNode} had served before that node was lost, and any write it acknowledged there is lost`
        : `nothing was at risk: ${spec.pod} was restored on ${spec.sourceNode} from the checkpoint kept there, taken with the member paused (it holds every write the member acknowledged); its recreation on ${spec.targetNode} never served`,
    );
  }

  /**
   * Deletes the StatefulSet's recreations of the member that are bound
   * elsewhere than `node` (forcibly: their node may be gone) until one is
   * bound to `node`; one created before the webhook saw `restoreNode` was
   * still pinned to the target.
   */
  private async recreateOn(
    ctx: MigrationStepContext,
    node: string,
    recreation: V1Pod | undefined,
  ): Promise<void> {
    const pods = this.pods(ctx);
    const until = Date.now() + RESTORED_POD_READY_TIMEOUT_MS;
    let pod = recreation;
    for (;;) {
      const bound = pod?.spec?.nodeName;
      if (bound === node) return;
      if (pod && bound && pod.metadata?.uid !== ctx.state.sourceUid) {
        await pods.delete(ctx.migration.spec.pod, 0, pod.metadata?.uid);
      }
      if (Date.now() > until) {
        throw new Error(
          `the StatefulSet did not recreate ${
            ctx.migration.spec.pod
          } on ${node} within ${RESTORED_POD_READY_TIMEOUT_MS} ms (${describePod(
            pod,
          )})`,
        );
      }
      await sleep(MEMBER_POD_POLL_MS, ctx.signal);
      pod = await pods.get(ctx.migration.spec.pod);
    }
  }

  async salvage(ctx: MigrationStepContext): Promise<void> {
    // The source node is gone, but it was paused from the dump on: every write
    // it acknowledged is in the images, if they all reached the target.
    const { spec } = ctx.migration;
    const target = await this.agent(spec.targetNode!, 'target');
    const image = ctx.state.imageId
      ? await target.image(ctx.state.imageId)
      : undefined;
    if (!image?.received) {
      throw new Error(
        `the source node ${spec.sourceNode} was lost before the checkpoint reached ${spec.targetNode}: the member's memory is lost`,
      );
    }
    await this.switchOver(ctx);
  }

  /**
   * Keeps a pod that may hibernate awake for its move, and wakes it if it
   * sleeps. Asleep, its container is a holder with no memory, and its memory
   * is in images on the source node that the move's dump would not take: they
   * would stay behind on the node being drained or reclaimed, and the
   * replacement would start empty. So the pod is marked first (the hibernation
   * controller leaves a marked pod alone), a sleeping one is restored in place
   * by the source agent (which deletes its images once restored), and the
   * agent's watch ends, or its idle timer would checkpoint the container under
   * the move. Resolves with the pod once it runs its real container.
   */
  private async keepAwake(
    ctx: MigrationStepContext,
    pod: V1Pod,
    container: string,
    source: NodeAgentClient,
  ): Promise<V1Pod> {
    const optedIn =
      pod.metadata?.annotations?.[HIBERNATE_AFTER_ANNOTATION] ||
      pod.metadata?.labels?.[HIBERNATION_LABEL];
    if (!optedIn) return pod;
    const { spec, metadata } = ctx.migration;
    const pods = this.pods(ctx);
    if (!pod.metadata?.annotations?.[HIBERNATION_SUSPENDED_ANNOTATION]) {
      await pods.patchMetadata(spec.pod, {
        annotations: {
          [HIBERNATION_SUSPENDED_ANNOTATION]: `Migration ${metadata.name} moves it to ${spec.targetNode}`,
        },
      });
    }
    const ended = await stopHibernationWatch(source, pod.metadata!.uid!);
    if (!ended) return pod;
    if (ended.woken) {
      ctx.note(
        `${spec.pod} was hibernated on ${spec.sourceNode}: woken there in ${ended.woken.wakeMs} ms to move with its memory`,
      );
    }
    // The container the watch last knew: after a wake, the restored one,
    // which the kubelet reports a moment after the agent.
    const until = Date.now() + RESTORED_POD_READY_TIMEOUT_MS;
    for (;;) {
      const current = await pods.get(spec.pod);
      if (!current || current.metadata?.uid !== pod.metadata?.uid) {
        throw new PermanentMigrationError(
          `member pod ${metadata.namespace}/${spec.pod} went while it was woken from hibernation`,
        );
      }
      if (runningContainerId(current, container) === ended.containerId) {
        return current;
      }
      if (Date.now() > until) {
        throw new Error(
          `${spec.pod} runs container ${ended.containerId} after its hibernation, which its pod did not report running within ${RESTORED_POD_READY_TIMEOUT_MS} ms; trying again`,
        );
      }
      await sleep(MEMBER_POD_POLL_MS, ctx.signal);
    }
  }

  /** Waits until the replacement pod serves from the restored container; fails on a failed restore. */
  private async waitForRestored(
    ctx: MigrationStepContext,
    node: string,
  ): Promise<V1Pod> {
    const pods = this.pods(ctx);
    const until = Date.now() + RESTORED_POD_READY_TIMEOUT_MS;
    let silentSince: number | undefined;
    for (;;) {
      // The restore is the runtime wrapper's, not the agent's, and runs on
      // while the agent restarts (its DaemonSet brings it back in seconds): an
      // agent that is gone or silent is waited for, as rolling back a move
      // that is about to serve would leave the source to its notice.
      let silence: Error | undefined;
      const target = await this.options.agents
        .agentFor(node)
        .catch((error: Error) => {
          silence = error;
          return undefined;
        });
      const image = await target?.image(ctx.state.imageId).catch(error => {
        if (!(error instanceof AgentUnreachableError)) throw error;
        silence = error;
        return undefined;
      });
      if (!image) {
        silentSince ??= Date.now();
        if (
          Date.now() - silentSince > TARGET_AGENT_RETURN_TIMEOUT_MS ||
          Date.now() > until
        ) {
          throw new TargetLostError(
            `the agent of ${node} stopped answering while ${
              ctx.state.targetPod
            } was being restored there, and was not back within ${
              Date.now() - silentSince
            } ms: ${silence?.message}`,
            { cause: silence },
          );
        }
        await sleep(MEMBER_POD_POLL_MS, ctx.signal);
        continue;
      }
      silentSince = undefined;
      if (image.restoreError) {
        throw new TargetLostError(
          `restoring ${ctx.state.targetPod} on ${node} failed: ${image.restoreError}`,
        );
      }
      const pod = await pods.get(ctx.state.targetPod);
      const fresh =
        pod &&
        pod.metadata?.uid !== ctx.state.sourceUid &&
        !pod.metadata?.deletionTimestamp;
      if (
        fresh &&
        image.restoredContainer &&
        runningContainerId(pod, ctx.state.container) === image.restoredContainer
      ) {
        if (pod.spec?.nodeName !== node) {
          throw new PermanentMigrationError(
            `${ctx.state.targetPod} was placed on ${pod.spec?.nodeName}, not on ${node}`,
          );
        }
        if (isReady(pod)) return pod;
      }
      if (Date.now() > until) {
        throw new TargetLostError(
          `${
            ctx.state.targetPod
          } did not serve from its restored container within ${RESTORED_POD_READY_TIMEOUT_MS} ms (${describePod(
            pod,
          )})`,
        );
      }
      await sleep(MEMBER_POD_POLL_MS, ctx.signal);
    }
  }

  private async waitForDeletion(
    pods: NamespacePods,
    name: string,
    uid: string,
    signal: AbortSignal,
  ): Promise<void> {
    const until = Date.now() + OLD_MEMBER_DELETION_TIMEOUT_MS;
    for (;;) {
      const pod = await pods.get(name);
      if (!pod || pod.metadata?.uid !== uid || pod.metadata?.deletionTimestamp)
        return;
      if (Date.now() > until) {
        // The ReplicaSet did not: Ferry does, by uid, now that the replacement serves.
        await pods.delete(name, 0, uid);
        return;
      }
      await sleep(MEMBER_POD_POLL_MS, signal);
    }
  }

  /**
   * Lets the paused source run on, waiting up to SOURCE_AGENT_RETURN_TIMEOUT_MS
   * for its node's agent when it does not answer: only that agent can resume
   * the container, and an agent that is restarting (its DaemonSet brings it
   * back in seconds) would otherwise turn a clean rollback into a Failed move
   * whose source stays frozen. Resolves with the agent that answered.
   */
  private async resumeSource(
    ctx: MigrationStepContext,
  ): Promise<NodeAgentClient> {
    const until = Date.now() + SOURCE_AGENT_RETURN_TIMEOUT_MS;
    for (;;) {
      try {
        const source = await this.agent(
          ctx.migration.spec.sourceNode,
          'source',
        );
        await source.resumeContainer(ctx.state.imageId, ctx.state.containerId);
        return source;
      } catch (error) {
        const away =
          error instanceof AgentUnreachableError ||
          error instanceof SourceLostError;
        if (!away || Date.now() > until) throw error;
        await sleep(SOURCE_AGENT_RETURN_POLL_MS, ctx.signal);
      }
    }
  }

  private async retireSource(ctx: MigrationStepContext): Promise<void> {
    const source = await this.options.agents
      .agentFor(ctx.migration.spec.sourceNode)
      .catch(() => undefined);
    await source
      ?.retireContainer(ctx.state.imageId, ctx.state.containerId)
      .catch(error => {
        // A source node that is gone took its container with it.
        if (!(error instanceof AgentUnreachableError)) throw error;
      });
  }

  private async requireRuntimeClass(): Promise<void> {
    await apiRequest(
      this.options.kubeConfig,
      'GET',
      `/apis/node.k8s.io/v1/runtimeclasses/${FERRY_RUNTIME_CLASS}`,
    ).catch(error => {
      if (!isNotFound(error)) throw error;
      throw new PermanentMigrationError(
        `the cluster has no RuntimeClass '${FERRY_RUNTIME_CLASS}': the checkpoint method restores through Ferry's runtime wrapper; install it with the chart (checkpoint.runtimeClass.enabled) and name the handler in every node's containerd or CRI-O configuration`,
      );
    });
  }

  private async agent(
    node: string,
    role: 'source' | 'target',
  ): Promise<NodeAgentClient> {
    try {
      return await this.options.agents.agentFor(node);
    } catch (error) {
      const message = `no Ferry node agent on ${role} node ${node}: ${
        (error as Error).message
      }`;
      throw role === 'source'
        ? new SourceLostError(message, { cause: error })
        : new TargetLostError(message, { cause: error });
    }
  }

  private pods(ctx: MigrationStepContext): NamespacePods {
    return new NamespacePods(
      this.options.kubeConfig,
      ctx.migration.metadata.namespace,
    );
  }
}

/** The replacement pod, restored from `imageId` by Ferry's runtime wrapper. */
function restoredFrom(pod: V1Pod, container: string, imageId: string): V1Pod {
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: {
        ...pod.metadata?.annotations,
        [RESTORE_FROM_ANNOTATION]: `${container}=${imageId}`,
      },
    },
    spec: { ...pod.spec!, runtimeClassName: FERRY_RUNTIME_CLASS },
  };
}

/**
 * Ends the source agent's hibernation watch of a pod, waking the container
 * first if it sleeps. Resolves with the container the watch last knew (after
 * a wake, the restored one) and the wake's status, or undefined when nothing
 * watched the pod. A watch caught checkpointing or waking is tried again by
 * the step's retry.
 */
async function stopHibernationWatch(
  agent: NodeAgentClient,
  podUid: string,
): Promise<{ containerId: string; woken?: HibernationStatus } | undefined> {
  const id = hibernationId(podUid);
  const watch = await agent.hibernation(id).catch(error => {
    if (/ 404 /.test(String(error?.message))) return undefined;
    throw error;
  });
  if (!watch) return undefined;
  if (watch.phase === 'HIBERNATING' || watch.phase === 'WAKING') {
    throw new Error(
      `the pod's hibernation is ${watch.phase} on its node; trying again once it settles`,
    );
  }
  const woken = watch.phase === 'HIBERNATED' ? await agent.wake(id) : undefined;
  // Refused unless it runs (a wake that found the watch busy did nothing): retried.
  await agent.stopWatching(id);
  return { containerId: (woken ?? watch).containerId, woken };
}

/** Checks the node's CRIU; resolves with what its agent said of itself. */
async function requireCriu(
  agent: NodeAgentClient,
  node: string,
): Promise<Awaited<ReturnType<NodeAgentClient['health']>>> {
  const health = await agent.health();
  const { criu } = health;
  const major = Number(/(\d+)\.\d+/.exec(criu)?.[1] ?? 0);
  if (major < MIN_CRIU_MAJOR) {
    throw new PermanentMigrationError(
      `node ${node} has no CRIU ${MIN_CRIU_MAJOR} or newer (its agent reports '${
        criu || 'none'
      }'); the checkpoint method needs it on both nodes`,
    );
  }
  return health;
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

function runningContainerId(
  pod: V1Pod | undefined,
  container: string,
): string | undefined {
  const status = pod?.status?.containerStatuses?.find(
    s => s.name === container,
  );
  return status?.state?.running
    ? status.containerID?.replace(/^[a-z0-9.-]+:\/\//, '')
    : undefined;
}

function describePod(pod: V1Pod | undefined): string {
  if (!pod) return 'not created yet';
  const waiting = (pod.status?.containerStatuses ?? [])
    .map(
      s =>
        s.state?.waiting &&
        `${s.state.waiting.reason}: ${s.state.waiting.message ?? ''}`,
    )
    .filter(Boolean);
  return `phase ${pod.status?.phase ?? 'unknown'}${
    waiting.length ? `, ${waiting.join(', ')}` : ''
  }`;
}

/** The image id of a Migration: a directory name on both nodes. */
function imageIdOf(ctx: MigrationStepContext): string {
  const m = ctx.migration.metadata;
  return `${m.namespace}.${m.name}`
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .slice(0, 120);
}

/**
 * Whether the cluster has the RuntimeClass `ferry`, for the placement webhook,
 * which must answer at once: looked up at start and every
 * RUNTIME_CLASS_REFRESH_MS.
 */
export class FerryRuntimeClassPresence {
  private present = false;
  private timer?: ReturnType<typeof setInterval>;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly onError: (error: Error) => void = () => {},
  ) {}

  /** Looks once, then keeps looking. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(
      () => void this.refresh(),
      RUNTIME_CLASS_REFRESH_MS,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** As last seen. */
  get installed(): boolean {
    return this.present;
  }

  private async refresh(): Promise<void> {
    try {
      await apiRequest(
        this.kubeConfig,
        'GET',
        `/apis/node.k8s.io/v1/runtimeclasses/${FERRY_RUNTIME_CLASS}`,
      );
      this.present = true;
    } catch (error) {
      if (isNotFound(error)) this.present = false;
      else this.onError(error as Error);
    }
  }
}
