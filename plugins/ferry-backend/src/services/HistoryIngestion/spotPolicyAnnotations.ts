/** Annotations the portal keeps on each SpotPolicy it writes (like kubectl's last-applied). */
export const SPOT_POLICY_ANNOTATIONS = {
  /** The catalog entity the policy belongs to. */
  entityRef: 'ferry.dev/entity-ref',
  /** Where the policy's settings came from last: catalog, portal or api. */
  source: 'ferry.dev/policy-source',
  /** The entity's policy annotations as last applied, JSON; lets the catalog sync tell a changed annotation from an unchanged one. */
  catalogAnnotations: 'ferry.dev/catalog-annotations',
} as const;
