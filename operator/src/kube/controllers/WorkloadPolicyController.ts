import {
  lastAppliedAnnotations,
  parsePolicyAnnotations,
  policyAnnotationChanges,
  sameAnnotations,
} from '@ferry/plugin-ferry-common';
import {
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
  SpotPolicySpec,
} from '../../api/v1alpha1';
import type { AnnotatedWorkload, ClusterState } from '../state/ClusterState';
import { systemTimers, Timer, Timers } from '../../core/clock';
import { SPOT_POLICY_ANNOTATIONS } from '../client/ferryKeys';
import {
  type ClusterWrites,
  type EventSink,
  WriteConflictError,
} from '../../OperatorPorts';

/** Changes in a burst (a rollout, a relist) are looked at once, this long after the first. */
const SETTLE_MS = 200;
/** A write refused by a conflict or an outage is tried again after this long. */
const RETRY_MS = 2_000;

/** The SpotPolicy spec fields that annotations set, and the defaults of the rest. */
export type PolicyDefaults = typeof SPOT_POLICY_DEFAULTS;

/**
 * Opting in with kubectl alone: turns the `ferry.dev/*` annotations of a
 * Deployment or StatefulSet (on the workload or on its pod template) into the
 * workload's SpotPolicy, so that a cluster without Backstage opts in the way the
 * Stateful Spot Instance post's users do.
 *
 * The rule is the catalog sync's (`policyAnnotationChanges` in ferry-common): an
 * annotation is applied when first seen and whenever its value changes, and a
 * change from the portal or the API stays in force until the annotation of that
 * field changes. The annotations as last applied are kept on the SpotPolicy
 * (`ferry.dev/workload-annotations`), so the rule holds across restarts and
 * leaders. Only `ferry.dev/spot` creates a policy. A malformed annotation is
 * reported once as a Warning Event on the workload and otherwise ignored.
 */
export class WorkloadPolicyController {
  private timer?: Timer;
  private stopped = false;
  /** Malformed annotations already reported, by workload, so each is said once. */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly options: {
      writes: Pick<ClusterWrites, 'createSpotPolicy' | 'updateSpotPolicy'>;
      state: ClusterState;
      defaults?: PolicyDefaults;
      events?: EventSink;
      onError?: (error: unknown) => void;
      onApplied?: (policy: SpotPolicy, created: boolean) => void;
      /** What its settle and retry delays wait on; the wall clock's timers when left out. */
      timers?: Timers;
    },
  ) {}

  /** Something changed: look again once the burst settles. */
  changed(delayMs = SETTLE_MS): void {
    if (this.stopped || this.timer) return;
    this.timer = (this.options.timers ?? systemTimers).after(delayMs, () => {
      this.timer = undefined;
      this.reconcile().catch(error => this.options.onError?.(error));
    });
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Applies every annotated workload's annotations; resolves when the writes are done. */
  async reconcile(): Promise<void> {
    let retry = false;
    for (const workload of this.options.state.annotatedWorkloads()) {
      if (this.stopped) return;
      try {
        await this.apply(workload);
      } catch (error) {
        retry = true;
        if (!(error instanceof WriteConflictError)) {
          this.options.onError?.(
            new Error(
              `SpotPolicy of ${workload.kind} ${workload.namespace}/${
                workload.name
              } from its annotations: ${(error as Error).message}`,
            ),
          );
        }
      }
    }
    if (retry) this.changed(RETRY_MS);
  }

  private async apply(workload: AnnotatedWorkload): Promise<void> {
    const parsed = parsePolicyAnnotations(workload.annotations);
    this.report(workload, parsed.errors);
    if (Object.keys(parsed.settings).length === 0) return;
    const policy = this.options.state.policies.get(
      `${workload.namespace}/${workload.name}`,
    );
    if (
      policy &&
      (policy.spec.workloadRef.kind !== workload.kind ||
        policy.spec.workloadRef.name !== workload.name)
    ) {
      this.report(workload, [
        `SpotPolicy ${workload.namespace}/${workload.name} belongs to ${policy.spec.workloadRef.kind} ${policy.spec.workloadRef.name}; rename one of them to opt this ${workload.kind} in`,
      ]);
      return;
    }
    const lastApplied = lastAppliedAnnotations(
      policy?.metadata.annotations?.[
        SPOT_POLICY_ANNOTATIONS.workloadAnnotations
      ],
    );
    const { applied, changed } = policyAnnotationChanges(parsed, lastApplied);
    // Only ferry.dev/spot creates a policy; the other annotations wait for it.
    if (!policy && changed.enabled === undefined) return;
    const settingsChanged = Object.keys(changed).some(
      key =>
        (policy?.spec as unknown as Record<string, unknown> | undefined)?.[
          key
        ] !== (changed as Record<string, unknown>)[key],
    );
    if (policy && !settingsChanged && sameAnnotations(applied, lastApplied))
      return;
    const annotations: Record<string, string> = {
      [SPOT_POLICY_ANNOTATIONS.workloadAnnotations]: JSON.stringify(applied),
    };
    if (settingsChanged || !policy) {
      annotations[SPOT_POLICY_ANNOTATIONS.source] = 'workload';
    }
    const written = policy
      ? await this.update(policy, changed, annotations)
      : await this.create(workload, changed, annotations);
    this.options.onApplied?.(written, !policy);
  }

  private create(
    workload: AnnotatedWorkload,
    changed: Partial<SpotPolicySpec>,
    annotations: Record<string, string>,
  ): Promise<SpotPolicy> {
    const defaults = this.options.defaults ?? SPOT_POLICY_DEFAULTS;
    const spec: SpotPolicySpec = {
      workloadRef: { kind: workload.kind, name: workload.name },
      enabled: false,
      permanentRatio: defaults.permanentRatio,
      availabilityTarget: defaults.availabilityTarget,
      migration: defaults.migration,
      maxConcurrentMoves: defaults.maxConcurrentMoves,
      predictionHorizonMinutes: defaults.predictionHorizonMinutes,
      ...changed,
    };
    return this.options.writes.createSpotPolicy({
      namespace: workload.namespace,
      name: workload.name,
      annotations,
      spec,
    });
  }

  private update(
    policy: SpotPolicy,
    changed: Partial<SpotPolicySpec>,
    annotations: Record<string, string>,
  ): Promise<SpotPolicy> {
    // On the version read: a portal change written in between makes this a conflict,
    // and the next look applies the annotations over it under the same rule.
    return this.options.writes.updateSpotPolicy(policy, {
      spec: changed,
      annotations,
    });
  }

  private report(workload: AnnotatedWorkload, errors: string[]): void {
    const key = `${workload.kind}/${workload.namespace}/${workload.name}`;
    const text = errors.join('; ');
    if (this.reported.get(key) === text) return;
    if (!text) {
      this.reported.delete(key);
      return;
    }
    this.reported.set(key, text);
    this.options.events?.record(
      {
        apiVersion: 'apps/v1',
        kind: workload.kind,
        name: workload.name,
        namespace: workload.namespace,
        uid: workload.uid,
      },
      {
        type: 'Warning',
        reason: 'InvalidFerryAnnotation',
        action: 'ApplySpotPolicy',
        note: `Ferry ignores: ${text}`,
      },
    );
  }
}
