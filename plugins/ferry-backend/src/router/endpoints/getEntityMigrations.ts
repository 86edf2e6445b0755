import { entityRefOfPath, requireSnapshot } from '../entitySnapshot';
import { FerryRouter, FerryRouterOptions } from '../types';

/** Migrations per page when `limit` is absent. */
export const DEFAULT_MIGRATIONS_PAGE = 50;

/** GET /entities/{kind}/{namespace}/{name}/migrations?reason&driver&outcome&limit&cursor */
export function bindGetEntityMigrations(
  router: FerryRouter,
  options: FerryRouterOptions,
) {
  router.get(
    '/entities/:kind/:namespace/:name/migrations',
    async (req, res) => {
      const credentials = await options.httpAuth.credentials(req, {
        allow: ['user', 'service'],
      });
      const entityRef = entityRefOfPath(req.params);
      await options.access.requireRead(entityRef, credentials);
      await requireSnapshot(options, entityRef);
      const { reason, driver, outcome, limit, cursor } = req.query;
      res.json(
        await options.reports.migrations(entityRef, {
          reason,
          driver,
          outcome,
          limit: limit === undefined ? DEFAULT_MIGRATIONS_PAGE : Number(limit),
          cursor,
        }),
      );
    },
  );
}
