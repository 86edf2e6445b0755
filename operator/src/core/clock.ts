/** Time as the operator sees it; injected so decisions are deterministic in tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that runs `speedup` times faster than the wall clock from `start`. */
export class AcceleratedClock implements Clock {
  private readonly wallStart: number;

  constructor(
    private readonly start: number,
    private readonly speedup: number,
    private readonly wall: Clock = systemClock,
  ) {
    this.wallStart = wall.now();
  }

  now(): number {
    return this.start + (this.wall.now() - this.wallStart) * this.speedup;
  }
}

/** A clock that moves only when told; for tests. */
export class ManualClock implements Clock {
  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }
}

/** A timer set on {@link Timers}; `cancel` keeps it from firing. */
export interface Timer {
  cancel(): void;
}

/**
 * Timers that fire on a clock's time, as k8s.io/utils/clock's `Clock` has
 * `AfterFunc` beside `Now`: the controllers wait through them, so that demo mode
 * can run them on simulated time ({@link VirtualClock}) and a cluster on the
 * wall clock ({@link systemTimers}).
 */
export interface Timers {
  /** Calls `callback` once `ms` have passed. */
  after(ms: number, callback: () => void): Timer;
}

/** Timers on the wall clock. */
export const systemTimers: Timers = {
  after(ms, callback) {
    const timer = setTimeout(callback, ms);
    return { cancel: () => clearTimeout(timer) };
  },
};

/** Waits `ms` on `timers`, or rejects when `signal` aborts. */
export function sleepOn(
  timers: Timers,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    let timer: Timer | undefined = undefined;
    const onAbort = () => {
      timer?.cancel();
      reject(signal?.reason ?? new Error('aborted'));
    };
    timer = timers.after(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Turns of the event loop a {@link VirtualClock} lets pass for the work a timer started before it jumps again. */
const SETTLE_TURNS = 3;

interface DueTimer {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/**
 * Simulated time for demo mode: a clock whose timers fire in time order on its
 * own time. `runUntil` replays a stretch at once: it fires the next timer, lets
 * the work that timer started settle (a few turns of the event loop: the demo's
 * ports are in memory, so that work is promises and immediates), and jumps to
 * the timer after, so a month with nothing to do between two timers takes no
 * longer than its timers' work. `runLive` then follows the wall clock `speedup`
 * times faster, firing each timer when the simulated time reaches it.
 */
export class VirtualClock implements Clock, Timers {
  /** Timers not yet fired, in firing order. */
  private readonly due: DueTimer[] = [];
  private seq = 0;
  private running = false;
  private live?: {
    wallStart: number;
    start: number;
    speedup: number;
    stepWallMs: number;
    wake?: NodeJS.Timeout;
  };

  constructor(
    private time: number,
    private readonly wall: Clock = systemClock,
  ) {}

  now(): number {
    return this.time;
  }

  after(ms: number, callback: () => void): Timer {
    const timer: DueTimer = {
      at: this.time + Math.max(0, ms),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    // Insert after every timer due no later: equal times fire in the order set.
    let lo = 0;
    let hi = this.due.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.due[mid].at <= timer.at) lo = mid + 1;
      else hi = mid;
    }
    this.due.splice(lo, 0, timer);
    return {
      cancel: () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        const i = this.due.indexOf(timer);
        if (i >= 0) this.due.splice(i, 1);
      },
    };
  }

  /** Timers set and not yet fired. */
  get pending(): number {
    return this.due.length;
  }

  /** When the next timer fires; undefined when none is set. */
  get nextAt(): number | undefined {
    return this.due[0]?.at;
  }

  /**
   * Fires every timer due up to `until` in time order, letting the work each
   * starts settle before the clock jumps to the next, and ends at `until`.
   */
  async runUntil(until: number): Promise<void> {
    if (this.live) throw new Error('the clock runs live; stop it first');
    if (this.running) throw new Error('the clock is already running');
    this.running = true;
    try {
      await settle();
      await this.fireUntil(until);
      this.time = Math.max(this.time, until);
    } finally {
      this.running = false;
    }
  }

  private async fireUntil(until: number): Promise<void> {
    for (;;) {
      const next = this.due[0];
      if (!next || next.at > until) return;
      this.due.shift();
      this.time = Math.max(this.time, next.at);
      next.callback();
      await settle();
    }
  }

  /**
   * Runs on from now at `speedup` times the wall clock: every `stepWallMs` of
   * wall time the simulated time moves on and the timers due by then fire.
   */
  runLive(speedup: number, stepWallMs = 100): void {
    if (!(speedup > 0)) throw new Error(`speedup must be positive, got ${speedup}`);
    if (this.live) return;
    this.live = {
      wallStart: this.wall.now(),
      start: this.time,
      speedup,
      stepWallMs,
    };
    this.step();
  }

  /** True while the clock follows the wall clock (`runLive`). */
  get isLive(): boolean {
    return this.live !== undefined;
  }

  /** Stops following the wall clock; the time stays where it is. */
  stopLive(): void {
    if (this.live?.wake) clearTimeout(this.live.wake);
    this.live = undefined;
  }

  private step(): void {
    const live = this.live;
    if (!live) return;
    const target =
      live.start + (this.wall.now() - live.wallStart) * live.speedup;
    this.running = true;
    this.fireUntil(target)
      .then(() => {
        this.time = Math.max(this.time, target);
      })
      .finally(() => {
        this.running = false;
        if (this.live !== live) return;
        live.wake = setTimeout(() => this.step(), live.stepWallMs);
        live.wake.unref?.();
      });
  }
}

/** Lets promise chains and immediates started by a timer run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) {
    await new Promise(resolve => setImmediate(resolve));
  }
}
