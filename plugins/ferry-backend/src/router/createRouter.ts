import { InputError } from '@backstage/errors';
import express, { ErrorRequestHandler, RequestHandler } from 'express';
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

const WHERE: Record<string, string> = {
  body: 'request body',
  query: 'query parameter',
  params: 'path parameter',
};

/**
 * Rewrites the schema validator's messages ("request/body/permanentRatio must
 * be <= 1") as sentences that name the field and point at the contract.
 */
const explainInvalidRequest: ErrorRequestHandler = (
  error,
  _req,
  _res,
  next,
) => {
  if (
    error instanceof InputError &&
    /^request\/(body|query|params)/.test(error.message)
  ) {
    const explained = error.message
      .split(/,\s*(?=request\/)/)
      .map(part =>
        part.replace(
          /^request\/(body|query|params)\/?(\S*)\s*/,
          (_m, where: string, field: string) =>
            `${
              field
                ? `${WHERE[where]} ${field.replace(/\//g, '.')}`
                : `the ${WHERE[where]}`
            } `,
        ),
      )
      .join('; ');
    next(
      new InputError(
        `Invalid request: ${explained}. The contract is at /api/ferry/openapi.json.`,
      ),
    );
    return;
  }
  next(error);
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
  router.use(explainInvalidRequest);
  return router;
}
