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
