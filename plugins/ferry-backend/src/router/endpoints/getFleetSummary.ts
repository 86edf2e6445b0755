import { Response } from 'express';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /fleet */
export function bindGetFleetSummary(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/fleet', async (req, res) => {
    await options.httpAuth.credentials(req, { allow: ['user', 'service'] });
    // Sent as built once per change: the body is the FleetSummary of the spec.
    (res as unknown as Response)
      .type('application/json')
      .send(await options.reports.fleetJson());
  });
}
