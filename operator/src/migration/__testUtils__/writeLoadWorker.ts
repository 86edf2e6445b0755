/*
 * The thread a ThreadedWriteLoad runs its WriteLoad in: it answers the owner's
 * requests ({ id, op, args }) with { id, result } or { id, error }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WriteLoad, WriteLoadOptions } from './WriteLoad';
import { appClient } from './clients';

const options = (workerData as { options: WriteLoadOptions }).options;
const load = new WriteLoad(options);

const operations: Record<string, (...args: any[]) => unknown> = {
  start: () => load.start(),
  stop: () => load.stop(),
  close: () => load.close(),
  summary: () => load.summary(),
  latencies: (from: number, to: number) => load.latencies(from, to).toData(),
  lastAckOfIssuedBefore: (t: number) => load.lastAckOfIssuedBefore(t),
  countLostWrites: async (keep: number) => {
    // Read through the same stable address the writes went to, as an application would.
    const client = appClient(options.host, options.port, options.tls);
    try {
      return await load.countLostWrites(client, keep);
    } finally {
      client.disconnect();
    }
  },
};

parentPort!.on('message', async ({ id, op, args }: { id: number; op: string; args: unknown[] }) => {
  try {
    const operation = operations[op];
    if (!operation) throw new Error(`the write load has no operation "${op}"`);
    parentPort!.postMessage({ id, result: await operation(...args) });
  } catch (error) {
    parentPort!.postMessage({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});
