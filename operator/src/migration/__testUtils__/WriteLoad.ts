/* A steady, open-loop write load through the stable address, recording what the server acknowledged. */
import Valkey from 'iovalkey';
import type { ConnectionOptions } from 'node:tls';
import { TEST_USERS } from './valkeyMembers';

/** One acknowledged write. */
export interface AckedWrite {
  key: string;
  value: string;
  issuedAt: number;
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
}

const TICK_MS = 5;

/**
 * Issues SETs of unique keys at a fixed rate whether or not earlier ones were
 * answered (open loop), so an outage shows up as latency of every write issued
 * during it. A write that errors is retried until acknowledged or timed out;
 * SET of a unique key is idempotent, so retries cannot double-apply.
 */
export class WriteLoad {
  readonly acked: AckedWrite[] = [];
  readonly clients: Valkey[] = [];
  /** Connections that closed at least once (a reconnect happened). */
  readonly droppedConnections = new Set<number>();
  failed = 0;
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;

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
        retryStrategy: () => 10,
        // A replica's "READONLY" means the primary moved: reconnect and resend.
        reconnectOnError: err => (/READONLY|LOADING|MASTERDOWN/.test(err.message) ? 2 : false),
      });
      client.on('error', () => {});
      client.on('close', () => {
        if (!this.stopped) this.droppedConnections.add(i);
      });
      this.clients.push(client);
    }
  }

  /** Waits for every connection, then starts writing. */
  async start(): Promise<void> {
    await Promise.all(this.clients.map(c => c.ping()));
    const perTick = (this.options.ratePerSec * TICK_MS) / 1000;
    let budget = 0;
    this.timer = setInterval(() => {
      budget += perTick;
      while (budget >= 1) {
        budget -= 1;
        this.issue();
      }
    }, TICK_MS);
  }

  private issue(): void {
    const n = this.seq++;
    const key = `${this.options.keyPrefix}:${n}`;
    const value = `v${n}-${Date.now()}`;
    const client = this.clients[n % this.clients.length];
    const issuedAt = Date.now();
    const deadline = issuedAt + (this.options.writeTimeoutMs ?? 60_000);
    const write = (async () => {
      for (;;) {
        try {
          const reply = await client.set(key, value);
          if (reply === 'OK') {
            this.acked.push({ key, value, issuedAt, ackedAt: Date.now() });
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
    write.finally(() => this.pending.delete(write));
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

  /** Latencies (ms) of writes issued in [from, to]. */
  latencies(from = 0, to = Infinity): number[] {
    return this.acked
      .filter(w => w.issuedAt >= from && w.issuedAt <= to)
      .map(w => w.ackedAt - w.issuedAt);
  }

  /** Acknowledged writes whose value is not on `client` (read through the stable address). */
  async lostWrites(client: Valkey): Promise<AckedWrite[]> {
    const lost: AckedWrite[] = [];
    const BATCH = 1000;
    for (let i = 0; i < this.acked.length; i += BATCH) {
      const batch = this.acked.slice(i, i + BATCH);
      const values = await client.mget(...batch.map(w => w.key));
      batch.forEach((w, j) => {
        if (values[j] !== w.value) lost.push(w);
      });
    }
    return lost;
  }
}

/** The q-quantile (0..1) of `values`, or 0 when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}
