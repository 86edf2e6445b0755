import { Request, Response } from 'express';
import { CachedBody } from '../services/SpotReports/ResponseCache';

/** Sends a serialized answer, or 304 when the client holds the same one. */
export function sendCached(
  req: unknown,
  res: unknown,
  cached: CachedBody,
): void {
  const request = req as Request;
  const response = res as Response;
  response.setHeader('ETag', cached.etag);
  if (request.headers['if-none-match'] === cached.etag) {
    response.status(304).end();
    return;
  }
  response.type('application/json').send(cached.body);
}
