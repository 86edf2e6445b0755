import { FerryRouter, FerryRouterOptions } from '../types';

/** POST /demo/reclaim — demo mode only. */
export function bindDemoReclaim(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.post('/demo/reclaim', async (req, res) => {
    await options.httpAuth.credentials(req, { allow: ['user', 'service'] });
    res.json(await options.demoReclaim.reclaim(req.body?.node));
  });
}
