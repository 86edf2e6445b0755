/**
 * Evaluates the interruption-risk model where it has to work: on regions and
 * periods it was not fitted on. For each horizon (5, 20 and 60 min) and each
 * split (leave one region out, leave one measurement period out), the model is
 * fitted on the other traces and scored on the held-out ones: AUC, Brier,
 * calibration error and a reliability curve, each beside the two naive
 * baselines scored on the same observations (the advisor band alone, and the
 * pool's own rate so far). The shipped coefficients are then fitted on all the
 * traces (the splits are how that feature set and fit were chosen) and scored
 * on them.
 *
 * `--model shipped` fits nothing: it scores the coefficients the operator ships
 * on the given traces (`--trace`, files it never saw), at the horizon they are
 * for (20 min). The top-level `auc`, `brier` and `baselines` are the 20-min
 * figures on the evaluated observations: the held-out splits pooled (leave one
 * region out) by default, every observation of the files with `--model shipped`.
 *
 *   npm run bench -- risk [--trace <json|dir>]... [--prices <csv>]... [--advisor <csv>] [--on-demand <csv>]
 *                         [--model fit|shipped] [--horizons 5,20,60]
 *
 * By default: every single-node trace in ../shared/data/skypilot_spot_traces.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadTraces } from '../src/cloud/marketFiles';
import { AdvisorEntry, parseOnDemandPrices, parseSpotAdvisor, parseSpotPriceHistory, regionOfZone, SpotTrace } from '../src/cloud/marketData';
import {
  advisorBandProbability,
  areaUnderRoc,
  brierScore,
  fitRiskCoefficients,
  predict,
  probabilityFromRate,
  RiskCoefficients,
  RISK_FEATURES,
  UNKNOWN_ADVISOR_BAND,
} from '../src/core/risk';
import { buildRiskSamples, PoolHistory, TimedRiskSample, transitionsOf } from '../src/core/riskTraining';
import { SHIPPED_RISK_COEFFICIENTS, SHIPPED_RISK_HORIZON_MINUTES, SHIPPED_RISK_SOURCE } from '../src/core/shippedRiskCoefficients';
import { parseBenchArgs, pathOption, round, sharedDataDir, singleNodeTraces, writeResults } from './lib/benchSupport';

const MINUTE = 60_000;
/** One observation per pool every five minutes: finer adds correlated, near-duplicate rows. */
const SAMPLE_EVERY_MS = 5 * MINUTE;
/** Reliability bins: equal numbers of observations, so sparse high-risk bins do not vanish. */
const RELIABILITY_BINS = 10;
/** Targets of the issue, to say in the report whether they are met. */
const TARGET_AUC = 0.85;
const TARGET_CALIBRATION_ERROR = 0.05;

type Scores = { auc: number; brier: number; calibrationError: number };

function main(): void {
  const args = parseBenchArgs(process.argv.slice(2));
  const needsShared = args.traces.length === 0 || !args.options.has('advisor') || !args.options.has('on-demand');
  const data = needsShared ? sharedDataDir() : '';
  const traceFiles = args.traces.length > 0 ? args.traces : singleNodeTraces(data);
  const advisorFile = pathOption(args, 'advisor') ?? path.join(data, 'aws_spot_advisor_linux_2025-06.csv');
  const onDemandFile = pathOption(args, 'on-demand') ?? path.join(data, 'aws_ondemand_prices_us-east-1_2026-07.csv');
  const model = args.options.get('model') ?? 'fit';
  if (model !== 'fit' && model !== 'shipped') throw new Error(`--model must be fit (splits, then fit on all) or shipped (score the shipped coefficients), got "${model}"`);
  const horizons = (args.options.get('horizons') ?? '5,20,60').split(',').map(Number);
  if (horizons.some(h => !(h > 0))) throw new Error(`--horizons takes minutes separated by commas, such as 5,20,60`);
  if (!horizons.includes(20)) horizons.push(20);

  const traces = loadTraces(traceFiles);
  const advisor = parseSpotAdvisor(fs.readFileSync(advisorFile, 'utf8'), advisorFile);
  const onDemand = parseOnDemandPrices(fs.readFileSync(onDemandFile, 'utf8'), onDemandFile);
  const prices = args.prices.flatMap(f => parseSpotPriceHistory(fs.readFileSync(f, 'utf8'), f));
  const histories = traces.map(t => historyOf(t, advisor.get(`${regionOfZone(t.zone)}/${t.instanceType}`), onDemand.get(t.instanceType), prices));
  const traceOf = new Map(traces.map(t => [t.source, t]));
  const regionOfPool = (pool: string) => `${traceOf.get(pool)!.cloud}:${regionOfZone(traceOf.get(pool)!.zone)}`;
  const periodOfPool = (pool: string) => new Date(traceOf.get(pool)!.startAt).toISOString().slice(0, 7);
  const rateOf = pastRates(histories);
  const bandOf = new Map(histories.map(h => [h.pool, h.advisorBand ?? UNKNOWN_ADVISOR_BAND]));

  const started = Date.now();
  const samplesByHorizon = new Map(
    horizons.map(h => [h, buildRiskSamples(histories, { horizonMs: h * MINUTE, sampleEveryMs: SAMPLE_EVERY_MS, heldOutShare: 0 })]),
  );
  const evaluate = (test: readonly TimedRiskSample[], coefficients: RiskCoefficients, horizonMinutes: number) => {
    const outcomes = test.map(s => s.interrupted);
    const predicted = test.map(s => predict(coefficients, s.features));
    const band = test.map(s => advisorBandProbability(bandOf.get(s.pool)!, horizonMinutes * MINUTE));
    const rate = test.map(s => probabilityFromRate(rateOf(s.pool, s.at), horizonMinutes * MINUTE));
    return {
      ...scoresOf(predicted, outcomes),
      reliability: reliabilityOf(predicted, outcomes),
      observations: test.length,
      positiveRate: round(outcomes.filter(Boolean).length / Math.max(1, outcomes.length), 4),
      meanPredicted: round(predicted.reduce((a, b) => a + b, 0) / Math.max(1, predicted.length), 4),
      baselines: { 'advisor-band': scoresOf(band, outcomes), 'past-rate': scoresOf(rate, outcomes) },
      predicted,
      outcomes,
    };
  };

  if (model === 'shipped') {
    const samples = samplesByHorizon.get(SHIPPED_RISK_HORIZON_MINUTES)!;
    const r = evaluate(samples, SHIPPED_RISK_COEFFICIENTS, SHIPPED_RISK_HORIZON_MINUTES);
    const results = {
      model: 'shipped',
      coefficientsFrom: SHIPPED_RISK_SOURCE,
      auc: r.auc,
      brier: r.brier,
      calibrationError: r.calibrationError,
      baselines: r.baselines,
      horizons: { [SHIPPED_RISK_HORIZON_MINUTES]: strip(r) },
      splits: {},
      traces: traces.length,
      traceFiles: traceFiles.map(f => path.basename(f)),
      wallSeconds: round((Date.now() - started) / 1000, 1),
    };
    const file = writeResults('risk', results);
    console.log(`risk model, shipped coefficients (${SHIPPED_RISK_SOURCE}), ${traces.length} traces, horizon ${SHIPPED_RISK_HORIZON_MINUTES} min, no refit`);
    printLine('shipped', r);
    console.log(`wrote ${file}`);
    return;
  }

  const splitKinds: Record<string, (pool: string) => string> = { region: regionOfPool, period: periodOfPool };
  const splits: Record<string, Record<string, Record<string, unknown>>> = {};
  const pooledByHorizon: Record<string, Record<string, unknown>> = {};
  let headline: ReturnType<typeof evaluate> | undefined;
  for (const [kind, groupOf] of Object.entries(splitKinds)) {
    const groups = [...new Set(histories.map(h => groupOf(h.pool)))].sort();
    splits[kind] = {};
    if (groups.length < 2) {
      console.log(`  leave-one-${kind}-out: only one ${kind} in the traces, skipped`);
      continue;
    }
    for (const horizon of horizons) {
      const samples = samplesByHorizon.get(horizon)!;
      const pooledPredicted: number[] = [];
      const pooledOutcomes: boolean[] = [];
      const pooledBand: number[] = [];
      const pooledRate: number[] = [];
      for (const group of groups) {
        const test = samples.filter(s => groupOf(s.pool) === group);
        const train = samples.filter(s => groupOf(s.pool) !== group);
        if (!train.some(s => s.interrupted)) continue;
        const r = evaluate(test, fitRiskCoefficients(train), horizon);
        (splits[kind][group] ??= {})[horizon] = strip(r);
        pooledPredicted.push(...r.predicted);
        pooledOutcomes.push(...r.outcomes);
        pooledBand.push(...test.map(s => advisorBandProbability(bandOf.get(s.pool)!, horizon * MINUTE)));
        pooledRate.push(...test.map(s => probabilityFromRate(rateOf(s.pool, s.at), horizon * MINUTE)));
      }
      const pooled = {
        ...scoresOf(pooledPredicted, pooledOutcomes),
        reliability: reliabilityOf(pooledPredicted, pooledOutcomes),
        observations: pooledOutcomes.length,
        positiveRate: round(pooledOutcomes.filter(Boolean).length / Math.max(1, pooledOutcomes.length), 4),
        baselines: { 'advisor-band': scoresOf(pooledBand, pooledOutcomes), 'past-rate': scoresOf(pooledRate, pooledOutcomes) },
      };
      (pooledByHorizon[`leave-one-${kind}-out`] ??= {})[horizon] = pooled;
      if (kind === 'region' && horizon === 20) headline = { ...pooled, predicted: pooledPredicted, outcomes: pooledOutcomes, meanPredicted: 0 } as ReturnType<typeof evaluate>;
    }
  }

  // The shipped coefficients: fitted on every trace, per horizon.
  const shipped: Record<string, { intercept: number; weights: Record<string, number> }> = {};
  const inSample: Record<string, unknown> = {};
  for (const horizon of horizons) {
    const samples = samplesByHorizon.get(horizon)!;
    const c = fitRiskCoefficients(samples);
    shipped[horizon] = { intercept: round(c.intercept, 4), weights: Object.fromEntries(RISK_FEATURES.map((f, i) => [f, round(c.weights[i], 4)])) };
    inSample[horizon] = strip(evaluate(samples, c, horizon));
  }
  if (!headline) throw new Error('no split could be scored: pass traces of at least two regions (--trace)');
  const results = {
    model: 'fit',
    auc: headline.auc,
    brier: headline.brier,
    calibrationError: headline.calibrationError,
    baselines: headline.baselines,
    headline: 'leave-one-region-out, held-out observations pooled, 20 min',
    horizons: Object.fromEntries(horizons.map(h => [h, { ...(pooledByHorizon['leave-one-region-out']?.[h] as object), 'leave-one-period-out': pooledByHorizon['leave-one-period-out']?.[h] }])),
    splits,
    targets: { auc: TARGET_AUC, calibrationError: TARGET_CALIBRATION_ERROR },
    coefficients: {
      fittedOn: 'every given trace (what ships); the feature set and fit were chosen on the leave-one-region-out and leave-one-period-out splits above',
      byHorizon: shipped,
      inSample,
    },
    features: [...RISK_FEATURES],
    traces: traces.length,
    traceFiles: traceFiles.map(f => path.basename(f)),
    wallSeconds: round((Date.now() - started) / 1000, 1),
  };
  const file = writeResults('risk', results);
  console.log(`risk model, ${traces.length} traces, fitted on all but one region or period and scored on it`);
  for (const [name, byHorizon] of Object.entries(pooledByHorizon)) {
    for (const [h, r] of Object.entries(byHorizon)) printLine(`${name} ${h} min`, r as Scores & { baselines: Record<string, Scores> });
  }
  for (const [kind, groups] of Object.entries(splits)) {
    for (const [group, byHorizon] of Object.entries(groups)) {
      const r = byHorizon[20] as (Scores & { baselines: Record<string, Scores>; observations: number; positiveRate: number }) | undefined;
      if (r) printLine(`  ${kind} ${group} 20 min (${r.observations} obs, ${r.positiveRate} positive)`, r);
    }
  }
  console.log(`  shipped (all traces) 20 min: ${JSON.stringify(shipped[20])}`);
  console.log(`wrote ${file} (${results.wallSeconds} s)`);
}

function printLine(name: string, r: Scores & { baselines: Record<string, Scores> }): void {
  const b = r.baselines;
  console.log(
    `  ${name.padEnd(34)} AUC ${fmt(r.auc)} Brier ${fmt(r.brier, 4)} calib ${fmt(r.calibrationError, 3)}` +
      `  | band AUC ${fmt(b['advisor-band'].auc)} Brier ${fmt(b['advisor-band'].brier, 4)}  | past-rate AUC ${fmt(b['past-rate'].auc)} Brier ${fmt(b['past-rate'].brier, 4)}`,
  );
}

function fmt(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

function strip<T extends { predicted: number[]; outcomes: boolean[] }>(r: T): Omit<T, 'predicted' | 'outcomes'> {
  const { predicted, outcomes, ...rest } = r;
  void predicted;
  void outcomes;
  return rest;
}

function scoresOf(predicted: readonly number[], outcomes: readonly boolean[]): Scores {
  return {
    auc: round(areaUnderRoc(predicted, outcomes), 4),
    brier: round(brierScore(predicted, outcomes), 5),
    calibrationError: round(calibrationErrorOf(predicted, outcomes), 4),
  };
}

/** Observations sorted by prediction, cut into bins of equal size. */
function binsOf(predicted: readonly number[], outcomes: readonly boolean[]): { predicted: number; observed: number; count: number }[] {
  const order = predicted.map((_, i) => i).sort((a, b) => predicted[a] - predicted[b]);
  const bins: { predicted: number; observed: number; count: number }[] = [];
  for (let b = 0; b < RELIABILITY_BINS; b++) {
    const slice = order.slice(Math.floor((b * order.length) / RELIABILITY_BINS), Math.floor(((b + 1) * order.length) / RELIABILITY_BINS));
    if (slice.length === 0) continue;
    bins.push({
      predicted: slice.reduce((a, i) => a + predicted[i], 0) / slice.length,
      observed: slice.filter(i => outcomes[i]).length / slice.length,
      count: slice.length,
    });
  }
  return bins;
}

/** Mean predicted against observed rate per bin. */
function reliabilityOf(predicted: readonly number[], outcomes: readonly boolean[]) {
  return binsOf(predicted, outcomes).map(b => ({ predicted: round(b.predicted, 4), observed: round(b.observed, 4), count: b.count }));
}

/** Expected calibration error: the gap between predicted and observed rates, weighted by the bins' sizes. */
function calibrationErrorOf(predicted: readonly number[], outcomes: readonly boolean[]): number {
  const bins = binsOf(predicted, outcomes);
  const n = bins.reduce((a, b) => a + b.count, 0);
  return n === 0 ? NaN : bins.reduce((a, b) => a + (b.count / n) * Math.abs(b.predicted - b.observed), 0);
}

/** The naive past-rate baseline: the pool's own interruptions per hour so far, as an operator would know them. */
function pastRates(histories: readonly PoolHistory[]): (pool: string, at: number) => number {
  const byPool = new Map(histories.map(h => [h.pool, { startAt: h.startAt, interruptions: transitionsOf(h).interruptions }]));
  return (pool, at) => {
    const h = byPool.get(pool)!;
    let count = 0;
    for (const t of h.interruptions) {
      if (t > at) break;
      count++;
    }
    return count / Math.max(1, (at - h.startAt) / 3_600_000);
  };
}

/** A trace as a pool history, with its own prices and any matching price-history rows. */
function historyOf(
  trace: SpotTrace,
  advisorEntry: AdvisorEntry | undefined,
  onDemandUsdPerHour: number | undefined,
  prices: ReturnType<typeof parseSpotPriceHistory>,
): PoolHistory {
  const own = (trace.pricesUsdPerHour ?? [])
    .map((price, k) => ({ at: trace.startAt + k * trace.tickMs, price }))
    .filter((p, k, all) => k === 0 || p.price !== all[k - 1].price);
  const matching = prices
    .filter(p => p.zone === trace.zone && p.instanceType === trace.instanceType)
    .map(p => ({ at: p.at, price: p.priceUsdPerHour }));
  return {
    pool: trace.source,
    zone: `${trace.cloud}:${trace.zone}`,
    advisorBand: advisorEntry?.band,
    advisorSavingsPct: advisorEntry?.savingsPct,
    onDemandUsdPerHour,
    startAt: trace.startAt,
    tickMs: trace.tickMs,
    unavailable: trace.unavailable,
    prices: [...own, ...matching].sort((a, b) => a.at - b.at),
  };
}

main();
