/**
 * The valkey method for a StatefulSet member (README, "Hand-offs the workload's
 * controller agrees with"): `cache-1` cannot exist twice, so its state goes
 * first to a temporary member on the target node, which serves while the
 * StatefulSet recreates `cache-1` there (the placement webhook pins the
 * recreation of a migrating member to the migration's target); the recreated
 * `cache-1` replicates from the temporary member and takes its place back, and
 * the temporary member goes. Two switch-overs, each one write pause.
 *
 * Each hop is a `ValkeyDriver` hand-off with its own share of the step's
 * `state` (keys `first.*` and `second.*`), so each is idempotent and resumable
 * on its own; the steps between them (deleting the old incarnation, waiting for
 * the new one) look at the world first.
 *
 * The recreated `cache-1` starts as an empty, writable primary, so the
 * placement webhook gives it a readiness gate (`MEMBER_READY_GATE`): it stays
 * out of Ready, and so out of the Service, until `StatefulSetHandoff` sets the
 * gate's condition, once the member holds the temporary member's data and has
 * been promoted.
 */
import type {
  KubeConfig,
  V1StatefulSet,
  V1Node,
  V1NodeSelectorTerm,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
} from '@kubernetes/client-node';
import type { Clock } from '../../../core/clock';
import {
  MigrationDriver,
  MigrationStepContext,
  PermanentMigrationError,
  TargetLostError,
} from '../../../migration/MigrationDriver';
import {
  MemberUnreachableError,
  ValkeyAccess,
  ValkeyAdmin,
  ValkeyEndpoint,
} from '../../../migration/valkey/ValkeyAdmin';
import {
  ClientRedirector,
  SwitchoverMode,
  ValkeyDriver,
  ValkeyMemberRuntime,
} from '../../../migration/valkey/ValkeyDriver';
import { apiRequest, KubeApiError } from '../../client/apiRequest';
import { Reflector } from '../../informers/Reflector';
import { PODS } from '../../client/resources';
import { selectorMatches } from '../../state/workloadViews';
import {
  KubeValkeyMembers,
  MEMBER_POD_POLL_MS,
  MEMBER_POD_READY_TIMEOUT_MS,
  memberEndpoint,
  NamespacePods,
  splitLabel,
  waitForMemberPod,
} from './KubeValkeyMembers';
import {
  HANDOFF_OF_LABEL,
  HELD_BACK_LABEL_ANNOTATION,
  MEMBER_READY_GATE,
} from '../../client/ferryKeys';

/** The two hand-offs of a StatefulSet member, each with its share of the step's state. */
type Hop = 'first' | 'second';

/**
 * How often the recreated member's server is tried once its pod has an IP
 * (the process may not listen yet): it is an empty primary until it
 * replicates, so this bounds that time.
 */
const RECREATED_POLL_MS = 20;

/** The node label pod anti-affinity names to keep members on separate hosts. */
const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/**
 * Tries of the gate's status patch: each is conditional on the pod's uid and
 * conditions as read, and the kubelet (kwok in tests) may write the pod's
 * status in between.
 */
const GATE_PATCH_TRIES = 5;

/**
 * The pod as the hand-off waits for the recreated member: Ready once its
 * containers are and every readiness gate but Ferry's own is. Ferry's gate
 * opens only when the member holds the data, after the second switch, so a
 * wait for Ready before that switch would wait for itself.
 */
function readyButForTheGate(pod: V1Pod | undefined): V1Pod | undefined {
  const conditions = pod?.status?.conditions ?? [];
  const holds = (type: string) =>
    conditions.some(c => c.type === type && c.status === 'True');
  const gates = pod?.spec?.readinessGates ?? [];
  if (
    !pod ||
    !gates.some(g => g.conditionType === MEMBER_READY_GATE) ||
    holds('Ready') ||
    !holds('ContainersReady') ||
    !gates.every(
      g => g.conditionType === MEMBER_READY_GATE || holds(g.conditionType),
    )
  ) {
    return pod;
  }
  return {
    ...pod,
    status: {
      ...pod.status,
      conditions: [
        ...conditions.filter(c => c.type !== 'Ready'),
        { type: 'Ready', status: 'True' },
      ],
    },
  };
}

/** `waitForMemberPod`, with the recreated member's own readiness (`readyButForTheGate`). */
function waitForRecreatedMember(
  pods: NamespacePods,
  name: string,
  node: string,
  earlier?: string,
): Promise<ValkeyEndpoint> {
  // The same calls, but each pod read as `readyButForTheGate` sees it.
  const view: NamespacePods = Object.create(pods);
  view.get = async (pod: string) => readyButForTheGate(await pods.get(pod));
  return waitForMemberPod(view, name, node, earlier);
}

/** Whether a conditional patch failed because the object changed since it was read. */
function isChanged(error: unknown): boolean {
  return (
    error instanceof KubeApiError && (error.code === 422 || error.code === 409)
  );
}

/** Where each switch's write pause is kept, both shown in the Migration's driver state. */
const WRITE_PAUSE_KEYS: Record<Hop, string> = {
  first: 'writePauseToTemporaryMs',
  second: 'writePauseBackToMemberMs',
};

/**
 * Sends clients to the temporary member or back to the StatefulSet's member.
 * The temporary member starts without one selector label; `pointTo` it gives
 * it the label (it joins the Service), `pointTo` the member takes the label
 * away again (the member, recreated by the StatefulSet, carries every label)
 * and sets the recreated member's readiness gate condition, which lets it
 * into the Service.
 */
export class StatefulSetHandoff implements ClientRedirector {
  /** The held-back label of each temporary member, read before the pause so the pause only patches. */
  private readonly heldBack = new Map<string, [string, string]>();
  /** The old incarnation of the member, which has no gate to set. */
  sourceUid?: string;
  /**
   * The temporary member's replication id when the recreated member had
   * synced from it (the second hop's `sourceReplid`): a promoted member that
   * carries it as its previous history holds the data; one that does not is
   * still the empty primary the StatefulSet started.
   */
  lineage: () => string | undefined = () => undefined;
  /**
   * The gate's status patch `prepare` made for the switch to send; good for
   * the step that made it only (`forgetPrepared`).
   */
  private preparedGate?: object[];

  constructor(
    private readonly pods: NamespacePods,
    /** The StatefulSet's member, `cache-1`. */
    private readonly member: string,
    private readonly access: ValkeyAccess,
  ) {}

  async prepare(target: ValkeyEndpoint): Promise<void> {
    if (target.name !== this.member) {
      await this.heldBackLabel(target.name);
      return;
    }
    // Checked and written now, while writes flow, so that the pause only
    // sends it: the member is a synced replica, which the switch promotes.
    // Should that check fail, the switch checks the promoted member instead.
    this.preparedGate = await this.gatePatch('replica').catch(() => undefined);
  }

  async pointTo(target: ValkeyEndpoint): Promise<void> {
    if (target.name !== this.member) {
      const [key, value] = await this.heldBackLabel(target.name);
      await this.pods.patchMetadata(target.name, { labels: { [key]: value } });
      return;
    }
    // Into the Service first, then the temporary member out: never a moment
    // with neither (a client meanwhile finds no endpoint, not a wrong one).
    const prepared = this.preparedGate;
    this.preparedGate = undefined;
    const sent =
      prepared &&
      (await this.patchStatus(prepared).then(
        () => true,
        error => {
          if (isChanged(error)) return false;
          throw error;
        },
      ));
    if (!sent) await this.openGate();
    for (const pod of await this.temporaryMembers()) {
      const [key, value] = splitLabel(
        pod.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION],
      );
      if (key && pod.metadata?.labels?.[key] === value) {
        await this.pods.patchMetadata(pod.metadata!.name!, {
          labels: { [key]: null },
        });
      }
    }
  }

  async current(): Promise<string | undefined> {
    for (const pod of await this.temporaryMembers()) {
      const [key, value] = splitLabel(
        pod.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION],
      );
      if (
        key &&
        pod.metadata?.labels?.[key] === value &&
        !pod.metadata?.deletionTimestamp
      ) {
        return pod.metadata!.name;
      }
    }
    const member = await this.pods.get(this.member);
    return member && !member.metadata?.deletionTimestamp
      ? this.member
      : undefined;
  }

  private temporaryMembers() {
    return this.pods.list(`${HANDOFF_OF_LABEL}=${this.member}`);
  }

  /** Drops `prepare`'s gate patch: a later step checks the member again. */
  forgetPrepared(): void {
    this.preparedGate = undefined;
  }

  /**
   * Sets the recreated member's readiness gate condition True; idempotent.
   * Only on a promoted member that holds the temporary member's data (see
   * `lineage`): an empty one stays out of the Service, and the step fails
   * saying so. A member without the gate (the old incarnation, or one the
   * webhook did not see) has nothing to set.
   */
  async openGate(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const ops = await this.gatePatch('primary');
      if (!ops) return;
      try {
        await this.patchStatus(ops);
        return;
      } catch (error) {
        if (!isChanged(error) || attempt >= GATE_PATCH_TRIES) throw error;
      }
    }
  }

  /**
   * The status patch that sets the gate's condition on the member as it is
   * now, once it holds the data (`expected`: a synced replica of the
   * temporary member, or promoted from one); none when there is nothing to
   * set. Conditional on what was read: the incarnation checked, and the
   * condition's place in its status.
   */
  private async gatePatch(
    expected: 'replica' | 'primary',
  ): Promise<object[] | undefined> {
    const pod = await this.pods.get(this.member);
    if (
      !pod ||
      pod.metadata?.deletionTimestamp ||
      pod.metadata?.uid === this.sourceUid ||
      !pod.spec?.readinessGates?.some(
        g => g.conditionType === MEMBER_READY_GATE,
      )
    ) {
      return undefined;
    }
    const conditions = pod.status?.conditions ?? [];
    const index = conditions.findIndex(c => c.type === MEMBER_READY_GATE);
    if (index >= 0 && conditions[index].status === 'True') return undefined;
    await this.refuseEmpty(pod, expected);
    const condition = {
      type: MEMBER_READY_GATE,
      status: 'True',
      reason: 'HoldsData',
      message: `replicated from the temporary member and promoted; Ferry lets it serve`,
      lastTransitionTime: new Date().toISOString(),
    };
    const ops: object[] = [
      { op: 'test', path: '/metadata/uid', value: pod.metadata!.uid },
    ];
    if (index >= 0) {
      ops.push(
        {
          op: 'test',
          path: `/status/conditions/${index}/type`,
          value: MEMBER_READY_GATE,
        },
        {
          op: 'replace',
          path: `/status/conditions/${index}`,
          value: condition,
        },
      );
    } else if (pod.status?.conditions) {
      // Only Ferry writes this condition: appended once, after the uid test.
      ops.push({ op: 'add', path: '/status/conditions/-', value: condition });
    } else {
      ops.push({ op: 'add', path: '/status/conditions', value: [condition] });
    }
    return ops;
  }

  private async patchStatus(ops: object[]): Promise<void> {
    await apiRequest(
      this.pods.kubeConfig,
      'PATCH',
      `/api/v1/namespaces/${encodeURIComponent(
        this.pods.namespace,
      )}/pods/${encodeURIComponent(this.member)}/status`,
      { contentType: 'application/json-patch+json', body: ops },
    );
  }

  /** Fails unless `pod`'s server holds the temporary member's data, as `expected`. */
  private async refuseEmpty(
    pod: V1Pod,
    expected: 'replica' | 'primary',
  ): Promise<void> {
    const endpoint = memberEndpoint(pod, pod.spec?.nodeName ?? '');
    const repl = endpoint
      ? await ValkeyAdmin.with(endpoint, this.access, a =>
          a.replication(),
        ).catch(() => undefined)
      : undefined;
    const lineage = this.lineage();
    // A replica shares its primary's replication id; a promoted one keeps it
    // as its previous history (replid2). An empty primary has neither.
    const holds =
      expected === 'replica'
        ? repl?.role === 'slave' && repl.masterLinkUp && repl.replid === lineage
        : repl?.role === 'master' && repl.replid2 === lineage;
    if (holds) return;
    throw new PermanentMigrationError(
      `${this.pods.namespace}/${this.member} (uid ${pod.metadata?.uid}) is ${
        repl ? `a ${repl.role}` : 'not answering'
      } and not ${
        expected === 'replica' ? 'a synced replica' : 'a promoted copy'
      } of the temporary member's data${
        lineage ? '' : ' (it never finished syncing from it)'
      }; its readiness gate ${MEMBER_READY_GATE} stays unset so that the Service never sends clients to an empty member. Make it a replica of the member that holds the data, promote it, then set the pod's ${MEMBER_READY_GATE} condition True (kubectl patch pod --subresource=status)`,
    );
  }

  private async heldBackLabel(name: string): Promise<[string, string]> {
    const known = this.heldBack.get(name);
    if (known) return known;
    const pod = await this.pods.get(name);
    const label = splitLabel(
      pod?.metadata?.annotations?.[HELD_BACK_LABEL_ANNOTATION],
    );
    if (!label[0]) {
      throw new PermanentMigrationError(
        `pod ${name} is not a temporary member (no ${HELD_BACK_LABEL_ANNOTATION} annotation); clients are only sent to members Ferry started`,
      );
    }
    this.heldBack.set(name, label);
    return label;
  }
}

/**
 * The second hop's members: the source is the temporary member, the target the
 * StatefulSet's recreation of the member on the same node. "Starting" it means
 * removing the old incarnation (by uid, never the new one), waiting for the
 * StatefulSet's new one and making it a replica of the temporary member the
 * moment its server answers: it starts as an empty primary, and the sooner it
 * replicates, the shorter the time a client could find it empty (or write to
 * it) behind the Service. It is never deleted by this hop, since the
 * StatefulSet would only start it again, empty.
 */
class RecreatedMember implements ValkeyMemberRuntime {
  /** The uid of the incarnation the Migration moves away from. */
  sourceUid?: string;
  /** The temporary member, which the recreated member replicates from. */
  replicateFrom?: ValkeyEndpoint;

  constructor(
    private readonly pods: NamespacePods,
    private readonly member: string,
    private readonly temporary: KubeValkeyMembers,
    private readonly access: ValkeyAccess,
  ) {}

  resolveMember(pod: string, node: string): Promise<ValkeyEndpoint> {
    return this.temporary.resolveMember(pod, node);
  }

  async startMember(_name: string, node: string): Promise<ValkeyEndpoint> {
    await this.pods.delete(this.member, undefined, this.sourceUid);
    await this.replicateOnceItAnswers(node);
    const recreated = await waitForRecreatedMember(
      this.pods,
      this.member,
      node,
      this.sourceUid,
    );
    if (recreated.node !== node) {
      throw new PermanentMigrationError(
        `the StatefulSet recreated ${this.pods.namespace}/${this.member} on ${recreated.node}, not on the target ${node}: the placement webhook did not pin it (is the webhook enabled for this namespace?)`,
      );
    }
    return recreated;
  }

  /**
   * Before the pod is Ready (probes take their time, kwok none), as soon as
   * its server answers: REPLICAOF the temporary member. Gives up quietly at the
   * deadline; waiting for the pod then says why.
   */
  private async replicateOnceItAnswers(node: string): Promise<void> {
    const from = this.replicateFrom;
    if (!from) return;
    const until = Date.now() + MEMBER_POD_READY_TIMEOUT_MS;
    // A watch of this one pod: its IP is known the moment it is assigned,
    // without asking the API server in a tight loop.
    let changed = () => {};
    /** Waits `ms`, or less if the pod changes meanwhile. */
    const pause = (ms: number) =>
      new Promise<void>(resolve => {
        const timer = setTimeout(resolve, ms);
        changed = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const pods = new Reflector<V1Pod>({
      kubeConfig: this.pods.kubeConfig,
      type: PODS,
      namespace: this.pods.namespace,
      fieldSelector: `metadata.name=${this.member}`,
      onChange: () => changed(),
    });
    await pods.start();
    try {
      while (Date.now() < until) {
        const pod = pods
          .list()
          .find(
            p =>
              p.metadata?.uid !== this.sourceUid &&
              !p.metadata?.deletionTimestamp,
          );
        const endpoint = pod ? memberEndpoint(pod, node) : undefined;
        if (endpoint && (await this.replicate(endpoint, from))) return;
        await pause(endpoint ? RECREATED_POLL_MS : MEMBER_POD_POLL_MS);
      }
    } finally {
      pods.stop();
    }
  }

  /** REPLICAOF `from` on `member`, with the replication credentials; false while it does not answer. */
  private replicate(
    member: ValkeyEndpoint,
    from: ValkeyEndpoint,
  ): Promise<boolean> {
    const { replicationUser, replicationPassword } = this.access;
    return ValkeyAdmin.with(member, this.access, async admin => {
      const repl = await admin.replication();
      if (repl.masterHost === from.host && repl.masterPort === from.port) {
        return true;
      }
      if (replicationPassword) {
        if (replicationUser) {
          await admin.call('CONFIG', 'SET', 'masteruser', replicationUser);
        }
        await admin.call('CONFIG', 'SET', 'masterauth', replicationPassword);
      }
      await admin.call('REPLICAOF', from.host, from.port);
      return true;
    }).catch(() => false);
  }

  async stopMember(member: ValkeyEndpoint): Promise<void> {
    if (member.name === this.member) return;
    await this.pods.delete(member.name);
  }

  async fenceMember(member: ValkeyEndpoint): Promise<void> {
    await this.pods.delete(member.name, 0);
  }
}

/** Whether a node satisfies a node selector term (a volume's node affinity). */
export function nodeSelectorTermMatches(
  term: V1NodeSelectorTerm,
  node: V1Node,
): boolean {
  const labels = node.metadata?.labels ?? {};
  const fields: Record<string, string | undefined> = {
    'metadata.name': node.metadata?.name,
  };
  const satisfied = (
    value: string | undefined,
    operator: string,
    values: string[] = [],
  ): boolean => {
    switch (operator) {
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      case 'Gt':
        return value !== undefined && Number(value) > Number(values[0]);
      case 'Lt':
        return value !== undefined && Number(value) < Number(values[0]);
      default:
        return false;
    }
  };
  return (
    (term.matchExpressions ?? []).every(e =>
      satisfied(labels[e.key], e.operator, e.values),
    ) &&
    (term.matchFields ?? []).every(e =>
      satisfied(fields[e.key], e.operator, e.values),
    )
  );
}

/** What the StatefulSet hand-off needs. */
export interface StatefulSetValkeyDriverOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The member being moved, `cache-1`. */
  member: string;
  access: ValkeyAccess;
  clock: Clock;
  switchover?: SwitchoverMode;
}

/** The valkey method for one Migration of a StatefulSet member. */
export class StatefulSetValkeyDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  private readonly pods: NamespacePods;
  private readonly temporary: KubeValkeyMembers;
  private readonly recreated: RecreatedMember;
  private readonly redirector: StatefulSetHandoff;
  private readonly hops: Record<Hop, ValkeyDriver>;

  constructor(private readonly options: StatefulSetValkeyDriverOptions) {
    const { kubeConfig, namespace, member, access, clock, switchover } =
      options;
    this.pods = new NamespacePods(kubeConfig, namespace);
    this.temporary = new KubeValkeyMembers({
      kubeConfig,
      namespace,
      sourcePod: member,
    });
    this.recreated = new RecreatedMember(
      this.pods,
      member,
      this.temporary,
      access,
    );
    this.redirector = new StatefulSetHandoff(this.pods, member, access);
    const hop = (runtime: ValkeyMemberRuntime) =>
      new ValkeyDriver({
        runtime,
        redirector: this.redirector,
        access,
        clock,
        switchover,
      });
    this.hops = {
      first: hop(this.temporary),
      second: hop(this.recreated),
    };
  }

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    await this.refuseAntiAffinityToItself(ctx);
    await this.refuseClaimsTheTargetCannotMount(ctx);
    await this.hop(ctx, 'first', (d, sub) => d.prepareTarget(sub));
    ctx.state.targetPod = ctx.state['first.targetPod'];
  }

  async transfer(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    await this.hop(ctx, 'first', (d, sub) => d.transfer(sub));
  }

  /**
   * The first switch: the temporary member becomes the primary and joins the
   * Service; then the old incarnation of the member goes, and the StatefulSet
   * recreates it on the target node.
   */
  async switchOver(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    await this.hop(ctx, 'first', (d, sub) => d.switchOver(sub));
    await this.pods.delete(this.options.member, undefined, ctx.state.sourceUid);
  }

  /**
   * The second switch, back to the recreated member, and the check that it
   * serves. The old incarnation is gone by now: a failure here is retried
   * (the state machine's attempts), and a rollback after them leaves the
   * temporary member serving (see `rollBack`).
   */
  async verify(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    const targetNode = ctx.migration.spec.targetNode!;
    if (!(await this.handedBack(ctx))) {
      this.recreated.replicateFrom = this.endpointOf(ctx, 'first.target');
      await this.hop(ctx, 'second', async (d, sub) => {
        await d.prepareTarget(sub);
        await d.transfer(sub);
        await d.switchOver(sub);
      }).catch(error => {
        // The StatefulSet starts its member again if it is lost: worth another attempt.
        throw error instanceof TargetLostError
          ? new Error(error.message, { cause: error })
          : error;
      });
    }
    ctx.state.targetPod = this.options.member;
    const member = await waitForRecreatedMember(
      this.pods,
      this.options.member,
      targetNode,
      ctx.state.sourceUid,
    );
    const repl = await ValkeyAdmin.with(member, this.options.access, a =>
      a.replication(),
    );
    if (repl.role !== 'master') {
      throw new Error(
        `${this.options.member} is not the primary after the hand-back`,
      );
    }
    await this.redirector.pointTo(member);
  }

  /** The temporary member goes; the member serves on the target node. */
  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    const temporary = ctx.state['first.targetName'];
    if (temporary) await this.pods.delete(temporary);
  }

  /**
   * Before the first switch, back to the member where it was. After it the old
   * incarnation is gone: the temporary member keeps serving, and the recreated
   * member (if it answers) replicates from it so that the Service's two
   * members agree; its readiness gate stays unset, so it stays out of the
   * Service; a person finishes the hand-back (the note says how).
   */
  async rollBack(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    if (ctx.state['second.sourceHost']) {
      await this.hop(ctx, 'second', (d, sub) => d.rollBack(sub));
    } else if (ctx.state['first.sourceHost']) {
      await this.hop(ctx, 'first', (d, sub) => d.rollBack(sub));
    } else {
      return;
    }
    const temporary = await this.temporaryServing(ctx);
    if (!temporary) return;
    const recreated = await this.pods.get(this.options.member);
    const endpoint =
      recreated && recreated.metadata?.uid !== ctx.state.sourceUid
        ? memberEndpoint(recreated, ctx.migration.spec.targetNode!)
        : undefined;
    if (endpoint) {
      await ValkeyAdmin.with(endpoint, this.options.access, async a => {
        if ((await a.replication()).role === 'master') {
          await a.call('REPLICAOF', temporary.host, temporary.port);
        }
      }).catch(() => {});
    }
    const gateUnset =
      endpoint &&
      recreated?.spec?.readinessGates?.some(
        g => g.conditionType === MEMBER_READY_GATE,
      ) &&
      !recreated.status?.conditions?.some(
        c => c.type === MEMBER_READY_GATE && c.status === 'True',
      );
    ctx.note(
      `the temporary member ${temporary.name} on ${temporary.node} holds ${
        this.options.member
      }'s data and serves it through the Service${
        endpoint ? `; ${this.options.member} replicates from it` : ''
      }${
        gateUnset
          ? ` and stays out of the Service (not Ready) while its readiness gate ${MEMBER_READY_GATE} is unset`
          : ''
      }; hand it back by hand: once ${
        this.options.member
      } has synced, promote it${
        gateUnset
          ? `, set its pod's ${MEMBER_READY_GATE} condition True (kubectl patch pod --subresource=status)`
          : ''
      }, then delete ${temporary.name}`,
    );
  }

  async salvage(ctx: MigrationStepContext): Promise<void> {
    await this.recall(ctx);
    await this.hop(ctx, 'first', (d, sub) => d.salvage!(sub));
  }

  /** The member's old incarnation, recorded once; the runtimes act on it only. */
  private async recall(ctx: MigrationStepContext): Promise<void> {
    if (!ctx.state.sourceUid) {
      const pod = await this.pods.get(this.options.member);
      if (!pod || pod.metadata?.deletionTimestamp) {
        throw new PermanentMigrationError(
          `member pod ${this.options.namespace}/${this.options.member} is gone; there is nothing to move`,
        );
      }
      ctx.state.sourceUid = pod.metadata!.uid!;
    }
    this.temporary.sourceUid = ctx.state.sourceUid;
    this.recreated.sourceUid = ctx.state.sourceUid;
    this.redirector.sourceUid = ctx.state.sourceUid;
    this.redirector.lineage = () => ctx.state['second.sourceReplid'];
  }

  /**
   * Whether the second switch already happened (an operator that stopped after
   * it, before recording it): the temporary member replicates from the
   * recreated member.
   */
  private async handedBack(ctx: MigrationStepContext): Promise<boolean> {
    const temporary = this.endpointOf(ctx, 'first.target');
    const recreated = await this.pods.get(this.options.member);
    if (!temporary || !recreated?.status?.podIP) return false;
    if (recreated.metadata?.uid === ctx.state.sourceUid) return false;
    const repl = await ValkeyAdmin.with(temporary, this.options.access, a =>
      a.replication(),
    ).catch(error => {
      if (error instanceof MemberUnreachableError) return undefined;
      throw error;
    });
    return repl?.role === 'slave' && repl.masterHost === recreated.status.podIP;
  }

  /** The temporary member, if it is the primary now. */
  private async temporaryServing(
    ctx: MigrationStepContext,
  ): Promise<ValkeyEndpoint | undefined> {
    const temporary = this.endpointOf(ctx, 'first.target');
    if (!temporary) return undefined;
    const repl = await ValkeyAdmin.with(temporary, this.options.access, a =>
      a.replication(),
    ).catch(() => undefined);
    return repl?.role === 'master' ? temporary : undefined;
  }

  private endpointOf(
    ctx: MigrationStepContext,
    prefix: string,
  ): ValkeyEndpoint | undefined {
    const host = ctx.state[`${prefix}Host`];
    if (!host) return undefined;
    return {
      name: ctx.state[`${prefix}Name`],
      node: ctx.state[`${prefix}Node`],
      host,
      port: Number(ctx.state[`${prefix}Port`]),
    };
  }

  /**
   * A template that requires pod anti-affinity by host against its own labels
   * keeps the recreated member off the target node, where the temporary
   * member (with those labels, since the first switch) holds its data: the
   * move would end with the temporary member serving. Refuse before anything
   * starts.
   */
  private async refuseAntiAffinityToItself(
    ctx: MigrationStepContext,
  ): Promise<void> {
    const { namespace, kubeConfig } = this.options;
    const name = ctx.migration.spec.workloadRef.name;
    const statefulSet = await apiRequest<V1StatefulSet>(
      kubeConfig,
      'GET',
      `/apis/apps/v1/namespaces/${encodeURIComponent(
        namespace,
      )}/statefulsets/${encodeURIComponent(name)}`,
    );
    const template = statefulSet.spec?.template;
    const terms =
      template?.spec?.affinity?.podAntiAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    const blocking = terms.find(
      term =>
        term.topologyKey === HOSTNAME_LABEL &&
        (!term.namespaces?.length || term.namespaces.includes(namespace)) &&
        selectorMatches(term.labelSelector, template?.metadata?.labels),
    );
    if (blocking) {
      throw new PermanentMigrationError(
        `StatefulSet ${namespace}/${name} requires pod anti-affinity by ${HOSTNAME_LABEL} against its own members, so its recreated ${this.options.member} could not start on the target node next to the temporary member that holds its data; make that anti-affinity preferred, or set the SpotPolicy's migration to reschedule`,
      );
    }
  }

  /**
   * A claim bound to a volume that the target node cannot mount (a zonal disk in
   * another zone) would keep the recreated member Pending for good, with the
   * data on the temporary member; refuse before anything starts. The planner
   * chooses targets without looking at claims.
   */
  private async refuseClaimsTheTargetCannotMount(
    ctx: MigrationStepContext,
  ): Promise<void> {
    const { namespace, member, kubeConfig } = this.options;
    const targetNode = ctx.migration.spec.targetNode;
    const pod = await this.pods.get(member);
    const claims = (pod?.spec?.volumes ?? [])
      .map(v => v.persistentVolumeClaim?.claimName)
      .filter((name): name is string => Boolean(name));
    if (!targetNode || claims.length === 0) return;
    const node = await apiRequest<V1Node>(
      kubeConfig,
      'GET',
      `/api/v1/nodes/${encodeURIComponent(targetNode)}`,
    );
    for (const claim of claims) {
      const pvc = await apiRequest<V1PersistentVolumeClaim>(
        kubeConfig,
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(
          namespace,
        )}/persistentvolumeclaims/${encodeURIComponent(claim)}`,
      );
      // Unbound (WaitForFirstConsumer): it binds where the recreated member goes.
      const volumeName = pvc.spec?.volumeName;
      if (!volumeName) continue;
      const volume = await apiRequest<V1PersistentVolume>(
        kubeConfig,
        'GET',
        `/api/v1/persistentvolumes/${encodeURIComponent(volumeName)}`,
      );
      const terms =
        volume.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
      if (terms.length === 0) continue;
      if (terms.some(term => nodeSelectorTermMatches(term, node))) continue;
      const wanted = terms
        .flatMap(t => t.matchExpressions ?? [])
        .map(e => `${e.key} ${e.operator} ${(e.values ?? []).join(',')}`)
        .join('; ');
      throw new PermanentMigrationError(
        `${namespace}/${member} keeps claim ${claim}, bound to volume ${volumeName}, which only nodes with ${wanted} can mount; the target ${targetNode} is not one, so the StatefulSet could not start ${member} there. The planner chooses targets without looking at claims: move this member with the volume method, or free a node in the volume's zone`,
      );
    }
  }

  /** Runs one hop's step with its share of the state (keys `<hop>.*`). */
  private async hop(
    ctx: MigrationStepContext,
    which: Hop,
    step: (driver: ValkeyDriver, sub: MigrationStepContext) => Promise<void>,
  ): Promise<void> {
    const prefix = `${which}.`;
    const state: Record<string, string> = {};
    for (const [key, value] of Object.entries(ctx.state)) {
      if (key.startsWith(prefix)) state[key.slice(prefix.length)] = value;
    }
    const { spec } = ctx.migration;
    const migration =
      which === 'first'
        ? ctx.migration
        : {
            ...ctx.migration,
            spec: {
              ...spec,
              pod: ctx.state['first.targetName'],
              sourceNode: spec.targetNode!,
            },
          };
    if (which === 'second') {
      // Recorded by the hop's transfer in its share, which reaches
      // `ctx.state` only after the step: the switch needs it sooner.
      this.redirector.lineage = () =>
        state.sourceReplid ?? ctx.state['second.sourceReplid'];
    }
    const sub: MigrationStepContext = {
      ...ctx,
      migration,
      state,
      recordWritePause: ms => {
        // Outside the hops' shares, which are copied back after the step.
        ctx.state[WRITE_PAUSE_KEYS[which]] = String(ms);
        // Clients see two pauses, one per switch; the longer is the one to report.
        ctx.recordWritePause(
          Math.max(
            ...Object.values(WRITE_PAUSE_KEYS).map(key =>
              Number(ctx.state[key] ?? 0),
            ),
          ),
        );
      },
    };
    try {
      await step(this.hops[which], sub);
    } finally {
      this.redirector.forgetPrepared();
      for (const [key, value] of Object.entries(state)) {
        ctx.state[`${prefix}${key}`] = value;
      }
    }
  }
}
