/** Opts a catalog entity in or out of spot placement: `enabled` or `disabled`. */
export const ANNOTATION_SPOT = 'ferry.dev/spot';
/** Share of replicas kept on permanent nodes, a number in [0, 1]. */
export const ANNOTATION_PERMANENT_RATIO = 'ferry.dev/permanent-ratio';
/** Availability target, a number in (0, 1], e.g. `0.999`. */
export const ANNOTATION_AVAILABILITY_TARGET = 'ferry.dev/availability-target';
/** Migration method: `auto`, `valkey`, `checkpoint`, `volume` or `reschedule`. */
export const ANNOTATION_MIGRATION = 'ferry.dev/migration';

/** The Kubernetes plugin's annotations that find an entity's workloads. */
export const ANNOTATION_KUBERNETES_ID = 'backstage.io/kubernetes-id';
/** Namespace of the entity's workloads. */
export const ANNOTATION_KUBERNETES_NAMESPACE =
  'backstage.io/kubernetes-namespace';
/** A label selector that finds the entity's workloads. */
export const ANNOTATION_KUBERNETES_LABEL_SELECTOR =
  'backstage.io/kubernetes-label-selector';
/** The cluster of the entity's workloads, when it runs in one cluster only. */
export const ANNOTATION_KUBERNETES_CLUSTER = 'backstage.io/kubernetes-cluster';
