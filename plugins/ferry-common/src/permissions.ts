import { createPermission } from '@backstage/plugin-permission-common';

/** Read an entity's spot policy, status and history. */
export const ferryPolicyReadPermission = createPermission({
  name: 'ferry.policy.read',
  attributes: { action: 'read' },
  resourceType: 'catalog-entity',
});

/** Change an entity's spot policy (opt in or out, ratio, target, method). */
export const ferryPolicyUpdatePermission = createPermission({
  name: 'ferry.policy.update',
  attributes: { action: 'update' },
  resourceType: 'catalog-entity',
});

/** Every permission Ferry declares. */
export const ferryPermissions = [
  ferryPolicyReadPermission,
  ferryPolicyUpdatePermission,
];
