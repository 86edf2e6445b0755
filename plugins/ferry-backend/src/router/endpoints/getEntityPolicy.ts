import { ferryPolicyUpdatePermission } from '@ferry/plugin-ferry-common';
import { ownersOf } from '../../services/EntityReader/EntityAccess';
import { entityRefOfPath } from '../entitySnapshot';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /entities/{kind}/{namespace}/{name}/policy */
export function bindGetEntityPolicy(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/entities/:kind/:namespace/:name/policy', async (req, res) => {
    const credentials = await options.httpAuth.credentials(req, {
      allow: ['user', 'service'],
    });
    const entityRef = entityRefOfPath(req.params);
    await options.access.requireRead(entityRef, credentials);
    const entity = await options.access.get(entityRef);
    try {
      // Annotations edited since the last sync take effect before the view is built.
      await options.policies.syncFromCatalog(entity);
    } catch (error) {
      options.logger.debug(
        `Ferry could not sync ${entityRef} on read: ${error}`,
      );
    }
    const canUpdate = await options.access.isAllowed(
      ferryPolicyUpdatePermission,
      entityRef,
      credentials,
    );
    res.json(
      await options.policies.view(
        entity,
        canUpdate
          ? { canUpdate }
          : {
              canUpdate,
              readOnlyReason: `Only the owners of ${entityRef} (${
                ownersOf(entity).join(', ') || 'none recorded'
              }) may change its spot policy`,
            },
      ),
    );
  });
}
