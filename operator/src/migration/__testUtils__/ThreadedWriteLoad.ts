/*
 * A WriteLoad in a thread of its own. In the benchmark's thread the load shares
 * one event loop with the driver's polls, the survival probe and the moves'
 * process spawns: a stall there delays the issuing and the acknowledgement
 * timestamps alike, and at 20,000 writes/s and more the latencies measured the
 * bench, not the server's pause. Here the writers' loop does nothing else.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { LatencyHistogram, LatencyHistogramData } from './LatencyHistogram';
import type { LostWrites, WriteLoadOptions, WriteLoadSummary } from './WriteLoad';

/**
 * The thread compiles the worker's TypeScript itself (tsx's CommonJS hook): the
 * benchmark runs under tsx, the unit suites under Jest's transform, and neither
 * reaches into a worker thread.
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);
`;

interface Waiting {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
}

/** The same open-loop load as {@link WriteLoad}, issued and timed on a worker thread. */
export class ThreadedWriteLoad {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  private failure?: Error;

  constructor(readonly options: WriteLoadOptions) {
    this.worker = new Worker(BOOT, {
      eval: true,
      workerData: {
        tsx: require.resolve('tsx/cjs/api'),
        entry: join(__dirname, 'writeLoadWorker.ts'),
        options,
      },
    });
    this.worker.on('message', ({ id, result, error }: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(id);
      if (!w) return;
      this.waiting.delete(id);
      if (error !== undefined) w.reject(new Error(`write load thread: ${error}`));
      else w.resolve(result);
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', code => fail(new Error(`write load thread exited (code ${code})`)));
  }

  /** Waits for every connection, then starts writing. */
  start(): Promise<void> {
    return this.ask('start');
  }

  /** Stops issuing and waits for writes in flight. */
  stop(): Promise<void> {
    return this.ask('stop');
  }

  /** Closes the connections and ends the thread. */
  async close(): Promise<void> {
    if (!this.failure) await this.ask('close').catch(() => {});
    await this.worker.terminate();
  }

  /** What the load did so far. */
  summary(): Promise<WriteLoadSummary> {
    return this.ask('summary');
  }

  /** Latencies (ms) of acknowledged writes issued in [from, to], to the 10 ms slice. */
  async latencies(from = 0, to = Infinity): Promise<LatencyHistogram> {
    return LatencyHistogram.fromData(await this.ask<LatencyHistogramData>('latencies', from, to));
  }

  /** The latest acknowledgement of a write issued at or before `t` (to the 10 ms slice), or undefined. */
  lastAckOfIssuedBefore(t: number): Promise<number | undefined> {
    return this.ask('lastAckOfIssuedBefore', t);
  }

  /** Acknowledged writes missing when read through the load's own address; the first `keep` of them. */
  countLostWrites(keep = 100): Promise<LostWrites> {
    return this.ask('countLostWrites', keep);
  }

  private ask<T>(op: string, ...args: unknown[]): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args });
    });
  }
}
