/* A steady, open-loop write load through the stable address, recording what the server acknowledged. */
import Valkey from 'iovalkey';
import type { ConnectionOptions } from 'node:tls';
import { LatencyHistogram } from './LatencyHistogram';
import { TEST_USERS } from './valkeyMembers';

/** Value sizes of a load: every value 1 KiB, or mostly small with some large ones. */
export type ValueMix = '1k' | 'mixed';

/** One acknowledged write that the server no longer holds. */
export interface LostWrite {
  key: string;
  ackedAt: number;
}

/** Options of a load. */
export interface WriteLoadOptions {
  host: string;
  port: number;
  /** Writes per second across all connections. */
  ratePerSec: number;
  connections: number;
  keyPrefix: string;
  /** Give up on one write after this long (the write then counts as not acknowledged). */
  writeTimeoutMs?: number;
  tls?: ConnectionOptions;
  /** Value sizes (default `1k`: every value 1 KiB). */
  values?: ValueMix;
}

const TICK_MS = 5;
/** Latencies are kept per slice of issue time this long, so any window can be read afterwards. */
const SLICE_MS = 10;
/**
 * Writes waiting for an answer beyond this are not issued (counted in `shed`):
 * an outage of seconds at 50,000 writes/s would otherwise queue millions of
 * commands in the client. Far above what a pause of a second leaves waiting.
 */
const MAX_IN_FLIGHT = 100_000;
/** Writes per chunk of the acknowledgement record. */
const CHUNK = 65_536;
/** The mixed load: this share of values is large, the rest small. */
const LARGE_SHARE = 0.05;
const SMALL_BYTES = 100;
const LARGE_BYTES = 16 * 1024;
const ONE_KIB = 1024;

/** What a load did, as plain data (what ThreadedWriteLoad hands across threads). */
export interface WriteLoadSummary {
  issued: number;
  acked: number;
  /** Writes given up on (not acknowledged before their timeout). */
  failed: number;
  shed: number;
  /** Connections that closed at least once. */
  droppedConnections: number;
  /** How late the issuing ticks ran (ms beyond their interval): the load's own stalls. */
  issueLagMs: { p99: number; max: number };
}

/** Acknowledged writes missing from the store: how many, and the first of them. */
export interface LostWrites {
  count: number;
  first: LostWrite[];
}

/** What one slice of issue time saw. */
interface Slice {
  latencies: LatencyHistogram;
  /** Latest acknowledgement of a write issued in the slice (epoch ms). */
  lastAckedAt: number;
}

/**
 * Issues SETs of unique keys at a fixed rate whether or not earlier ones were
 * answered (open loop), so an outage shows up as latency of every write issued
 * during it. A write that errors is retried until acknowledged or timed out;
 * SET of a unique key is idempotent, so retries cannot double-apply.
 *
 * Memory stays flat per write: the value of write n is derived from n, the
 * acknowledgement time is 4 bytes in a typed array, latencies are histograms
 * per 10 ms slice of issue time. Commands are auto-pipelined per connection.
 */
export class WriteLoad {
  readonly clients: Valkey[] = [];
  /** Connections that closed at least once (a reconnect happened). */
  readonly droppedConnections = new Set<number>();
  /** When each connection first closed and when it was ready again (epoch ms). */
  readonly reconnects = new Map<number, { closedAt: number; readyAt?: number }>();
  failed = 0;
  /** Writes not issued because too many waited for an answer. */
  shed = 0;
  /**
   * How late each issuing tick ran beyond its interval (ms). A write is timed from
   * when it was issued, so a stalled event loop shows here, not in the latencies.
   */
  readonly issueLag = new LatencyHistogram();
  private seq = 0;
  private acks = 0;
  private inFlight = 0;
  private startedAt = 0;
  private timer?: NodeJS.Timeout;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  /** Per write: acknowledgement time as ms after start, plus one; 0 = not acknowledged. */
  private readonly ackedAtChunks: Uint32Array[] = [];
  private readonly slices = new Map<number, Slice>();
  private readonly valueCache = new Map<number, string>();

  constructor(private readonly options: WriteLoadOptions) {
    for (let i = 0; i < options.connections; i++) {
      const client = new Valkey({
        host: options.host,
        port: options.port,
        tls: options.tls,
        ...TEST_USERS.app,
        connectTimeout: 1000,
        // The app user may not run INFO (it is in @dangerous).
        enableReadyCheck: false,
        maxRetriesPerRequest: null,
        enableOfflineQueue: true,
        enableAutoPipelining: true,
        retryStrategy: () => 10,
        // A replica's "READONLY" means the primary moved: reconnect and resend.
        reconnectOnError: err => (/READONLY|LOADING|MASTERDOWN/.test(err.message) ? 2 : false),
      });
      client.on('error', () => {});
      client.on('close', () => {
        if (this.stopped) return;
        this.droppedConnections.add(i);
        if (!this.reconnects.has(i)) this.reconnects.set(i, { closedAt: Date.now() });
      });
      client.on('ready', () => {
        const r = this.reconnects.get(i);
        if (r && r.readyAt === undefined) r.readyAt = Date.now();
      });
      this.clients.push(client);
    }
  }

  /** Writes acknowledged so far. */
  get ackedCount(): number {
    return this.acks;
  }

  /** Writes issued so far. */
  get issuedCount(): number {
    return this.seq;
  }

  /** Waits for every connection, then starts writing. */
  async start(): Promise<void> {
    await Promise.all(this.clients.map(c => c.ping()));
    this.startedAt = Date.now();
    let last = this.startedAt;
    let budget = 0;
    // Issue by elapsed time, not by tick count: a late timer on a busy machine
    // issues what it owes instead of lowering the rate.
    this.timer = setInterval(() => {
      const now = Date.now();
      this.issueLag.record(now - last - TICK_MS);
      budget += ((now - last) * this.options.ratePerSec) / 1000;
      last = now;
      while (budget >= 1) {
        budget -= 1;
        if (this.inFlight >= MAX_IN_FLIGHT) {
          this.shed++;
          continue;
        }
        this.issue();
      }
    }, TICK_MS);
  }

  /** The key of write `n`. */
  keyOf(n: number): string {
    return `${this.options.keyPrefix}:${n}`;
  }

  /** The value of write `n`: its number, padded to the size the mix gives it. */
  valueOf(n: number): string {
    const size = this.sizeOf(n);
    let pad = this.valueCache.get(size);
    if (pad === undefined) {
      pad = 'x'.repeat(size);
      this.valueCache.set(size, pad);
    }
    const head = `v${n}:`;
    return head + pad.slice(head.length);
  }

  private sizeOf(n: number): number {
    if (this.options.values !== 'mixed') return ONE_KIB;
    // A fixed pseudo-random pick per write, the same when the value is checked.
    const h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
    return h / 2 ** 32 < LARGE_SHARE ? LARGE_BYTES : SMALL_BYTES;
  }

  private issue(): void {
    const n = this.seq++;
    const key = this.keyOf(n);
    const value = this.valueOf(n);
    const client = this.clients[n % this.clients.length];
    const issuedAt = Date.now();
    const deadline = issuedAt + (this.options.writeTimeoutMs ?? 60_000);
    this.inFlight++;
    const write = (async () => {
      for (;;) {
        try {
          const reply = await client.set(key, value);
          if (reply === 'OK') {
            this.recordAck(n, issuedAt, Date.now());
            return;
          }
        } catch {
          // Not acknowledged; try again below.
        }
        if (Date.now() > deadline || this.stopped) {
          this.failed++;
          return;
        }
        await new Promise(r => setTimeout(r, 5));
      }
    })();
    this.pending.add(write);
    write.finally(() => {
      this.inFlight--;
      this.pending.delete(write);
    });
  }

  private recordAck(n: number, issuedAt: number, ackedAt: number): void {
    this.acks++;
    const chunk = Math.floor(n / CHUNK);
    while (this.ackedAtChunks.length <= chunk) this.ackedAtChunks.push(new Uint32Array(CHUNK));
    this.ackedAtChunks[chunk][n % CHUNK] = ackedAt - this.startedAt + 1;
    const sliceKey = Math.floor(issuedAt / SLICE_MS);
    let slice = this.slices.get(sliceKey);
    if (!slice) {
      slice = { latencies: new LatencyHistogram(), lastAckedAt: 0 };
      this.slices.set(sliceKey, slice);
    }
    slice.latencies.record(ackedAt - issuedAt);
    slice.lastAckedAt = Math.max(slice.lastAckedAt, ackedAt);
  }

  private ackedAtOf(n: number): number | undefined {
    const stored = this.ackedAtChunks[Math.floor(n / CHUNK)]?.[n % CHUNK] ?? 0;
    return stored === 0 ? undefined : this.startedAt + stored - 1;
  }

  /** What the load did so far. */
  summary(): WriteLoadSummary {
    return {
      issued: this.seq,
      acked: this.acks,
      failed: this.failed,
      shed: this.shed,
      droppedConnections: this.droppedConnections.size,
      issueLagMs: { p99: this.issueLag.quantile(0.99), max: this.issueLag.max },
    };
  }

  /** Stops issuing and waits for writes in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.pending]);
    this.stopped = true;
  }

  /** Closes the connections. */
  close(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const c of this.clients) c.disconnect();
  }

  /** Latencies (ms) of acknowledged writes issued in [from, to], to the 10 ms slice. */
  latencies(from = 0, to = Infinity): LatencyHistogram {
    const merged = new LatencyHistogram();
    const [first, last] = [Math.floor(from / SLICE_MS), Math.floor(to / SLICE_MS)];
    for (const [key, slice] of this.slices) {
      if (key >= first && key <= last) merged.merge(slice.latencies);
    }
    return merged;
  }

  /** The latest acknowledgement of a write issued at or before `t` (to the 10 ms slice), or undefined. */
  lastAckOfIssuedBefore(t: number): number | undefined {
    let latest: number | undefined;
    const last = Math.floor(t / SLICE_MS);
    for (const [key, slice] of this.slices) {
      if (key <= last) latest = Math.max(latest ?? 0, slice.lastAckedAt);
    }
    return latest;
  }

  /** Acknowledged writes whose value is not on `client` (read through the stable address). */
  async lostWrites(client: Valkey): Promise<LostWrite[]> {
    return (await this.countLostWrites(client, Infinity)).first;
  }

  /**
   * How many acknowledged writes are not on `client`, keeping only the first
   * `keep` of them (a store that lost everything at 50,000 writes/s would
   * otherwise make millions of records).
   */
  async countLostWrites(client: Valkey, keep = 100): Promise<LostWrites> {
    const lost: LostWrite[] = [];
    let count = 0;
    const BATCH = 500;
    for (let start = 0; start < this.seq; start += BATCH) {
      const ns: number[] = [];
      for (let n = start; n < Math.min(this.seq, start + BATCH); n++) {
        if (this.ackedAtOf(n) !== undefined) ns.push(n);
      }
      if (ns.length === 0) continue;
      const values = await client.mget(...ns.map(n => this.keyOf(n)));
      for (let j = 0; j < ns.length; j++) {
        const n = ns[j];
        if (values[j] === this.valueOf(n)) continue;
        count++;
        if (lost.length < keep) lost.push({ key: this.keyOf(n), ackedAt: this.ackedAtOf(n)! });
      }
    }
    return { count, first: lost };
  }
}
