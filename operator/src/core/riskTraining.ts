/**
 * Turning measured spot traces into labelled observations for the risk model,
 * replayed in time order through the same online model the operator runs, so
 * that every feature is what the operator could have known at that moment.
 */
import { InterruptionRiskModel, RiskSample } from './risk';

/** One pool's measured history: capacity unavailable (preempted) or not, per tick. */
export interface PoolHistory {
  pool: string;
  zone: string;
  advisorBand?: number;
  /** The advisor's average savings over on-demand (%), if known. */
  advisorSavingsPct?: number;
  /** On-demand price of the pool's type, if known. */
  onDemandUsdPerHour?: number;
  startAt: number;
  tickMs: number;
  unavailable: readonly boolean[];
  /** Spot price changes (USD/h) seen for the pool, in time order. */
  prices?: readonly { at: number; price: number }[];
}

/** An observation with where and when it was taken. */
export interface TimedRiskSample extends RiskSample {
  pool: string;
  at: number;
  /** True when it lies in the held-back final share of its pool's time range. */
  heldOut: boolean;
}

/** How to sample. */
export interface RiskSamplingOptions {
  horizonMs: number;
  /** One observation per running pool every this often. */
  sampleEveryMs: number;
  /** Final share of each pool's time range held back for evaluation (0..1). */
  heldOutShare: number;
}

/** An interruption: the pool goes from available to unavailable. */
export interface PoolInterruptionAt {
  pool: string;
  at: number;
}

/** Interruptions and recoveries of a history, in time order. */
export function transitionsOf(history: PoolHistory): { interruptions: number[]; recoveries: number[] } {
  const interruptions: number[] = [];
  const recoveries: number[] = [];
  for (let k = 1; k < history.unavailable.length; k++) {
    const at = history.startAt + k * history.tickMs;
    if (history.unavailable[k] && !history.unavailable[k - 1]) interruptions.push(at);
    if (!history.unavailable[k] && history.unavailable[k - 1]) recoveries.push(at);
  }
  return { interruptions, recoveries };
}

type TimelineEvent =
  | { at: number; order: 0; kind: 'price'; pool: string; price: number }
  | { at: number; order: 1; kind: 'interruption' | 'recovery'; pool: string }
  | { at: number; order: 2; kind: 'sample'; pool: string; heldOut: boolean; interrupted: boolean };

/** Replays the histories together (pools of one zone interact) and returns an observation per running pool per sampling interval. */
export function buildRiskSamples(histories: readonly PoolHistory[], options: RiskSamplingOptions): TimedRiskSample[] {
  const model = new InterruptionRiskModel(undefined, options.horizonMs);
  const events: TimelineEvent[] = [];
  for (const h of histories) {
    model.track({ pool: h.pool, zone: h.zone, advisorBand: h.advisorBand, advisorSavingsPct: h.advisorSavingsPct, onDemandUsdPerHour: h.onDemandUsdPerHour }, h.startAt);
    const { interruptions, recoveries } = transitionsOf(h);
    for (const at of interruptions) events.push({ at, order: 1, kind: 'interruption', pool: h.pool });
    for (const at of recoveries) events.push({ at, order: 1, kind: 'recovery', pool: h.pool });
    for (const p of h.prices ?? []) events.push({ at: p.at, order: 0, kind: 'price', pool: h.pool, price: p.price });
    const endAt = h.startAt + h.unavailable.length * h.tickMs;
    const splitAt = h.startAt + (1 - options.heldOutShare) * (endAt - h.startAt);
    let next = 0;
    for (let t = h.startAt + options.sampleEveryMs; t + options.horizonMs <= endAt; t += options.sampleEveryMs) {
      const tick = Math.floor((t - h.startAt) / h.tickMs);
      if (h.unavailable[tick]) continue;
      while (next < interruptions.length && interruptions[next] <= t) next++;
      const interrupted = next < interruptions.length && interruptions[next] <= t + options.horizonMs;
      events.push({ at: t, order: 2, kind: 'sample', pool: h.pool, heldOut: t >= splitAt, interrupted });
    }
  }
  events.sort((a, b) => a.at - b.at || a.order - b.order);
  const samples: TimedRiskSample[] = [];
  for (const e of events) {
    if (e.kind === 'price') model.recordPrice(e.pool, e.at, e.price);
    else if (e.kind === 'interruption') model.recordInterruption(e.pool, e.at);
    else if (e.kind === 'recovery') model.recordRecovery(e.pool, e.at);
    else if (e.kind === 'sample') samples.push({ pool: e.pool, at: e.at, heldOut: e.heldOut, interrupted: e.interrupted, features: model.features(e.pool, e.at) });
  }
  return samples;
}
