import type { LeaderElectorOptions } from './LeaderElector';

/** How a replica comes to lead: by Lease (`LeaderElector`) or alone (`SoleLeader`). */
export interface Leadership {
  readonly isLeader: boolean;
  /** Leads when it can; resolves once leadership is over (lost, or `stop()`). */
  run(): Promise<void>;
  /** Stops leading and running. */
  stop(): Promise<void>;
}

/**
 * Leadership without election (`leaderElection.enabled: false`): the one
 * replica leads at once, with no Lease to create, renew or lose, until it is
 * stopped. Only sound for a single replica; the chart refuses to render more.
 */
export class SoleLeader implements Leadership {
  private leading?: AbortController;
  private readonly stopping = new AbortController();
  private running?: Promise<void>;

  constructor(
    private readonly options: Pick<
      LeaderElectorOptions,
      'onStartedLeading' | 'onStoppedLeading'
    >,
  ) {}

  get isLeader(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  run(): Promise<void> {
    this.running ??= this.lead();
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async lead(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.leading = new AbortController();
    this.options.onStartedLeading(this.leading.signal);
    await new Promise<void>(resolve =>
      this.stopping.signal.addEventListener('abort', () => resolve(), {
        once: true,
      }),
    );
    this.leading.abort();
    this.options.onStoppedLeading?.();
  }
}
