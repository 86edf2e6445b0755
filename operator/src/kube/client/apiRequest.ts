import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** How long one plain (non-watch) API request may take. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Connections kept open to one API server; a burst of writes shares them. */
const MAX_SOCKETS = 128;

/**
 * One keep-alive agent per kube config and TLS identity: client-node makes a new
 * agent (a new TLS handshake) for every request, which under a burst of writes
 * costs more than the writes.
 */
const agents = new WeakMap<KubeConfig, Map<string, https.Agent>>();

function keepAliveAgent(
  kubeConfig: KubeConfig,
  fresh: https.Agent | undefined,
): https.Agent | undefined {
  if (!(fresh instanceof https.Agent)) return fresh;
  const tls = fresh.options;
  const identity = JSON.stringify([
    tls.ca,
    tls.cert,
    tls.key,
    tls.pfx,
    tls.rejectUnauthorized,
    tls.servername,
  ]);
  let byIdentity = agents.get(kubeConfig);
  if (!byIdentity) agents.set(kubeConfig, (byIdentity = new Map()));
  let agent = byIdentity.get(identity);
  if (!agent) {
    agent = new https.Agent({
      ...tls,
      keepAlive: true,
      maxSockets: MAX_SOCKETS,
    });
    byIdentity.set(identity, agent);
  }
  return agent;
}

/** A refusal from the API server, with the `Status` it sent. */
export class KubeApiError extends Error {
  constructor(
    /** HTTP status code, e.g. 409 for a conflict or 410 for an expired resourceVersion. */
    readonly code: number,
    /** The `reason` of the Status object, e.g. `Conflict`, `NotFound`, `Expired`. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** Whether the API server answered 404: the object (or its namespace) is not there. */
export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.code === 404;
}

/** The kind of a resource and where its collection lives. */
export interface ResourceType {
  /** `v1` for the core group, else `group/version`. */
  apiVersion: string;
  kind: string;
  /** The resource name in URLs, e.g. `nodes`, `spotpolicies`. */
  plural: string;
  namespaced: boolean;
}

/** The API path of a collection, in one namespace or (namespaced or not) the whole cluster. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const prefix = type.apiVersion.includes('/')
    ? `/apis/${type.apiVersion}`
    : `/api/${type.apiVersion}`;
  const scope =
    type.namespaced && namespace
      ? `/namespaces/${encodeURIComponent(namespace)}`
      : '';
  return `${prefix}${scope}/${type.plural}`;
}

/**
 * One JSON request to the API server with the credentials of the kube config.
 * The objects come back as the server wrote them (timestamps as strings), the
 * same shape as the objects of a watch.
 */
export async function apiRequest<T = any>(
  kubeConfig: KubeConfig,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  options: {
    query?: Record<string, string | number | boolean | undefined>;
    body?: unknown;
    contentType?: string;
    /** Give up after this long; default REQUEST_TIMEOUT_MS. */
    timeoutMs?: number;
  } = {},
): Promise<T> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kube config has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  const requestOptions: https.RequestOptions = { headers: {} };
  // Credentials are applied per request (an exec plugin's token rotates); the
  // connection is reused.
  await kubeConfig.applyToHTTPSOptions(requestOptions);
  requestOptions.agent = keepAliveAgent(
    kubeConfig,
    requestOptions.agent as https.Agent | undefined,
  );
  const headers: http.OutgoingHttpHeaders = {
    ...(requestOptions.headers as http.OutgoingHttpHeaders),
    accept: 'application/json',
  };
  const payload =
    options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) {
    headers['content-type'] = options.contentType ?? 'application/json';
    // Node sends a DELETE's body with neither a length nor chunking; the API
    // server then reads the body as the next request on the kept-alive
    // connection and answers that request 400.
    headers['content-length'] = Buffer.byteLength(payload);
  }
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  return new Promise<T>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      { ...requestOptions, method, headers, timeout: timeoutMs },
      response => {
        const chunks: Buffer[] = [];
        response.on('data', chunk => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          let parsed: any;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
          } else {
            reject(
              new KubeApiError(
                status,
                parsed?.reason ?? http.STATUS_CODES[status] ?? 'Unknown',
                `${method} ${path}: ${parsed?.message ?? text ?? status}`,
              ),
            );
          }
        });
      },
    );
    request.on('timeout', () =>
      request.destroy(
        new Error(`${method} ${path}: no answer in ${timeoutMs} ms`),
      ),
    );
    request.on('error', reject);
    request.end(payload);
  });
}
