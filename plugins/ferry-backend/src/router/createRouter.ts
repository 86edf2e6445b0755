import { InputError } from '@backstage/errors';
import express, { RequestHandler } from 'express';
import { createOpenApiRouter } from '../schema/openapi';
import { bindDemoReclaim } from './endpoints/demoReclaim';
import { bindGetEntityAvailability } from './endpoints/getEntityAvailability';
import { bindGetEntityCost } from './endpoints/getEntityCost';
import { bindGetEntityMigrations } from './endpoints/getEntityMigrations';
import { bindGetEntityPolicy } from './endpoints/getEntityPolicy';
import { bindGetEntityStatus } from './endpoints/getEntityStatus';
import { bindGetFleetSummary } from './endpoints/getFleetSummary';
import { bindGetHealth } from './endpoints/getHealth';
import { bindUpdateEntityPolicy } from './endpoints/updateEntityPolicy';
import { FerryRouter, FerryRouterOptions } from './types';

/** The largest request body Ferry reads; a policy change is a few dozen bytes. */
export const MAX_BODY_BYTES = 16 * 1024;

/** Says what is wrong with a body that is too large, before anything reads it. */
const rejectOversizedBody: RequestHandler = (req, _res, next) => {
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > MAX_BODY_BYTES) {
    next(
      new InputError(
        `The request body is ${length} bytes; Ferry accepts at most ${MAX_BODY_BYTES}. Send only the policy fields to change.`,
      ),
    );
    return;
  }
  next();
};

/** Ferry's REST API: the router generated from the OpenAPI spec, with each endpoint bound. */
export async function createRouter(
  options: FerryRouterOptions,
): Promise<FerryRouter> {
  const router = await createOpenApiRouter({
    middleware: [rejectOversizedBody, express.json({ limit: MAX_BODY_BYTES })],
  });
  bindGetHealth(router, options);
  bindGetFleetSummary(router, options);
  bindGetEntityStatus(router, options);
  bindGetEntityCost(router, options);
  bindGetEntityAvailability(router, options);
  bindGetEntityMigrations(router, options);
  bindGetEntityPolicy(router, options);
  bindUpdateEntityPolicy(router, options);
  bindDemoReclaim(router, options);
  return router;
}
