import { sleepOn, VirtualClock } from './clock';

const T0 = Date.parse('2026-12-01T00:00:00Z');

describe('VirtualClock', () => {
  it('fires timers in time order, each at its own time, and ends at the time asked for', async () => {
    const clock = new VirtualClock(T0);
    const fired: [string, number][] = [];
    clock.after(3_000, () => fired.push(['c', clock.now()]));
    clock.after(1_000, () => fired.push(['a', clock.now()]));
    clock.after(1_000, () => fired.push(['b', clock.now()]));
    clock.after(10_000, () => fired.push(['late', clock.now()]));
    await clock.runUntil(T0 + 5_000);
    expect(fired).toEqual([
      ['a', T0 + 1_000],
      ['b', T0 + 1_000],
      ['c', T0 + 3_000],
    ]);
    expect(clock.now()).toBe(T0 + 5_000);
    expect(clock.pending).toBe(1);
    expect(clock.nextAt).toBe(T0 + 10_000);
  });

  it('jumps over a month with nothing to do at once, and lets the work a timer starts settle before the next', async () => {
    const clock = new VirtualClock(T0);
    const seen: number[] = [];
    // Work that chains promises and an immediate, as a reconcile on in-memory ports does.
    const work = async () => {
      await Promise.resolve();
      await new Promise(resolve => setImmediate(resolve));
      seen.push(clock.now());
      if (seen.length < 3) clock.after(24 * 3_600_000, () => void work());
    };
    clock.after(60_000, () => void work());
    const started = Date.now();
    await clock.runUntil(T0 + 30 * 24 * 3_600_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(seen).toEqual([
      T0 + 60_000,
      T0 + 60_000 + 24 * 3_600_000,
      T0 + 60_000 + 48 * 3_600_000,
    ]);
  });

  it('does not fire a cancelled timer, and sleepOn wakes on it or rejects on abort', async () => {
    const clock = new VirtualClock(T0);
    let fired = false;
    clock.after(1_000, () => (fired = true)).cancel();
    const woke = sleepOn(clock, 2_000).then(() => clock.now());
    const abort = new AbortController();
    const aborted = sleepOn(clock, 3_000, abort.signal).then(
      () => 'woke',
      () => 'aborted',
    );
    abort.abort();
    await clock.runUntil(T0 + 5_000);
    expect(fired).toBe(false);
    expect(await woke).toBe(T0 + 2_000);
    expect(await aborted).toBe('aborted');
    expect(clock.pending).toBe(0);
  });

  it('runs live at its speed-up from where it stands, and refuses to be run by hand meanwhile', async () => {
    let wall = 1_000_000;
    const clock = new VirtualClock(T0, { now: () => wall });
    const fired: number[] = [];
    clock.after(30_000, () => fired.push(clock.now()));
    clock.runLive(60, 5);
    expect(clock.isLive).toBe(true);
    await expect(clock.runUntil(T0 + 1)).rejects.toThrow(/live/);
    // A wall second is a simulated minute: the timer is due half a wall second in.
    wall += 400;
    await new Promise(resolve => setTimeout(resolve, 30));
    expect(fired).toEqual([]);
    wall += 200;
    await new Promise(resolve => setTimeout(resolve, 30));
    expect(fired).toEqual([T0 + 30_000]);
    expect(clock.now()).toBe(T0 + 36_000);
    clock.stopLive();
    expect(clock.isLive).toBe(false);
  });
});
