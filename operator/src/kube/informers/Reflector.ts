import { KubeConfig, Watch } from '@kubernetes/client-node';
import {
  KubeApiError,
  ResourceType,
  apiRequest,
  collectionPath,
} from '../client/apiRequest';

/** The least an object needs for the reflector to track it. */
export interface KubeObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
  };
}

/** A change of the reflector's picture of the cluster. */
export interface ObjectEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: T;
}

/** Why the reflector listed the collection again instead of watching on. */
export type ListReason = 'initial' | 'expired' | 'error';

/** What to reflect and where to report. */
export interface ReflectorOptions<T> {
  kubeConfig: KubeConfig;
  type: ResourceType;
  /** One namespace, or every namespace when left out. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Every change, in order, after the cache holds it. */
  onChange?: (event: ObjectEvent<T>) => void;
  /** Each full list, with why it happened. */
  onList?: (reason: ListReason, objects: number) => void;
  /** A failed list or watch; the reflector retries by itself. */
  onError?: (error: Error) => void;
  /**
   * How long the server keeps one watch open. The reflector then watches on from
   * the last resourceVersion it saw, without listing.
   */
  watchTimeoutSeconds?: number;
}

/** How long the server keeps a watch open by default: 5 minutes, as client-go's reflector. */
export const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** Page size of a list; a large cluster is listed in pages rather than in one answer. */
const LIST_PAGE_SIZE = 500;
/** Back-off after a failed list or watch, doubled up to the maximum. */
const RETRY_INITIAL_MS = 200;
const RETRY_MAX_MS = 30_000;
/** A watch the server ends sooner than this is treated as a failure, so a flapping server is not hammered. */
const MIN_WATCH_MS = 1_000;

/**
 * The object as the cache keeps it: without `metadata.managedFields`, which
 * nothing in Ferry reads and which is a large share of each pod and node (a
 * kubelet's or kwok's status writes each leave an entry); on a cluster of
 * 50,000 pods they were memory for nothing.
 */
function cacheable<T>(object: T): T {
  const metadata = (object as { metadata?: { managedFields?: unknown } })
    ?.metadata;
  if (metadata?.managedFields !== undefined) delete metadata.managedFields;
  return object;
}

/** The cache key of an object: `namespace/name`, or `name` for a cluster-scoped one. */
export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}

/**
 * Keeps an in-memory copy of a collection: lists it once, then watches from the
 * list's resourceVersion, watching on from the last seen version whenever a watch
 * ends. Only when the server says that version has expired (410 Gone) does it list
 * again, and then it reports the difference: what appeared, changed and vanished
 * while it was not watching.
 */
export class Reflector<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly watch: Watch;
  private lastResourceVersion = '';
  private abort?: AbortController;
  private retryTimer?: NodeJS.Timeout;
  private retryMs = RETRY_INITIAL_MS;
  private running = false;
  private hasSynced = false;
  private changes = 0;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.watch = new Watch(options.kubeConfig);
  }

  /** Starts reflecting; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.listAll('initial');
    this.startWatch();
  }

  /** Stops watching; the cache keeps what it last held. */
  stop(): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
    this.abort = undefined;
  }

  /** True once the first list is in the cache. */
  get synced(): boolean {
    return this.hasSynced;
  }

  /**
   * Counts the cache's changes: while it stays the same, so does `list()`, and
   * what was derived from it may be reused.
   */
  get generation(): number {
    return this.changes;
  }

  /** The resourceVersion the cache is current to. */
  get resourceVersion(): string {
    return this.lastResourceVersion;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  private async listAll(reason: ListReason): Promise<void> {
    const path = collectionPath(this.options.type, this.options.namespace);
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await apiRequest<{
        metadata: { resourceVersion: string; continue?: string };
        items: T[];
      }>(this.options.kubeConfig, 'GET', path, {
        query: {
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          limit: LIST_PAGE_SIZE,
          continue: continueToken,
        },
      });
      // Items of a list carry no kind; give them the one a watch would.
      for (const item of page.items) {
        fresh.set(objectKey(item), {
          apiVersion: this.options.type.apiVersion,
          kind: this.options.type.kind,
          ...cacheable(item),
        });
      }
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);

    const events: ObjectEvent<T>[] = [];
    for (const [key, object] of this.cache) {
      if (!fresh.has(key)) events.push({ type: 'DELETED', object });
    }
    for (const [key, object] of fresh) {
      const known = this.cache.get(key);
      if (!known) {
        events.push({ type: 'ADDED', object });
      } else if (
        known.metadata?.resourceVersion !== object.metadata?.resourceVersion
      ) {
        events.push({ type: 'MODIFIED', object });
      }
    }
    this.cache.clear();
    for (const [key, object] of fresh) this.cache.set(key, object);
    this.changes++;
    this.lastResourceVersion = resourceVersion;
    this.hasSynced = true;
    this.options.onList?.(reason, fresh.size);
    for (const event of events) this.options.onChange?.(event);
  }

  private startWatch(): void {
    if (!this.running) return;
    const path = collectionPath(this.options.type, this.options.namespace);
    let expired = false;
    const startedAt = Date.now();
    const watchedFrom = this.lastResourceVersion;
    this.watch
      .watch(
        path,
        {
          resourceVersion: watchedFrom,
          allowWatchBookmarks: true,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          timeoutSeconds:
            this.options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS,
        },
        (type: string, object: any) => {
          if (!this.running || expired) return;
          if (type === 'ERROR') {
            // A Status object: 410 means our resourceVersion is older than the
            // server keeps history for; nothing but a new list can catch up.
            if (object?.code === 410) {
              expired = true;
            } else {
              this.options.onError?.(
                new KubeApiError(
                  object?.code ?? 0,
                  object?.reason ?? 'Unknown',
                  `watch ${path}: ${object?.message ?? 'error event'}`,
                ),
              );
            }
            return;
          }
          this.retryMs = RETRY_INITIAL_MS;
          const version = object?.metadata?.resourceVersion;
          if (version) this.lastResourceVersion = version;
          if (type === 'BOOKMARK') return;
          cacheable(object);
          const key = objectKey(object);
          if (type === 'DELETED') {
            this.cache.delete(key);
          } else {
            this.cache.set(key, object);
          }
          this.changes++;
          this.options.onChange?.({
            type: type as ObjectEvent<T>['type'],
            object,
          });
        },
        (error: any) => this.watchEnded(error, expired, startedAt),
      )
      .then(
        controller => {
          if (this.running) this.abort = controller;
          else controller.abort();
        },
        error => this.watchEnded(error, expired, startedAt),
      );
  }

  private watchEnded(error: any, expired: boolean, startedAt: number): void {
    if (!this.running) return;
    if (expired || error?.statusCode === 410) {
      this.relist('expired');
      return;
    }
    if (error && error.name !== 'AbortError') {
      this.options.onError?.(error);
      this.retryLater(() => this.startWatch());
      return;
    }
    // The server closed the watch at its timeout: watch on from where we are.
    if (Date.now() - startedAt < MIN_WATCH_MS) {
      this.retryLater(() => this.startWatch());
    } else {
      this.startWatch();
    }
  }

  private relist(reason: ListReason): void {
    this.listAll(reason).then(
      () => {
        this.retryMs = RETRY_INITIAL_MS;
        this.startWatch();
      },
      error => {
        this.options.onError?.(error);
        this.retryLater(() => this.relist('error'));
      },
    );
  }

  private retryLater(retry: () => void): void {
    if (!this.running) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(retry, delay);
  }
}
