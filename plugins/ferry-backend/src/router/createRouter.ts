import { InputError } from '@backstage/errors';
import express, { ErrorRequestHandler, RequestHandler } from 'express';
import Router from 'express-promise-router';
import { createOpenApiRouter, spec } from '../schema/openapi';
import { MethodNotAllowedError, PayloadTooLargeError } from './httpErrors';
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

/** What each endpoint with a body expects in it, for the 413 that says what to send. */
const BODY_FIELDS: [RegExp, string][] = [
  [
    /^\/demo\/reclaim\/?$/,
    'Send at most the node to reclaim ({"node": "<name>"}), or no body.',
  ],
  [
    /\/policy\/?$/,
    'Send only the policy fields to change (enabled, permanentRatio, availabilityTarget, migration).',
  ],
];

/** Says what is wrong with a body that is too large, before anything reads it. */
const rejectOversizedBody: RequestHandler = (req, _res, next) => {
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > MAX_BODY_BYTES) {
    const hint = BODY_FIELDS.find(([path]) => path.test(req.path))?.[1] ?? '';
    next(
      new PayloadTooLargeError(
        `The request body is ${length} bytes; Ferry accepts at most ${MAX_BODY_BYTES}. ${hint}`.trim(),
      ),
    );
    return;
  }
  next();
};

/** The generated router would parse the body again; it was read in front of it. */
const bodyAlreadyRead: RequestHandler = (_req, _res, next) => next();

/** express.json's own refusal of a body without a length that grew too large. */
const explainBodyTooLarge: ErrorRequestHandler = (error, req, _res, next) => {
  if ((error as { type?: string })?.type === 'entity.too.large') {
    const hint = BODY_FIELDS.find(([path]) => path.test(req.path))?.[1] ?? '';
    next(
      new PayloadTooLargeError(
        `The request body is larger than Ferry accepts (${MAX_BODY_BYTES} bytes). ${hint}`.trim(),
      ),
    );
    return;
  }
  next(error);
};

const WHERE: Record<string, string> = {
  body: 'request body',
  query: 'query parameter',
  params: 'path parameter',
};

type SpecParameter = { name: string; description?: string };

/** What the contract says each parameter may hold, by name: the one home of those rules. */
const PARAMETER_DESCRIPTIONS: Record<string, string> = Object.fromEntries(
  [
    ...Object.values(
      spec.components.parameters as Record<string, SpecParameter>,
    ),
    ...Object.values(spec.paths as Record<string, object>).flatMap(operations =>
      Object.values(operations as Record<string, { parameters?: unknown[] }>)
        .flatMap(operation => operation.parameters ?? [])
        .filter((p): p is SpecParameter => !!(p as SpecParameter).name),
    ),
  ]
    .filter(p => p.description)
    .map(p => [p.name, p.description!]),
);

/** One validator complaint ("request/params/kind must match pattern ...") as a sentence. */
function explainPart(text: string): string {
  // The validator names an empty query value without the request/ prefix.
  const part = text.replace(
    /^Empty value found for query parameter '([^']*)'/,
    'request/query/$1 Empty value found',
  );
  const match = part.match(/^request\/(body|query|params)\/?(\S*)\s*(.*)$/s);
  if (!match) return part;
  const [, where, field, complaint] = match;
  const subject = field
    ? `${WHERE[where]} ${field.replace(/\//g, '.')}`
    : `the ${WHERE[where]}`;
  const rules = where === 'body' ? undefined : PARAMETER_DESCRIPTIONS[field];
  if (/^Empty value found/.test(complaint)) {
    return `${subject} is empty; leave it out to use its default${
      rules ? ` (${rules})` : ''
    }`;
  }
  if (!rules) return `${subject} ${complaint}`;
  return /^must match pattern/.test(complaint)
    ? `${subject} is not one Ferry can read. ${rules}`
    : `${subject} ${complaint}. ${rules}`;
}

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
    /^(request\/(body|query|params)|Empty value found)/.test(error.message)
  ) {
    const explained = error.message
      .split(/,\s*(?=request\/)/)
      .map(explainPart)
      .join('; ');
    next(
      new InputError(
        `Invalid request: ${explained.replace(
          /\.$/,
          '',
        )}. The contract is at /api/ferry/openapi.json.`,
      ),
    );
    return;
  }
  next(error);
};

/** body-parser's refusal of a body that is not JSON, as the 400 every other bad input gets. */
const explainUnreadableBody: ErrorRequestHandler = (
  error,
  _req,
  _res,
  next,
) => {
  if ((error as { type?: string })?.type === 'entity.parse.failed') {
    next(
      new InputError(
        `The request body is not valid JSON: ${(error as Error).message}`,
      ),
    );
    return;
  }
  next(error);
};

/**
 * 405 with the methods the contract declares, for any other method on one of
 * its paths (the validator lets undeclared operations through to here).
 */
function methodNotAllowed(router: express.Router): void {
  for (const [path, operations] of Object.entries(
    spec.paths as Record<string, object>,
  )) {
    const allowed = Object.keys(operations).map(m => m.toUpperCase());
    if (allowed.includes('GET')) allowed.push('HEAD');
    router.all(path.replace(/\{(\w+)\}/g, ':$1'), (req, res) => {
      res.setHeader('Allow', allowed.join(', '));
      throw new MethodNotAllowedError(
        `${
          req.method
        } is not an operation of ${path}; it answers ${allowed.join(
          ', ',
        )}. The contract is at /api/ferry/openapi.json.`,
      );
    });
  }
}

/**
 * Ferry's REST API: the router generated from the OpenAPI spec, with each
 * endpoint bound. The body is read in front of it, so that a body too large or
 * not JSON keeps its own status rather than the validator's 400.
 */
export async function createRouter(
  options: FerryRouterOptions,
): Promise<express.Router> {
  const api: FerryRouter = await createOpenApiRouter({
    middleware: [bodyAlreadyRead],
  });
  bindGetHealth(api, options);
  bindGetFleetSummary(api, options);
  bindGetEntityStatus(api, options);
  bindGetEntityCost(api, options);
  bindGetEntityAvailability(api, options);
  bindGetEntityMigrations(api, options);
  bindGetEntityPolicy(api, options);
  bindUpdateEntityPolicy(api, options);
  bindDemoReclaim(api, options);
  api.use(explainInvalidRequest);

  const router = Router();
  router.use(rejectOversizedBody, express.json({ limit: MAX_BODY_BYTES }));
  router.use(explainBodyTooLarge, explainUnreadableBody);
  router.use(api);
  methodNotAllowed(router);
  return router;
}
