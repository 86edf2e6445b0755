import { sendCached } from '../sendCached';
import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /fleet: the services the caller may read, and their totals. */
export function bindGetFleetSummary(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/fleet', async (req, res) => {
    const credentials = await options.httpAuth.credentials(req, {
      allow: ['user', 'service'],
    });
    // One decision for the whole fleet when the policy allows reading outright
    // (the default policy does): then every caller gets the same cached body.
    const whole = await options.access.readableOf([], credentials);
    if (whole === 'all') {
      sendCached(req, res, await options.reports.fleetBody());
      return;
    }
    res.json(
      await options.reports.fleetLimitedTo(async refs => {
        const readable = await options.access.readableOf(refs, credentials);
        return readable === 'all' ? new Set(refs) : readable;
      }),
    );
  });
}
