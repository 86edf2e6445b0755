/**
 * The interruption-risk model: for each spot pool, the probability that it is
 * interrupted within a horizon (default 20 minutes).
 *
 * A logistic model over features that the operator can know at the time and
 * that mean the same in any region and family: the Spot Instance Advisor band
 * of the (region, type), the pool's own interruption rate so far (shrunk
 * towards the band with a prior), how recently the pool and other pools of its
 * zone were interrupted (co-interruptions cluster within minutes), the burst
 * signal of a first reclaim after a quiet spell, the zone's reclaim rate over
 * the last hour, how recently the pool came back, a live rebalance
 * recommendation, and the spot price relative to on-demand. (The price's rise
 * and volatility were dropped: only three traces carry prices, so they fitted
 * one data set.) The coefficients are learned from the measured traces
 * (`fitRiskCoefficients`); without them the model is the advisor band alone.
 * State is updated online from signals.
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

/** A reclaim after this long without one in the pool starts a burst. */
export const BURST_QUIET_MS = 6 * HOUR_MS;

/** Window of a pool's own recent reclaim count. */
export const POOL_COUNT_WINDOW_MS = 6 * HOUR_MS;

/** Window of the zone's reclaim rate. */
export const ZONE_RATE_WINDOW_MS = HOUR_MS;

/** Spot price over on-demand when neither a live price nor the advisor's savings is known (AWS's typical 65 % savings). */
export const TYPICAL_PRICE_TO_ON_DEMAND = 0.35;

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
  'burstStart',
  'zoneRate',
  'priceToOnDemand',
  'logMinutesSinceRecovery',
  'logMinutesSinceRecoverySquared',
  'poolRecentCount',
] as const;

/** Learned weights of the features, and the intercept. */
export interface RiskCoefficients {
  intercept: number;
  weights: number[];
}

/** The untrained model: the advisor band alone. */
export const BAND_ONLY_COEFFICIENTS: RiskCoefficients = {
  intercept: 0,
  weights: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
};

/** What the model knows about a pool. */
interface PoolRiskState {
  zone: string;
  band: number;
  firstSeenAt: number;
  interruptions: number;
  lastInterruptionAt?: number;
  /** The pool's reclaims within `POOL_COUNT_WINDOW_MS` of the last. */
  recentInterruptionsAt: number[];
  /** When the burst that the last reclaim belongs to started, if the last reclaim began one. */
  burstStartedAt?: number;
  lastRecoveryAt?: number;
  lastRebalanceAt?: number;
  onDemandUsdPerHour?: number;
  typicalPriceToOnDemand: number;
  lastPrice?: number;
  lastPriceAt?: number;
}

/** A pool the model tracks. */
export interface RiskPoolDescriptor {
  pool: string;
  zone: string;
  /** Spot Instance Advisor band 0..4 of the pool's (region, type), if known. */
  advisorBand?: number;
  /** The advisor's average savings of spot over on-demand (%), if known. */
  advisorSavingsPct?: number;
  /** On-demand price of the pool's type, if known (with live spot prices, gives their ratio). */
  onDemandUsdPerHour?: number;
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
      recentInterruptionsAt: [],
      onDemandUsdPerHour: descriptor.onDemandUsdPerHour,
      typicalPriceToOnDemand:
        descriptor.advisorSavingsPct === undefined ? TYPICAL_PRICE_TO_ON_DEMAND : 1 - descriptor.advisorSavingsPct / 100,
    });
  }

  /** The cloud took capacity back in the pool. */
  recordInterruption(pool: string, at: number): void {
    const state = this.state(pool);
    state.interruptions += 1;
    if (state.lastInterruptionAt === undefined || at - state.lastInterruptionAt > BURST_QUIET_MS) state.burstStartedAt = at;
    else state.burstStartedAt = undefined;
    state.lastInterruptionAt = at;
    state.recentInterruptionsAt.push(at);
    while (at - state.recentInterruptionsAt[0] > POOL_COUNT_WINDOW_MS) state.recentInterruptionsAt.shift();
    let list = this.zoneInterruptions.get(state.zone);
    if (!list) this.zoneInterruptions.set(state.zone, (list = []));
    list.push({ pool, at });
    while (list.length > 0 && at - list[0].at > Math.max(4 * RECENCY_DECAY_MS, ZONE_RATE_WINDOW_MS)) list.shift();
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
    // Changes can arrive late (a replayed log): an older one does not replace a newer price.
    if (state.lastPriceAt !== undefined && at < state.lastPriceAt) return;
    state.lastPrice = price;
    state.lastPriceAt = at;
  }

  /** The on-demand price of the pool's type: with a live spot price, their ratio replaces the advisor's savings. */
  recordOnDemandPrice(pool: string, price: number): void {
    if (price > 0) this.state(pool).onDemandUsdPerHour = price;
  }

  /** The features of a pool at `now`, in the order of `RISK_FEATURES`. */
  features(pool: string, now: number): number[] {
    const s = this.state(pool);
    const bandP = advisorBandProbability(s.band, this.horizonMs);
    const hours = Math.max(0, now - s.firstSeenAt) / HOUR_MS;
    const bandRate = -Math.log(1 - bandP) / (this.horizonMs / HOUR_MS);
    const pastRate = (s.interruptions + bandRate * PAST_RATE_PRIOR_HOURS) / (hours + PAST_RATE_PRIOR_HOURS);
    let zone = 0;
    let zoneRecent = 0;
    for (const event of this.zoneInterruptions.get(s.zone) ?? []) {
      if (event.pool === pool || event.at > now) continue;
      zone += decay(now - event.at);
      if (now - event.at <= ZONE_RATE_WINDOW_MS) zoneRecent++;
    }
    const sinceRecovery = Math.log1p(Math.max(0, now - (s.lastRecoveryAt ?? s.firstSeenAt)) / MINUTE_MS);
    const priceToOnDemand =
      s.lastPrice !== undefined && s.onDemandUsdPerHour ? s.lastPrice / s.onDemandUsdPerHour : s.typicalPriceToOnDemand;
    return [
      logit(bandP),
      logit(probabilityFromRate(pastRate, this.horizonMs)),
      s.lastInterruptionAt === undefined ? 0 : decay(now - s.lastInterruptionAt),
      Math.min(1, zone),
      s.lastRecoveryAt === undefined ? 0 : decay(now - s.lastRecoveryAt),
      s.lastRebalanceAt !== undefined && now - s.lastRebalanceAt <= REBALANCE_VALIDITY_MS ? 1 : 0,
      s.burstStartedAt === undefined ? 0 : decay(now - s.burstStartedAt),
      Math.log1p(zoneRecent),
      Math.min(2, priceToOnDemand),
      sinceRecovery,
      sinceRecovery ** 2 / 10,
      Math.log1p(s.recentInterruptionsAt.filter(t => t <= now && now - t <= POOL_COUNT_WINDOW_MS).length),
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

/** Training settings; deterministic Newton steps on the whole sample. */
export interface RiskFitOptions {
  /** Newton steps (each a full pass; 12 converge on the traces). */
  iterations?: number;
  /** L2 penalty on the standardised weights (not the intercept), per sample. */
  l2?: number;
  /**
   * Keep the advisor band as a fixed offset (weight 1) and learn the rest
   * relative to it (default true). Traces cover few bands, so a learned band
   * weight would not carry over to pools of other bands.
   */
  bandAsOffset?: boolean;
}

/**
 * Fits the L2-regularised logistic model by Newton's method (iteratively
 * reweighted least squares) on standardised features: deterministic, and a
 * dozen passes where gradient descent took hundreds.
 */
export function fitRiskCoefficients(samples: readonly RiskSample[], options: RiskFitOptions = {}): RiskCoefficients {
  const iterations = options.iterations ?? 12;
  const l2 = options.l2 ?? 1e-3;
  const bandAsOffset = options.bandAsOffset ?? true;
  const k = RISK_FEATURES.length;
  if (samples.length === 0) return BAND_ONLY_COEFFICIENTS;
  const n = samples.length;
  const mean = new Array(k).fill(0);
  const sd = new Array(k).fill(0);
  for (const s of samples) for (let i = 0; i < k; i++) mean[i] += s.features[i] / n;
  for (const s of samples) for (let i = 0; i < k; i++) sd[i] += (s.features[i] - mean[i]) ** 2 / n;
  for (let i = 0; i < k; i++) sd[i] = Math.sqrt(sd[i]) || 1;
  // Parameters: index 0 the intercept, then one per feature (the band's stays 0 when it is an offset).
  const learned = RISK_FEATURES.map((_, i) => !(bandAsOffset && i === 0));
  const m = k + 1;
  const x = new Float64Array(n * m);
  const offset = new Float64Array(n);
  const y = new Float64Array(n);
  samples.forEach((s, j) => {
    x[j * m] = 1;
    for (let i = 0; i < k; i++) x[j * m + 1 + i] = learned[i] && sd[i] > 0 ? (s.features[i] - mean[i]) / sd[i] : 0;
    offset[j] = bandAsOffset ? s.features[0] : 0;
    y[j] = s.interrupted ? 1 : 0;
  });
  const beta = new Array(m).fill(0);
  const positives = y.reduce((a, v) => a + v, 0);
  const base = Math.min(Math.max(positives / n, 1e-6), 1 - 1e-6);
  beta[0] = Math.log(base / (1 - base)) - offset.reduce((a, v) => a + v, 0) / n;
  for (let it = 0; it < iterations; it++) {
    const grad = new Array(m).fill(0);
    const hess = Array.from({ length: m }, () => new Array(m).fill(0));
    for (let j = 0; j < n; j++) {
      let z = offset[j];
      for (let i = 0; i < m; i++) z += beta[i] * x[j * m + i];
      const p = sigmoid(z);
      const w = Math.max(p * (1 - p), 1e-12);
      const err = p - y[j];
      for (let i = 0; i < m; i++) {
        const xi = x[j * m + i];
        if (xi === 0) continue;
        grad[i] += err * xi;
        for (let l = 0; l <= i; l++) hess[i][l] += w * xi * x[j * m + l];
      }
    }
    for (let i = 0; i < m; i++) for (let l = 0; l < i; l++) hess[l][i] = hess[i][l];
    for (let i = 1; i < m; i++) {
      grad[i] += n * l2 * beta[i];
      hess[i][i] += n * l2;
    }
    // A parameter that never varies (a feature constant in the sample) stays 0.
    for (let i = 0; i < m; i++) if (hess[i][i] === 0) hess[i][i] = 1;
    const step = solve(hess, grad);
    let size = 0;
    for (let i = 0; i < m; i++) {
      beta[i] -= step[i];
      size = Math.max(size, Math.abs(step[i]));
    }
    if (size < 1e-8) break;
  }
  // Fold the standardisation back into raw-feature weights.
  const weights = RISK_FEATURES.map((_, i) => (learned[i] ? beta[i + 1] / sd[i] : 0));
  const intercept = beta[0] - RISK_FEATURES.reduce((acc, _, i) => acc + (learned[i] ? (beta[i + 1] * mean[i]) / sd[i] : 0), 0);
  if (bandAsOffset) weights[0] = 1;
  return { intercept, weights };
}

/** Solves a small symmetric positive-definite system by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[pivot][c])) pivot = r;
    [m[c], m[pivot]] = [m[pivot], m[c]];
    const d = m[c][c] || 1e-12;
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / d;
      if (f === 0) continue;
      for (let l = c; l <= n; l++) m[r][l] -= f * m[c][l];
    }
  }
  const out = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let v = m[r][n];
    for (let l = r + 1; l < n; l++) v -= m[r][l] * out[l];
    out[r] = v / (m[r][r] || 1e-12);
  }
  return out;
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
