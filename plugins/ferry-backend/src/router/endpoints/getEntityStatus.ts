import { entityRefOfPath, requireSnapshot } from '../entitySnapshot';
import { sendCached } from '../sendCached';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /entities/{kind}/{namespace}/{name}/status */
export function bindGetEntityStatus(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/entities/:kind/:namespace/:name/status', async (req, res) => {
    const credentials = await options.httpAuth.credentials(req, {
      allow: ['user', 'service'],
    });
    const entityRef = entityRefOfPath(req.params);
    await options.access.requireRead(entityRef, credentials);
    const cached = await options.reports.statusBody(entityRef);
    if (cached) {
      sendCached(req, res, cached);
      return;
    }
    // No report yet: apply the entity's annotations, or say why there is none.
    const snapshot = await requireSnapshot(options, entityRef);
    res.json(options.reports.status(snapshot));
  });
}
