import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';

/** One RFC 6902 JSON Patch operation, as an admission response carries them. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** What the API server tells the webhook about the pod it is admitting. */
export interface PodAdmission {
  namespace: string;
  operation: 'CREATE' | 'UPDATE';
  /** A dry run must not cause side effects outside the answer. */
  dryRun: boolean;
}

/**
 * Decides the changes to a pod being created: the placement plan as node
 * affinity, tolerations and topology spread. An empty list admits it unchanged.
 */
export type PodMutator = (
  pod: V1Pod,
  admission: PodAdmission,
) => Promise<JsonPatchOperation[]>;

/** An eviction being asked for (by `kubectl drain`, Karpenter, the autoscaler, NTH). */
export interface EvictionAdmission {
  namespace: string;
  /** The pod to evict. */
  pod: string;
  dryRun: boolean;
}

/**
 * Whether an eviction may go ahead now. Refusing it makes the evicting tool wait
 * and retry (it answers 429, as a PodDisruptionBudget does), which is how an
 * opted-in pod's eviction becomes a migration instead of a kill: the operator
 * moves the member and lets the eviction through (or removes the pod) when done.
 */
export type EvictionReviewer = (
  eviction: EvictionAdmission,
) => Promise<{ allowed: true } | { allowed: false; message: string }>;

/** Where the webhook listens and what it runs. */
export interface AdmissionWebhookOptions {
  mutatePod: PodMutator;
  /** Reviews evictions served at EVICTIONS_PATH; without it every eviction is allowed. */
  reviewEviction?: EvictionReviewer;
  /** PEM serving certificate and key; the API server checks them against the configuration's caBundle. */
  tls: { cert: string | Buffer; key: string | Buffer };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Every review answered, with how long it took; for the latency histogram. */
  onReview?: (review: {
    durationMs: number;
    patched: boolean;
    failed: boolean;
  }) => void;
  /** A mutator that threw: the pod is admitted unchanged (the webhook fails open). */
  onError?: (error: unknown) => void;
}

/** Path the webhook configuration points at for pods. */
export const MUTATE_PODS_PATH = '/mutate-pods';
/** Path the validating webhook configuration points at for `pods/eviction`. */
export const EVICTIONS_PATH = '/validate-evictions';
/** The status an eviction refusal carries: what a PodDisruptionBudget answers, so tools retry. */
const EVICTION_REFUSED = { code: 429, reason: 'TooManyRequests' };
/** Largest AdmissionReview accepted; a pod is far smaller. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: {
    uid: string;
    /** The object's name; for a subresource such as `pods/eviction`, the pod's. */
    name?: string;
    namespace?: string;
    operation: string;
    subResource?: string;
    dryRun?: boolean;
    object?: V1Pod;
  };
}

/**
 * The mutating admission webhook's HTTPS server. It fails open twice over: a
 * mutator that throws admits the pod unchanged, and the configuration's
 * `failurePolicy: Ignore` admits pods when the server is down. Placement is an
 * optimisation; no pod should wait for it.
 */
export class AdmissionWebhookServer {
  private server?: https.Server;

  constructor(private readonly options: AdmissionWebhookOptions) {}

  /** Starts listening; resolves with the port. */
  async start(): Promise<number> {
    const server = https.createServer(
      { cert: this.options.tls.cert, key: this.options.tls.key },
      (request, response) => {
        if (request.method === 'GET' && request.url === '/healthz') {
          response.end('ok');
          return;
        }
        const path = request.url?.split('?')[0];
        if (
          request.method !== 'POST' ||
          (path !== MUTATE_PODS_PATH && path !== EVICTIONS_PATH)
        ) {
          response.statusCode = 404;
          response.end();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        request.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            response.statusCode = 413;
            response.end();
            request.destroy();
            return;
          }
          chunks.push(chunk);
        });
        request.on('end', () => {
          if (response.writableEnded) return;
          const body = Buffer.concat(chunks).toString('utf8');
          (path === EVICTIONS_PATH
            ? this.reviewEviction(body)
            : this.review(body)
          ).then(
            answer => {
              response.setHeader('content-type', 'application/json');
              response.end(JSON.stringify(answer));
            },
            () => {
              response.statusCode = 400;
              response.end();
            },
          );
        });
      },
    );
    // Keep connections open between reviews: the API server sends many.
    server.keepAliveTimeout = 60_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        this.options.port ?? 0,
        this.options.host ?? '0.0.0.0',
        resolve,
      );
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  }

  private async reviewEviction(
    body: string,
  ): Promise<AdmissionReview & { response: object }> {
    const review = JSON.parse(body) as AdmissionReview;
    const request = review.request;
    if (!request?.uid) throw new Error('not an AdmissionReview');
    let response: Record<string, unknown> = { uid: request.uid, allowed: true };
    if (
      this.options.reviewEviction &&
      request.subResource === 'eviction' &&
      request.name
    ) {
      try {
        const verdict = await this.options.reviewEviction({
          namespace: request.namespace ?? '',
          pod: request.name,
          dryRun: request.dryRun ?? false,
        });
        if (!verdict.allowed) {
          response = {
            uid: request.uid,
            allowed: false,
            status: { ...EVICTION_REFUSED, message: verdict.message },
          };
        }
      } catch (error) {
        // An eviction must never hang on Ferry: when in doubt, let it through.
        this.options.onError?.(error);
      }
    }
    return {
      apiVersion: review.apiVersion ?? 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response,
    };
  }

  private async review(
    body: string,
  ): Promise<AdmissionReview & { response: object }> {
    const started = performance.now();
    const review = JSON.parse(body) as AdmissionReview;
    const request = review.request;
    if (!request?.uid) throw new Error('not an AdmissionReview');
    let patch: JsonPatchOperation[] = [];
    let failed = false;
    const warnings: string[] = [];
    if (request.object?.kind === 'Pod' || request.object?.spec) {
      try {
        patch = await this.options.mutatePod(request.object!, {
          namespace:
            request.namespace ?? request.object!.metadata?.namespace ?? '',
          operation: request.operation as PodAdmission['operation'],
          dryRun: request.dryRun ?? false,
        });
      } catch (error) {
        failed = true;
        patch = [];
        warnings.push(
          'ferry: placement was not applied to this pod; see the operator log',
        );
        this.options.onError?.(error);
      }
    }
    const response: Record<string, unknown> = {
      uid: request.uid,
      allowed: true,
    };
    if (patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
    }
    if (warnings.length > 0) response.warnings = warnings;
    this.options.onReview?.({
      durationMs: performance.now() - started,
      patched: patch.length > 0,
      failed,
    });
    return {
      apiVersion: review.apiVersion ?? 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response,
    };
  }
}
