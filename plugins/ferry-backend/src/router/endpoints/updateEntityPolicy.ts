import { NotAllowedError } from '@backstage/errors';
import { ferryPolicyUpdatePermission } from '@ferry/plugin-ferry-common';
import { ownersOf } from '../../services/EntityReader/EntityAccess';
import { PolicyActor } from '../../services/PolicyService/PolicyService';
import { entityRefOfPath } from '../entitySnapshot';
import { FerryRouter, FerryRouterOptions } from '../types';

/** PUT /entities/{kind}/{namespace}/{name}/policy */
export function bindUpdateEntityPolicy(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.put('/entities/:kind/:namespace/:name/policy', async (req, res) => {
    const credentials = await options.httpAuth.credentials(req, {
      allow: ['user', 'service'],
    });
    const entityRef = entityRefOfPath(req.params);
    const entity = await options.access.get(entityRef);
    if (
      !(await options.access.isAllowed(
        ferryPolicyUpdatePermission,
        entityRef,
        credentials,
      ))
    ) {
      throw new NotAllowedError(
        `Only the owners of ${entityRef} (${
          ownersOf(entity).join(', ') || 'none recorded'
        }) may change its spot policy; ask one of them, or change its catalog-info.yaml`,
      );
    }
    const actor: PolicyActor =
      credentials.principal.type === 'user'
        ? {
            changedBy: (credentials.principal as { userEntityRef: string })
              .userEntityRef,
            source: 'portal',
          }
        : {
            changedBy: (credentials.principal as { subject: string }).subject,
            source: 'api',
          };
    await options.policies.update(entity, req.body, actor);
    res.json(await options.policies.view(entity, { canUpdate: true }));
  });
}
