import { sendCached } from '../sendCached';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /fleet */
export function bindGetFleetSummary(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/fleet', async (req, res) => {
    await options.httpAuth.credentials(req, { allow: ['user', 'service'] });
    sendCached(req, res, await options.reports.fleetBody());
  });
}
