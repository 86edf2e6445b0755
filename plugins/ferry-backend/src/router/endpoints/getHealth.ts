import { FerryRouter, FerryRouterOptions } from '../types';

/** GET /health */
export function bindGetHealth(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get('/health', async (_req, res) => {
    res.json({
      status: 'ok',
      mode: options.clusters.mode,
      clusters: options.clusters.reachabilityOf(),
    });
  });
}
