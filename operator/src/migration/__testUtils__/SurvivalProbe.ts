/*
 * What a move keeps besides the data, measured with real clients through the
 * stable address (the list from Loophole Labs' post): connections, pub/sub
 * subscribers on channels and patterns under a steady publisher, clients blocked
 * in BLPOP, BRPOP and XREAD BLOCK while items are pushed, MULTI/EXEC and Lua
 * transactions in flight, keys with a TTL, and the herd of clients that
 * reconnect at once.
 */
import Valkey from 'iovalkey';
import type { ConnectionOptions } from 'node:tls';
import { LatencyHistogram } from './LatencyHistogram';
import { TEST_USERS } from './valkeyMembers';

/** What survived one move, as `bench/results/migration.json` records it per run. */
export interface Survives {
  /** Connections (of `connections`) that never dropped. */
  connectionsKept: number;
  connections: number;
  /** Longest time a dropped connection took to be ready again; null when none dropped. */
  reconnectMs: number | null;
  /** Acknowledged publishes some subscriber never received (summed over subscribers). */
  pubsubLost: number;
  /** Messages subscribers received before, during and after the move (summed). */
  pubsubReceived: { before: number; during: number; after: number };
  /** Acknowledged pushes (and stream entries per reader) that no waiting client got. */
  blockedLost: number;
  /** Items a waiting client got twice, or two clients got. */
  blockedDuplicated: number;
  /** MULTI/EXEC and Lua transactions of which only part is on the server. */
  partialTransactions: number;
  /** Largest difference between a key's remaining time and what it should be; null when keys with a TTL were lost or lost their TTL. */
  ttlDriftMs: number | null;
  /** Most herd clients that reconnected within one second. */
  herdReconnected: number;
  /** p99 latency the herd saw in the first second after the move (or after its first reconnect). */
  herdP99Ms: number;
  /** Herd reads in that second that found no value (a cold store). */
  herdMisses: number;
}

/** How many clients of each kind the probe runs. */
export interface SurvivalProbeOptions {
  host: string;
  port: number;
  tls?: ConnectionOptions;
  /** Names keys and channels, so probes of runs that share a server do not meet. */
  prefix: string;
}

const CHANNEL_SUBSCRIBERS = 3;
const PATTERN_SUBSCRIBERS = 3;
const PUBLISH_EVERY_MS = 5;
const LIST_WAITERS = 2;
const STREAM_READERS = 2;
const PUSH_EVERY_MS = 20;
const TRANSACTION_EVERY_MS = 10;
const TTL_KEYS = 50;
const TTL_MS = 10 * 60_000;
const HERD_CLIENTS = 40;
const HERD_READ_EVERY_MS = 100;
/** The herd's window: reconnects within it count as at once, and its latency is read over it. */
const HERD_WINDOW_MS = 1_000;
/** How long waiting clients get to drain the queues after the pushes stop. */
const DRAIN_MS = 1_500;

type Phase = 'before' | 'during' | 'after';

/** The connection an application holds: reconnects, resends, re-subscribes, follows READONLY. */
function client(options: SurvivalProbeOptions, name: string): Valkey {
  const c = new Valkey({
    host: options.host,
    port: options.port,
    tls: options.tls,
    ...TEST_USERS.app,
    connectionName: name,
    connectTimeout: 1000,
    enableReadyCheck: false,
    maxRetriesPerRequest: null,
    retryStrategy: () => 10,
    reconnectOnError: err => (/READONLY|LOADING|MASTERDOWN|UNBLOCKED/.test(err.message) ? 2 : false),
  });
  c.on('error', () => {});
  return c;
}

/** Runs every kind of client at once around a move and says what survived it. */
export class SurvivalProbe {
  private readonly clients: { c: Valkey; closedAt?: number; readyAt?: number; herd: boolean }[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly loops: Promise<void>[] = [];
  private running = false;
  private moveStart = Infinity;
  private moveEnd = Infinity;
  private readonly published: { seq: number; ackedAt: number }[] = [];
  private readonly received: Set<number>[] = [];
  private readonly receivedAt: Map<number, number>[] = [];
  private readonly pushed = new Set<string>();
  private readonly popped = new Map<string, number>();
  private readonly streamEntries = new Set<string>();
  private readonly streamSeen: Map<string, number>[] = [];
  private transactions = 0;
  private readonly ttlSetAt = new Map<string, number>();
  private readonly herdLatencies: { issuedAt: number; ms: number; miss: boolean }[] = [];
  private seq = 0;

  constructor(private readonly options: SurvivalProbeOptions) {}

  private key(name: string): string {
    return `${this.options.prefix}:${name}`;
  }

  private open(name: string, herd = false): Valkey {
    const c = client(this.options, `${this.options.prefix}-${name}`);
    const entry: { c: Valkey; closedAt?: number; readyAt?: number; herd: boolean } = { c, herd };
    c.on('close', () => {
      if (this.running && entry.closedAt === undefined) entry.closedAt = Date.now();
    });
    c.on('ready', () => {
      if (entry.closedAt !== undefined && entry.readyAt === undefined) entry.readyAt = Date.now();
    });
    this.clients.push(entry);
    return c;
  }

  /** Connects every client, writes the TTL and herd keys, subscribes, and starts publishing and pushing. */
  async start(): Promise<void> {
    const setup = this.open('setup');
    await setup.ping();
    const now = Date.now();
    const pipeline = setup.pipeline();
    for (let i = 0; i < TTL_KEYS; i++) {
      pipeline.set(this.key(`ttl:${i}`), 'v', 'PX', TTL_MS);
      this.ttlSetAt.set(this.key(`ttl:${i}`), now);
    }
    for (let i = 0; i < HERD_CLIENTS; i++) pipeline.set(this.key(`herd:${i}`), 'warm');
    await pipeline.exec();
    this.running = true;

    // Subscribers on a channel and on a pattern that matches it.
    const channel = this.key('events');
    for (let i = 0; i < CHANNEL_SUBSCRIBERS + PATTERN_SUBSCRIBERS; i++) {
      const sub = this.open(`sub${i}`);
      const got = new Set<number>();
      const at = new Map<number, number>();
      this.received.push(got);
      this.receivedAt.push(at);
      const onMessage = (message: string) => {
        const n = Number(message);
        got.add(n);
        if (!at.has(n)) at.set(n, Date.now());
      };
      if (i < CHANNEL_SUBSCRIBERS) {
        sub.on('message', (_ch: string, message: string) => onMessage(message));
        await sub.subscribe(channel);
      } else {
        sub.on('pmessage', (_p: string, _ch: string, message: string) => onMessage(message));
        await sub.psubscribe(`${this.key('ev')}*`);
      }
    }
    const publisher = this.open('pub');
    await publisher.ping();
    this.timers.push(
      setInterval(() => {
        const n = this.seq++;
        publisher.publish(channel, String(n)).then(
          () => this.published.push({ seq: n, ackedAt: Date.now() }),
          () => {},
        );
      }, PUBLISH_EVERY_MS),
    );

    // Clients waiting on lists (BLPOP, BRPOP) and on a stream (XREAD BLOCK).
    const list = this.key('jobs');
    const stream = this.key('stream');
    for (let i = 0; i < LIST_WAITERS; i++) {
      const waiter = this.open(`wait${i}`);
      await waiter.ping();
      this.loops.push(this.waitLoop(waiter, list, i % 2 === 0 ? 'blpop' : 'brpop'));
    }
    for (let i = 0; i < STREAM_READERS; i++) {
      const reader = this.open(`xread${i}`);
      await reader.ping();
      const seen = new Map<string, number>();
      this.streamSeen.push(seen);
      this.loops.push(this.readLoop(reader, stream, seen));
    }
    const pusher = this.open('push');
    await pusher.ping();
    let item = 0;
    this.timers.push(
      setInterval(() => {
        const id = `job-${item++}`;
        pusher.lpush(list, id).then(() => this.pushed.add(id), () => {});
        pusher.xadd(stream, '*', 'id', id).then(entry => entry && this.streamEntries.add(entry), () => {});
      }, PUSH_EVERY_MS),
    );

    // Transactions: MULTI/EXEC and a Lua script, each writing two keys.
    const tx = this.open('tx');
    await tx.ping();
    this.timers.push(
      setInterval(() => {
        const n = this.transactions++;
        tx.multi().set(this.key(`multi:a:${n}`), '1').set(this.key(`multi:b:${n}`), '1').exec().catch(() => {});
        tx.eval(
          "redis.call('SET', KEYS[1], '1'); redis.call('SET', KEYS[2], '1'); return 1",
          2,
          this.key(`lua:a:${n}`),
          this.key(`lua:b:${n}`),
        ).catch(() => {});
      }, TRANSACTION_EVERY_MS),
    );

    // The herd: many mostly idle clients reading now and then.
    for (let i = 0; i < HERD_CLIENTS; i++) {
      const h = this.open(`herd${i}`, true);
      await h.ping();
      const key = this.key(`herd:${i}`);
      this.timers.push(
        setInterval(() => {
          const issuedAt = Date.now();
          h.get(key).then(
            value => this.herdLatencies.push({ issuedAt, ms: Date.now() - issuedAt, miss: value === null }),
            () => {},
          );
        }, HERD_READ_EVERY_MS),
      );
    }
  }

  private async waitLoop(c: Valkey, list: string, command: 'blpop' | 'brpop'): Promise<void> {
    while (this.running) {
      try {
        const got = await c[command](list, 1);
        if (got) this.popped.set(got[1], (this.popped.get(got[1]) ?? 0) + 1);
      } catch {
        // An instance that changes role unblocks its waiters with an error: wait again.
        await new Promise(r => setTimeout(r, 5));
      }
    }
  }

  private async readLoop(c: Valkey, stream: string, seen: Map<string, number>): Promise<void> {
    let last = '0-0';
    while (this.running) {
      try {
        const got = (await c.xread('BLOCK', 1000, 'STREAMS', stream, last)) as
          | [string, [string, string[]][]][]
          | null;
        for (const [, entries] of got ?? []) {
          for (const [id] of entries) {
            seen.set(id, (seen.get(id) ?? 0) + 1);
            last = id;
          }
        }
      } catch {
        await new Promise(r => setTimeout(r, 5));
      }
    }
  }

  /** Marks when the move began (call just before it). */
  moveStarted(at = Date.now()): void {
    this.moveStart = at;
  }

  /** Marks when the move ended (call just after it). */
  moveEnded(at = Date.now()): void {
    this.moveEnd = at;
  }

  private phaseOf(t: number): Phase {
    if (t < this.moveStart) return 'before';
    return t <= this.moveEnd ? 'during' : 'after';
  }

  /** Stops publishing and pushing, lets waiting clients drain, checks the server, and closes everything. */
  async finish(): Promise<Survives> {
    for (const t of this.timers) clearInterval(t);
    await new Promise(r => setTimeout(r, DRAIN_MS));
    this.running = false;
    await Promise.all(this.loops);
    const check = this.open('check');
    await check.ping();

    const received = { before: 0, during: 0, after: 0 };
    let pubsubLost = 0;
    for (const [i, got] of this.received.entries()) {
      for (const p of this.published) {
        if (!got.has(p.seq)) pubsubLost++;
      }
      for (const t of this.receivedAt[i].values()) received[this.phaseOf(t)]++;
    }

    // An item still in the list is not lost: the next waiting client gets it.
    const queued = new Set(await check.lrange(this.key('jobs'), 0, -1));
    let blockedLost = 0;
    let blockedDuplicated = 0;
    for (const id of this.pushed) {
      const times = this.popped.get(id) ?? 0;
      if (times === 0 && !queued.has(id)) blockedLost++;
      if (times > 1 || (times === 1 && queued.has(id))) blockedDuplicated++;
    }
    for (const seen of this.streamSeen) {
      for (const id of this.streamEntries) {
        const times = seen.get(id) ?? 0;
        if (times === 0) blockedLost++;
        if (times > 1) blockedDuplicated++;
      }
    }

    let partialTransactions = 0;
    for (let start = 0; start < this.transactions; start += 250) {
      const ns = Array.from({ length: Math.min(250, this.transactions - start) }, (_, j) => start + j);
      for (const kind of ['multi', 'lua']) {
        const values = await check.mget(
          ...ns.flatMap(n => [this.key(`${kind}:a:${n}`), this.key(`${kind}:b:${n}`)]),
        );
        for (let j = 0; j < ns.length; j++) {
          if ((values[2 * j] === null) !== (values[2 * j + 1] === null)) partialTransactions++;
        }
      }
    }

    let ttlDriftMs: number | null = 0;
    const now = Date.now();
    const ttlKeys = [...this.ttlSetAt.keys()];
    const ttlPipeline = check.pipeline();
    for (const k of ttlKeys) ttlPipeline.pttl(k);
    const ttls = (await ttlPipeline.exec()) ?? [];
    ttlKeys.forEach((k, i) => {
      const remaining = Number(ttls[i]?.[1]);
      if (ttlDriftMs === null || remaining < 0) {
        ttlDriftMs = null; // -2: gone; -1: its expiry was dropped.
        return;
      }
      const expected = TTL_MS - (now - this.ttlSetAt.get(k)!);
      ttlDriftMs = Math.max(ttlDriftMs, Math.abs(remaining - expected));
    });

    const dropped = this.clients.filter(e => e.closedAt !== undefined && e.c !== check);
    const reconnectMs = dropped.length
      ? Math.max(...dropped.map(e => (e.readyAt ?? Date.now()) - e.closedAt!))
      : null;
    const herdReady = this.clients.filter(e => e.herd && e.readyAt !== undefined).map(e => e.readyAt!).sort((a, b) => a - b);
    let herdReconnected = 0;
    for (let i = 0, j = 0; j < herdReady.length; j++) {
      while (herdReady[j] - herdReady[i] > HERD_WINDOW_MS) i++;
      herdReconnected = Math.max(herdReconnected, j - i + 1);
    }
    const herdFrom = herdReady[0] ?? this.moveEnd;
    const herd = new LatencyHistogram();
    let herdMisses = 0;
    for (const l of this.herdLatencies) {
      if (l.issuedAt >= herdFrom && l.issuedAt < herdFrom + HERD_WINDOW_MS) {
        herd.record(l.ms);
        if (l.miss) herdMisses++;
      }
    }

    const connections = this.clients.length - 1;
    for (const e of this.clients) e.c.disconnect();
    return {
      connectionsKept: connections - dropped.length,
      connections,
      reconnectMs,
      pubsubLost,
      pubsubReceived: received,
      blockedLost,
      blockedDuplicated,
      partialTransactions,
      ttlDriftMs,
      herdReconnected,
      herdP99Ms: herd.quantile(0.99),
      herdMisses,
    };
  }

  /** Closes every client without measuring (after a failure). */
  close(): void {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    for (const e of this.clients) e.c.disconnect();
  }
}
