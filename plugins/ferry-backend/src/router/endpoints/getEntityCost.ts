import { entityRefOfPath, requireSnapshot } from '../entitySnapshot';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /entities/{kind}/{namespace}/{name}/cost?from&to&bucket */
export function bindGetEntityCost(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/entities/:kind/:namespace/:name/cost', async (req, res) => {
    const credentials = await options.httpAuth.credentials(req, {
      allow: ['user', 'service'],
    });
    const entityRef = entityRefOfPath(req.params);
    await options.access.requireRead(entityRef, credentials);
    const snapshot = await requireSnapshot(options, entityRef);
    // The generated type names `from` `_from` (a reserved word); on the wire it is `from`.
    const query = req.query as { from?: string; to?: string; bucket?: string };
    res.json(await options.reports.cost(snapshot, query));
  });
}
