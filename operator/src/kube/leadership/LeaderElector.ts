import type { KubeConfig } from '@kubernetes/client-node';
import { Clock, systemClock } from '../../core/clock';
import { apiRequest, isNotFound } from '../client/apiRequest';

/**
 * Timings of leader election, client-go's defaults: a leader that has not renewed
 * for 15 s may be replaced; it gives up itself after failing to renew for 10 s, so
 * it has stopped before anyone else can start; candidates retry every 2 s.
 */
export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};
/** Candidates retry at up to this multiple of the retry period, so they do not move in step. */
const JITTER = 1.2;

/** Who runs for leader, where, and what to do on winning and losing. */
export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  /** Namespace and name of the coordination.k8s.io Lease the candidates share. */
  namespace: string;
  name: string;
  /** This candidate; unique among them (the pod name, for a Deployment). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  /** Became leader; `signal` aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => void;
  /** Leadership ended, by losing the lease or by `stop()`. */
  onStoppedLeading?: () => void;
  /** Someone (perhaps this candidate) was seen holding the lease. */
  onNewLeader?: (identity: string) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

/**
 * A Lease time as the API server wants it (RFC 3339 with microseconds); the
 * millisecond form of `Date.toISOString` is refused.
 */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Lease-based leader election, after client-go's: so that two replicas of the
 * operator can run and only one acts. Expiry is judged by this candidate's own
 * clock from when it last saw the lease change, never by comparing clocks across
 * machines. Updates carry the resourceVersion they read, so two candidates cannot
 * both win one round.
 */
export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly path: string;
  private readonly stopping = new AbortController();
  private observed?: { spec: LeaseSpec; at: number };
  private leading?: AbortController;
  private lastLeader?: string;
  private running?: Promise<void>;

  constructor(private readonly options: LeaderElectorOptions) {
    this.leaseDurationMs =
      options.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs =
      options.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs;
    this.retryPeriodMs =
      options.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new Error(
        'the renew deadline must be shorter than the lease duration, or two leaders could overlap',
      );
    }
    this.clock = options.clock ?? systemClock;
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(
      options.namespace,
    )}/leases`;
  }

  /** True while this candidate holds the lease. */
  get isLeader(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  /**
   * Runs for leader until `stop()`, or until leadership, once won, is lost; a
   * candidate that lost should exit rather than run again, as its work may have
   * been cut off anywhere.
   */
  run(): Promise<void> {
    this.running ??= this.campaign();
    return this.running;
  }

  /** Steps down (releasing the lease so another candidate takes over at once) and stops running. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.running;
  }

  private async campaign(): Promise<void> {
    const stop = this.stopping.signal;
    while (!stop.aborted && !(await this.tryAcquireOrRenew())) {
      await sleep(
        this.retryPeriodMs * (1 + Math.random() * (JITTER - 1)),
        stop,
      );
    }
    if (stop.aborted) return;

    this.leading = new AbortController();
    this.options.onStartedLeading(this.leading.signal);
    let lastRenewal = this.clock.now();
    while (!stop.aborted) {
      await sleep(this.retryPeriodMs, stop);
      if (stop.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenewal = this.clock.now();
      } else if (this.clock.now() - lastRenewal >= this.renewDeadlineMs) {
        break;
      }
    }
    if (stop.aborted) await this.release();
    this.leading.abort();
    this.options.onStoppedLeading?.();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const mine: LeaseSpec = {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    try {
      let current: Lease;
      try {
        current = await apiRequest<Lease>(
          this.options.kubeConfig,
          'GET',
          `${this.path}/${encodeURIComponent(this.options.name)}`,
          { timeoutMs: this.retryPeriodMs },
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
        const created = await apiRequest<Lease>(
          this.options.kubeConfig,
          'POST',
          this.path,
          {
            timeoutMs: this.retryPeriodMs,
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: {
                name: this.options.name,
                namespace: this.options.namespace,
              },
              spec: mine,
            },
          },
        );
        this.observe(created.spec, now);
        return true;
      }

      this.observe(current.spec, now);
      const holder = current.spec.holderIdentity;
      const iHoldIt = holder === this.options.identity;
      if (
        holder &&
        !iHoldIt &&
        this.observed!.at + this.leaseDurationMs > now
      ) {
        return false;
      }
      const next: LeaseSpec = iHoldIt
        ? {
            ...mine,
            acquireTime: current.spec.acquireTime,
            leaseTransitions: current.spec.leaseTransitions ?? 0,
          }
        : {
            ...mine,
            leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1,
          };
      const updated = await apiRequest<Lease>(
        this.options.kubeConfig,
        'PUT',
        `${this.path}/${encodeURIComponent(this.options.name)}`,
        { body: { ...current, spec: next }, timeoutMs: this.retryPeriodMs },
      );
      this.observe(updated.spec, now);
      return true;
    } catch (error) {
      // A conflict means another candidate wrote first; anything else is a failed
      // round too, and the caller's deadlines decide what it costs.
      return false;
    }
  }

  private observe(spec: LeaseSpec, now: number): void {
    const before = this.observed?.spec;
    if (
      !before ||
      before.holderIdentity !== spec.holderIdentity ||
      before.renewTime !== spec.renewTime ||
      before.leaseTransitions !== spec.leaseTransitions
    ) {
      this.observed = { spec, at: now };
    }
    const leader = spec.holderIdentity;
    if (leader && leader !== this.lastLeader) {
      this.lastLeader = leader;
      this.options.onNewLeader?.(leader);
    }
  }

  /** Gives the lease up, if still ours, so the next candidate need not wait for it to expire. */
  private async release(): Promise<void> {
    try {
      const current = await apiRequest<Lease>(
        this.options.kubeConfig,
        'GET',
        `${this.path}/${encodeURIComponent(this.options.name)}`,
      );
      if (current.spec.holderIdentity !== this.options.identity) return;
      const now = this.clock.now();
      await apiRequest(
        this.options.kubeConfig,
        'PUT',
        `${this.path}/${encodeURIComponent(this.options.name)}`,
        {
          body: {
            ...current,
            spec: {
              ...current.spec,
              holderIdentity: '',
              leaseDurationSeconds: 1,
              acquireTime: microTime(now),
              renewTime: microTime(now),
            },
          },
        },
      );
    } catch {
      // Not releasing only makes the next leader wait for the lease to expire.
    }
  }
}
