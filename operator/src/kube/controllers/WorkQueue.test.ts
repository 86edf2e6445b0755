import { VirtualClock } from '../../core/clock';
import { WorkQueue } from './WorkQueue';

/** A promise and the function that settles it. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>(r => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise(resolve => setImmediate(resolve));

async function until(condition: () => boolean, timeoutMs = 2_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise(resolve => setTimeout(resolve, 1));
  }
}

describe('WorkQueue', () => {
  it('keeps one delayed add per key, the earliest: requeues of reconciles that changes start do not multiply', async () => {
    const clock = new VirtualClock(0);
    const runs: number[] = [];
    const queue = new WorkQueue({
      clock,
      timers: clock,
      // Every reconcile asks to look again in a minute, as a status refresh does.
      reconcile: async () => {
        runs.push(clock.now());
        return { requeueAfterMs: 60_000 };
      },
    });
    // Changes start a reconcile at 0, 10 s and 20 s: three requeues asked for.
    queue.add('policy');
    await clock.runUntil(10_000);
    queue.add('policy');
    await clock.runUntil(20_000);
    queue.add('policy');
    await clock.runUntil(20_000 + 5 * 60_000);
    // The first requeue (60 s) stands; one run a minute from there, not three.
    expect(runs).toEqual([
      0, 10_000, 20_000, 60_000, 120_000, 180_000, 240_000, 300_000,
    ]);
    expect(clock.pending).toBe(1);
    // An earlier delay replaces a later one.
    queue.addAfter('policy', 1_000);
    await clock.runUntil(clock.now() + 1_000);
    expect(runs[runs.length - 1]).toBe(321_000);
    expect(clock.pending).toBe(1);
    await queue.shutdown();
    expect(clock.pending).toBe(0);
  });

  it('reconciles a key added many times while it waits once', async () => {
    const seen: string[] = [];
    const gate = deferred();
    const queue = new WorkQueue({
      concurrency: 1,
      reconcile: async key => {
        if (key === 'blocker') await gate.promise;
        seen.push(key);
      },
    });
    queue.add('blocker');
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.pending).toBe(2);
    gate.resolve();
    await until(() => seen.length === 3);
    await tick();
    expect(seen).toEqual(['blocker', 'a', 'b']);
    await queue.shutdown();
  });

  it('never runs two reconciles of one key at once, and runs it again after an add during it', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const gates = [deferred(), deferred()];
    const queue = new WorkQueue({
      concurrency: 4,
      reconcile: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gates[runs++].promise;
        running--;
      },
    });
    queue.add('x');
    await tick();
    queue.add('x');
    queue.add('x');
    await tick();
    expect(runs).toBe(1);
    gates[0].resolve();
    await until(() => runs === 2);
    gates[1].resolve();
    await queue.shutdown();
    expect(maxRunning).toBe(1);
    expect(runs).toBe(2);
  });

  it('runs different keys side by side up to its concurrency', async () => {
    let running = 0;
    let maxRunning = 0;
    const gate = deferred();
    const queue = new WorkQueue({
      concurrency: 2,
      reconcile: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gate.promise;
        running--;
      },
    });
    ['a', 'b', 'c', 'd'].forEach(key => queue.add(key));
    await tick();
    expect(running).toBe(2);
    gate.resolve();
    await until(() => queue.pending === 0 && running === 0);
    expect(maxRunning).toBe(2);
    await queue.shutdown();
  });

  it('retries a failing key with doubling back-off and forgets its failures on success', async () => {
    const attempts: number[] = [];
    const delays: number[] = [];
    const queue = new WorkQueue({
      retry: { baseMs: 5, maxMs: 20 },
      onError: (_key, _error, retryInMs) => delays.push(retryInMs),
      reconcile: async () => {
        attempts.push(Date.now());
        if (attempts.length < 5) throw new Error('not yet');
      },
    });
    queue.add('flaky');
    await until(() => attempts.length === 5);
    await tick();
    expect(delays).toEqual([5, 10, 20, 20]);
    expect(queue.failuresOf('flaky')).toBe(0);
    await queue.shutdown();
  });

  it('requeues a key when its reconcile asks to look again later', async () => {
    let runs = 0;
    const queue = new WorkQueue({
      reconcile: async () => {
        runs++;
        return runs < 3 ? { requeueAfterMs: 1 } : undefined;
      },
    });
    queue.add('periodic');
    await until(() => runs === 3);
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(runs).toBe(3);
    await queue.shutdown();
  });

  it('waits for running reconciles on shutdown and takes no new work', async () => {
    const gate = deferred();
    let finished = false;
    const queue = new WorkQueue({
      reconcile: async key => {
        if (key === 'slow') {
          await gate.promise;
          finished = true;
        }
      },
    });
    queue.add('slow');
    await tick();
    const stopped = queue.shutdown();
    queue.add('late');
    expect(queue.pending).toBe(0);
    gate.resolve();
    await stopped;
    expect(finished).toBe(true);
  });
});
