import {
  Clock,
  systemClock,
  systemTimers,
  Timer,
  Timers,
} from '../../core/clock';

/** What a reconcile may ask for after it succeeds. */
export interface ReconcileResult {
  /** Look at this object again after this long, even if nothing changes. */
  requeueAfterMs?: number;
}

/** Brings one object (by key) to where it should be. */
export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/** How a work queue runs its reconciles. */
export interface WorkQueueOptions {
  reconcile: Reconcile;
  /** Reconciles running at once, over different keys; never two for one key. */
  concurrency?: number;
  /** A failed key is retried after `baseMs`, doubled per consecutive failure up to `maxMs`. */
  retry?: { baseMs: number; maxMs: number };
  /** A reconcile threw; it will be retried after `retryInMs`. */
  onError?: (key: string, error: unknown, retryInMs: number) => void;
  /** What delayed adds wait on, and the clock they are timed by; the wall clock's when left out. */
  timers?: Timers;
  clock?: Clock;
}

/** Retry of a failed reconcile: 5 ms doubling to 1000 s, as client-go's default controller rate limiter. */
export const DEFAULT_RETRY = { baseMs: 5, maxMs: 1_000_000 };
/** Reconciles running at once by default. */
export const DEFAULT_CONCURRENCY = 4;

/**
 * A queue of object keys for a controller, with the guarantees of client-go's
 * workqueue: a key waits in the queue at most once however often it is added,
 * one key is never reconciled twice at the same time (an add during its reconcile
 * runs it again afterwards, with the latest state), and a key whose reconcile
 * fails is retried with exponential back-off until it succeeds.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys waiting to run, whether in the queue or behind their own running reconcile. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** Delayed adds by key: one per key, the earliest asked for (client-go's delaying queue). */
  private readonly waiting = new Map<string, { at: number; timer: Timer }>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly concurrency: number;
  private readonly retry: { baseMs: number; maxMs: number };
  private shuttingDown = false;

  constructor(private readonly options: WorkQueueOptions) {
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** Asks for the key to be reconciled. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) {
      this.queue.push(key);
      this.pump();
    }
  }

  /** Asks for the key to be reconciled after a delay. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    // A key already waiting keeps the earlier time: every requeue of a
    // reconcile would otherwise add a timer of its own, and they multiply.
    const at = (this.options.clock ?? systemClock).now() + delayMs;
    const waiting = this.waiting.get(key);
    if (waiting && waiting.at <= at) return;
    waiting?.timer.cancel();
    const timer = (this.options.timers ?? systemTimers).after(delayMs, () => {
      if (this.waiting.get(key)?.timer === timer) this.waiting.delete(key);
      this.add(key);
    });
    this.waiting.set(key, { at, timer });
  }

  /** Keys waiting to be reconciled. */
  get pending(): number {
    return this.dirty.size;
  }

  /** Consecutive failures of a key's reconcile so far (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Takes no new work, drops pending retries and waits for running reconciles to end. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) timer.cancel();
    this.waiting.clear();
    this.queue.length = 0;
    this.dirty.clear();
    while (this.inFlight.size > 0) {
      await Promise.all([...this.inFlight]);
    }
  }

  private pump(): void {
    while (
      !this.shuttingDown &&
      this.processing.size < this.concurrency &&
      this.queue.length > 0
    ) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      const run = this.run(key).finally(() => {
        this.inFlight.delete(run);
        this.processing.delete(key);
        // Added again while it ran: run it again, now that it has finished.
        if (this.dirty.has(key)) this.queue.push(key);
        this.pump();
      });
      this.inFlight.add(run);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.options.reconcile(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) {
        this.addAfter(key, result.requeueAfterMs);
      }
    } catch (error) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min(
        this.retry.baseMs * 2 ** (failures - 1),
        this.retry.maxMs,
      );
      this.options.onError?.(key, error, delay);
      this.addAfter(key, delay);
    }
  }
}
