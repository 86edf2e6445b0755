/**
 * The interruption-risk model: for each spot pool, the probability that it is
 * interrupted within a horizon (default 20 minutes).
 *
 * A logistic model over features that the operator can know at the time: the
 * Spot Instance Advisor band of the (region, type), the pool's own interruption
 * rate so far (shrunk towards the band with a prior), how recently the pool and
 * other pools of its zone were interrupted (co-interruptions cluster within
 * minutes), how recently the pool came back, a live rebalance recommendation,
 * and the price's recent rise and volatility. The coefficients are learned from
 * the measured traces (`fitRiskCoefficients`); without them the model is the
 * advisor band alone. State is updated online from signals.
 */
import { SPOT_POLICY_DEFAULTS } from '../api/v1alpha1';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const MONTH_MS = 30 * 24 * HOUR_MS;

/** The prediction horizon when a policy does not set one. */
export const DEFAULT_RISK_HORIZON_MS = SPOT_POLICY_DEFAULTS.predictionHorizonMinutes * MINUTE_MS;

/**
 * Monthly interruption frequency of each Spot Instance Advisor band (index 0
 * `<5%` .. 4 `>20%`), at the middle of the band; `>20%` is taken as 25 %.
 */
export const ADVISOR_BAND_MONTHLY_FREQUENCY = [0.025, 0.075, 0.125, 0.175, 0.25] as const;

/** Band assumed when the advisor has no entry (AWS's `global_rate` is `<10%`). */
export const UNKNOWN_ADVISOR_BAND = 1;

/** How fast the memory of a recent interruption, recovery or rebalance fades. */
export const RECENCY_DECAY_MS = 30 * MINUTE_MS;

/** A rebalance recommendation counts for this long. */
export const REBALANCE_VALIDITY_MS = 60 * MINUTE_MS;

/** Weight, in hours of observation, of the band's rate as the prior of a pool's own rate. */
export const PAST_RATE_PRIOR_HOURS = 24;

/** Price window for rise and volatility. */
export const PRICE_WINDOW_MS = 24 * HOUR_MS;

/** Probability of an interruption within the horizon from an advisor band alone. */
export function advisorBandProbability(band: number, horizonMs = DEFAULT_RISK_HORIZON_MS): number {
  const monthly = ADVISOR_BAND_MONTHLY_FREQUENCY[band];
  if (monthly === undefined) {
    throw new Error(`advisor band must be 0..4 (<5% .. >20%), got ${band}`);
  }
  return 1 - Math.pow(1 - monthly, horizonMs / MONTH_MS);
}

/** Probability of at least one event within the horizon at a rate per hour. */
export function probabilityFromRate(ratePerHour: number, horizonMs = DEFAULT_RISK_HORIZON_MS): number {
  return 1 - Math.exp(-ratePerHour * (horizonMs / HOUR_MS));
}

/** Names of the features, in order. */
export const RISK_FEATURES = [
  'bandLogit',
  'pastRateLogit',
  'recentPoolInterruption',
  'recentZoneInterruption',
  'recentRecovery',
  'rebalance',
  'priceRise',
  'priceVolatility',
] as const;

/** Learned weights of the features, and the intercept. */
export interface RiskCoefficients {
  intercept: number;
  weights: number[];
}

/** The untrained model: the advisor band alone. */
export const BAND_ONLY_COEFFICIENTS: RiskCoefficients = {
  intercept: 0,
  weights: [1, 0, 0, 0, 0, 0, 0, 0],
};

/** What the model knows about a pool. */
interface PoolRiskState {
  zone: string;
  band: number;
  firstSeenAt: number;
  interruptions: number;
  lastInterruptionAt?: number;
  lastRecoveryAt?: number;
  lastRebalanceAt?: number;
  prices: { at: number; price: number }[];
}

/** A pool the model tracks. */
export interface RiskPoolDescriptor {
  pool: string;
  zone: string;
  /** Spot Instance Advisor band 0..4 of the pool's (region, type), if known. */
  advisorBand?: number;
}

/** The online risk model over a set of pools. */
export class InterruptionRiskModel {
  private readonly pools = new Map<string, PoolRiskState>();
  private readonly zoneInterruptions = new Map<string, { pool: string; at: number }[]>();

  constructor(
    private readonly coefficients: RiskCoefficients = BAND_ONLY_COEFFICIENTS,
    readonly horizonMs: number = DEFAULT_RISK_HORIZON_MS,
  ) {
    if (coefficients.weights.length !== RISK_FEATURES.length) {
      throw new Error(
        `risk coefficients need ${RISK_FEATURES.length} weights (${RISK_FEATURES.join(', ')}), got ${coefficients.weights.length}`,
      );
    }
  }

  /** Starts tracking a pool from `at`; calling again for a known pool changes nothing. */
  track(descriptor: RiskPoolDescriptor, at: number): void {
    if (this.pools.has(descriptor.pool)) return;
    this.pools.set(descriptor.pool, {
      zone: descriptor.zone,
      band: descriptor.advisorBand ?? UNKNOWN_ADVISOR_BAND,
      firstSeenAt: at,
      interruptions: 0,
      prices: [],
    });
  }

  /** The cloud took capacity back in the pool. */
  recordInterruption(pool: string, at: number): void {
    const state = this.state(pool);
    state.interruptions += 1;
    state.lastInterruptionAt = at;
    let list = this.zoneInterruptions.get(state.zone);
    if (!list) this.zoneInterruptions.set(state.zone, (list = []));
    list.push({ pool, at });
    while (list.length > 0 && at - list[0].at > 4 * RECENCY_DECAY_MS) list.shift();
  }

  /** The pool has capacity again after an interruption. */
  recordRecovery(pool: string, at: number): void {
    this.state(pool).lastRecoveryAt = at;
  }

  /** The cloud recommended rebalancing away from the pool. */
  recordRebalance(pool: string, at: number): void {
    this.state(pool).lastRebalanceAt = at;
  }

  /** The pool's spot price from `at`. */
  recordPrice(pool: string, at: number, price: number): void {
    const state = this.state(pool);
    state.prices.push({ at, price });
    while (state.prices.length > 1 && at - state.prices[1].at > PRICE_WINDOW_MS) state.prices.shift();
  }

  /** The features of a pool at `now`, in the order of `RISK_FEATURES`. */
  features(pool: string, now: number): number[] {
    const s = this.state(pool);
    const bandP = advisorBandProbability(s.band, this.horizonMs);
    const hours = Math.max(0, now - s.firstSeenAt) / HOUR_MS;
    const bandRate = -Math.log(1 - bandP) / (this.horizonMs / HOUR_MS);
    const pastRate = (s.interruptions + bandRate * PAST_RATE_PRIOR_HOURS) / (hours + PAST_RATE_PRIOR_HOURS);
    let zone = 0;
    for (const event of this.zoneInterruptions.get(s.zone) ?? []) {
      if (event.pool !== pool && event.at <= now) zone += decay(now - event.at);
    }
    const { rise, volatility } = priceMovement(s.prices, now);
    return [
      logit(bandP),
      logit(probabilityFromRate(pastRate, this.horizonMs)),
      s.lastInterruptionAt === undefined ? 0 : decay(now - s.lastInterruptionAt),
      Math.min(1, zone),
      s.lastRecoveryAt === undefined ? 0 : decay(now - s.lastRecoveryAt),
      s.lastRebalanceAt !== undefined && now - s.lastRebalanceAt <= REBALANCE_VALIDITY_MS ? 1 : 0,
      rise,
      volatility,
    ];
  }

  /** Probability that the pool is interrupted within the horizon from `now`. */
  risk(pool: string, now: number): number {
    return predict(this.coefficients, this.features(pool, now));
  }

  private state(pool: string): PoolRiskState {
    const state = this.pools.get(pool);
    if (!state) throw new Error(`the risk model does not track pool ${pool}; call track() with its zone and advisor band first`);
    return state;
  }
}

/** The model's probability for a feature vector. */
export function predict(coefficients: RiskCoefficients, features: readonly number[]): number {
  let z = coefficients.intercept;
  for (let i = 0; i < features.length; i++) z += coefficients.weights[i] * features[i];
  return sigmoid(z);
}

/** One labelled observation: the features of a pool at a time, and whether it was interrupted within the horizon. */
export interface RiskSample {
  features: number[];
  interrupted: boolean;
}

/** Training settings; deterministic full-batch gradient descent. */
export interface RiskFitOptions {
  iterations?: number;
  learningRate?: number;
  /** L2 penalty on the weights (not the intercept). */
  l2?: number;
  /**
   * Keep the advisor band as a fixed offset (weight 1) and learn the rest
   * relative to it (default true). Traces cover few bands, so a learned band
   * weight would not carry over to pools of other bands.
   */
  bandAsOffset?: boolean;
}

/**
 * Fits the logistic model by full-batch gradient descent on standardised
 * features (deterministic: no sampling), starting from the band-only model.
 */
export function fitRiskCoefficients(samples: readonly RiskSample[], options: RiskFitOptions = {}): RiskCoefficients {
  const iterations = options.iterations ?? 400;
  const rate = options.learningRate ?? 0.5;
  const l2 = options.l2 ?? 1e-3;
  const bandAsOffset = options.bandAsOffset ?? true;
  const k = RISK_FEATURES.length;
  if (samples.length === 0) return BAND_ONLY_COEFFICIENTS;
  const offset = samples.map(s => (bandAsOffset ? s.features[0] : 0));
  const mean = new Array(k).fill(0);
  const sd = new Array(k).fill(0);
  for (const s of samples) for (let i = 0; i < k; i++) mean[i] += s.features[i] / samples.length;
  for (const s of samples) for (let i = 0; i < k; i++) sd[i] += (s.features[i] - mean[i]) ** 2 / samples.length;
  for (let i = 0; i < k; i++) sd[i] = Math.sqrt(sd[i]) || 1;
  const w = new Array(k).fill(0);
  const positives = samples.filter(s => s.interrupted).length;
  const base = Math.min(Math.max(positives / samples.length, 1e-6), 1 - 1e-6);
  const meanOffset = offset.reduce((a, v) => a + v, 0) / samples.length;
  let b = Math.log(base / (1 - base)) - meanOffset;
  const x = samples.map(s => s.features.map((v, i) => (bandAsOffset && i === 0 ? 0 : (v - mean[i]) / sd[i])));
  const y = samples.map(s => (s.interrupted ? 1 : 0));
  for (let it = 0; it < iterations; it++) {
    const gw = new Array(k).fill(0);
    let gb = 0;
    for (let j = 0; j < x.length; j++) {
      let z = b + offset[j];
      for (let i = 0; i < k; i++) z += w[i] * x[j][i];
      const err = sigmoid(z) - y[j];
      gb += err;
      for (let i = 0; i < k; i++) gw[i] += err * x[j][i];
    }
    b -= (rate * gb) / x.length;
    for (let i = 0; i < k; i++) w[i] -= rate * (gw[i] / x.length + l2 * w[i]);
  }
  // Fold the standardisation back into raw-feature weights.
  const weights = w.map((wi, i) => wi / sd[i]);
  const intercept = b - w.reduce((acc, wi, i) => acc + (wi * mean[i]) / sd[i], 0);
  if (bandAsOffset) weights[0] = 1;
  return { intercept, weights };
}

/** Mean squared error of probabilities against outcomes (lower is better). */
export function brierScore(predictions: readonly number[], outcomes: readonly boolean[]): number {
  if (predictions.length === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < predictions.length; i++) sum += (predictions[i] - (outcomes[i] ? 1 : 0)) ** 2;
  return sum / predictions.length;
}

/** Area under the ROC curve (probability that a positive ranks above a negative; ties count half). */
export function areaUnderRoc(predictions: readonly number[], outcomes: readonly boolean[]): number {
  const order = predictions.map((_, i) => i).sort((a, b) => predictions[a] - predictions[b]);
  let positives = 0;
  let negatives = 0;
  let rankSum = 0;
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && predictions[order[j + 1]] === predictions[order[i]]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (outcomes[order[t]]) {
        positives++;
        rankSum += averageRank;
      } else negatives++;
    }
    i = j + 1;
  }
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

function decay(ageMs: number): number {
  return ageMs < 0 ? 0 : Math.exp(-ageMs / RECENCY_DECAY_MS);
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

function logit(p: number): number {
  const q = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
  return Math.log(q / (1 - q));
}

function priceMovement(prices: readonly { at: number; price: number }[], now: number): { rise: number; volatility: number } {
  const window = prices.filter(p => p.at <= now);
  if (window.length < 2) return { rise: 0, volatility: 0 };
  const values = window.map(p => p.price);
  const min = Math.min(...values);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  return { rise: min > 0 ? values[values.length - 1] / min - 1 : 0, volatility: mean > 0 ? sd / mean : 0 };
}
