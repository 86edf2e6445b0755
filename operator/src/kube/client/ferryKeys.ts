/**
 * Every `ferry.dev/*` key the operator writes or reads on Kubernetes objects,
 * in one file, so a reader sees them side by side and no two mean different
 * things by accident. The policy annotations a service owner writes (on a
 * catalog entity or a workload) and the ones Ferry keeps on a SpotPolicy are
 * shared with the portal, so they live in `@ferry/plugin-ferry-common` and are
 * re-exported here.
 */
import { ANNOTATION_HIBERNATE_AFTER } from '@ferry/plugin-ferry-common';

export {
  ANNOTATION_AVAILABILITY_TARGET,
  ANNOTATION_MIGRATION,
  ANNOTATION_PERMANENT_RATIO,
  ANNOTATION_SPOT,
  SPOT_POLICY_ANNOTATIONS,
} from '@ferry/plugin-ferry-common';

// Events

/** The name Ferry's operator reports Events under. */
export const REPORTING_CONTROLLER = 'ferry.dev/operator';

// Pods the admission webhook places

/** Where the webhook says it placed a pod, for people reading it. */
export const PLACEMENT_ANNOTATION = 'ferry.dev/placement';
/** Which of this replica's decisions placed a pod, so the watch can tell when it is reflected. */
export const PLACEMENT_DECISION_ANNOTATION = 'ferry.dev/placement-decision';
/**
 * The readiness gate of a StatefulSet member recreated under a valkey
 * Migration. The recreation starts as an empty, writable primary and only
 * later replicates from the temporary member (REPLICAOF discards its data): a
 * write the Service sent it meanwhile would be acknowledged and lost. With the
 * gate, Kubernetes keeps the pod out of Ready, and so out of the Service's
 * endpoints, until the valkey driver sets this condition True, once the
 * member holds the data and has been promoted (StatefulSetValkeyDriver).
 */
export const MEMBER_READY_GATE = 'ferry.dev/member-ready';
/** On a pod to restore: `<container>=<image id>`, read by Ferry's runtime wrapper. */
export const RESTORE_FROM_ANNOTATION = 'ferry.dev/restore-from';

// SpotPolicies

/** Marks a SpotPolicy that exists only in memory, read from its workload's annotations. */
export const PROVISIONAL_POLICY_ANNOTATION = 'ferry.dev/provisional';

// The valkey runtime's hand-off members

/** On a hand-off member: the pod it takes over from. */
export const HANDOFF_OF_LABEL = 'ferry.dev/handoff-of';
/**
 * On a hand-off member: the selector label (`key=value`) it was started without,
 * which it is given when clients are sent to it.
 */
export const HELD_BACK_LABEL_ANNOTATION = 'ferry.dev/held-back-label';

// The volume runtime's pods, claims and snapshots

/** Holds a migrating member's old incarnation until its claim is ready for the new one. */
export const VOLUME_MOVE_FINALIZER = 'ferry.dev/volume-move';
/** On a claim the runtime restored: the VolumeSnapshot it was restored from. */
export const RESTORED_FROM_ANNOTATION = 'ferry.dev/restored-from';
/**
 * On a claim the runtime restored: the Migration that restored it. The
 * driver's snapshot names repeat from one move of a member to the next, so
 * only this tells this move's restore from an earlier one's.
 */
export const RESTORED_BY_ANNOTATION = 'ferry.dev/restored-by';
/**
 * On the runtime's VolumeSnapshots: the Migration that took it (an annotation:
 * names may pass a label's 63 characters). The same key as
 * `ANNOTATION_MIGRATION`, which on a workload names its method; the two never
 * meet on one object, and snapshots already carry it.
 */
export const SNAPSHOT_MIGRATION_ANNOTATION = 'ferry.dev/migration';

// Hibernation (kube/hibernation)

/**
 * On a workload's pod template (so on its pods): how long a container may see
 * no packets on its ports before it is checkpointed and its requests dropped
 * to zero, e.g. `10m`. Absent: never hibernated.
 */
export const HIBERNATE_AFTER_ANNOTATION = ANNOTATION_HIBERNATE_AFTER;
/** On a pod: where it is in hibernation (RUNNING, HIBERNATING, SCALED_DOWN, WAKING). */
export const HIBERNATION_LABEL = 'ferry.dev/hibernation';
/** On a pod that asked to hibernate and must not: why, in a sentence. */
export const HIBERNATION_REFUSED_ANNOTATION = 'ferry.dev/hibernation-refused';
/**
 * On a pod that a checkpoint move is taking off its node: the move, in a
 * sentence. The move woke the pod (a sleeping pod's memory is in images on the
 * node being left, which the move's dump would not take) and the pod does not
 * hibernate until the move ends; its replacement starts from the workload's
 * template, without it.
 */
export const HIBERNATION_SUSPENDED_ANNOTATION =
  'ferry.dev/hibernation-suspended';
/**
 * On a hibernated pod: its containers' requests from before the scale-down
 * (JSON, container name to requests), put back when it wakes.
 */
export const HIBERNATED_REQUESTS_ANNOTATION = 'ferry.dev/hibernated-requests';
/**
 * On a Service Ferry set `publishNotReadyAddresses` on, for the hibernating pod
 * it selects: that pod's name, so a person sees why.
 */
export const PUBLISHED_FOR_HIBERNATION_ANNOTATION =
  'ferry.dev/published-for-hibernation';
