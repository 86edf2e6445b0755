import {
  AuthorizeResult,
  isPermission,
  PolicyDecision,
} from '@backstage/plugin-permission-common';
import {
  PermissionPolicy,
  PolicyQuery,
  PolicyQueryUser,
} from '@backstage/plugin-permission-node';
import {
  ferryPolicyReadPermission,
  ferryPolicyUpdatePermission,
} from '@ferry/plugin-ferry-common';
import { createFerryConditionalDecision, ferryConditions } from './rules';

/**
 * The portal's permission policy: anyone signed in may read a Ferry policy; only
 * the entity's owners (the user or one of their groups) may change it. Backend
 * services, which act for an administrator's configuration, may do both.
 * Every other permission is allowed, as the portal allowed it before.
 */
export class FerryPermissionPolicy implements PermissionPolicy {
  async handle(
    request: PolicyQuery,
    user?: PolicyQueryUser,
  ): Promise<PolicyDecision> {
    if (isPermission(request.permission, ferryPolicyUpdatePermission)) {
      if (!user) return { result: AuthorizeResult.ALLOW };
      return createFerryConditionalDecision(
        request.permission,
        ferryConditions.isEntityOwner({
          claims: user.info.ownershipEntityRefs,
        }),
      );
    }
    if (isPermission(request.permission, ferryPolicyReadPermission)) {
      return { result: AuthorizeResult.ALLOW };
    }
    return { result: AuthorizeResult.ALLOW };
  }
}
