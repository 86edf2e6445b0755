/** Opts a catalog entity in or out of spot placement: `enabled` or `disabled`. */
export const ANNOTATION_SPOT = 'ferry.dev/spot';
/** Share of replicas kept on permanent nodes, a number in [0, 1]. */
export const ANNOTATION_PERMANENT_RATIO = 'ferry.dev/permanent-ratio';
/** Availability target, a number in (0, 1], e.g. `0.999`. */
export const ANNOTATION_AVAILABILITY_TARGET = 'ferry.dev/availability-target';
/** Migration method: `auto`, `valkey`, `checkpoint`, `volume` or `reschedule`. */
export const ANNOTATION_MIGRATION = 'ferry.dev/migration';
/**
 * How long the workload's members may see no traffic before they hibernate
 * (checkpointed in place, requests dropped): `10s`, `10m`, `2h`. On a catalog
 * entity, a workload or its pod template; independent of `ferry.dev/spot`.
 */
export const ANNOTATION_HIBERNATE_AFTER = 'ferry.dev/hibernate-after';

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

/** Annotations Ferry keeps on each SpotPolicy it writes (like kubectl's last-applied). */
export const SPOT_POLICY_ANNOTATIONS = {
  /** The catalog entity the policy belongs to. */
  entityRef: 'ferry.dev/entity-ref',
  /** Where the policy's settings came from last: catalog, portal, api or workload. */
  source: 'ferry.dev/policy-source',
  /** The entity's policy annotations as last applied, JSON; lets the catalog sync tell a changed annotation from an unchanged one. */
  catalogAnnotations: 'ferry.dev/catalog-annotations',
  /** The workload's own policy annotations as last applied by the operator, JSON; the same rule for `kubectl annotate`. */
  workloadAnnotations: 'ferry.dev/workload-annotations',
} as const;
