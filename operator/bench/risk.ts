/**
 * Evaluates the interruption-risk model on a held-back time range of measured
 * spot traces: Brier score and AUC of the probability of an interruption within
 * the horizon, against two naive baselines (the advisor band alone, and the
 * pool's past rate from the training range).
 *
 *   npm run bench -- risk [--trace <json|dir>]... [--prices <csv>]... [--advisor <csv>]
 *                         [--horizon-minutes 20] [--held-out 0.3]
 *
 * By default: every single-node trace in ../shared/data/skypilot_spot_traces.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadTraces } from '../src/cloud/marketFiles';
import { parseSpotAdvisor, parseSpotPriceHistory, regionOfZone, SpotTrace } from '../src/cloud/marketData';
import {
  advisorBandProbability,
  areaUnderRoc,
  brierScore,
  fitRiskCoefficients,
  predict,
  probabilityFromRate,
  RISK_FEATURES,
  UNKNOWN_ADVISOR_BAND,
} from '../src/core/risk';
import { buildRiskSamples, PoolHistory, transitionsOf } from '../src/core/riskTraining';
import { numberOption, parseBenchArgs, pathOption, round, sharedDataDir, singleNodeTraces, writeResults } from './lib/benchSupport';

const MINUTE = 60_000;
/** One observation per pool every five minutes: finer adds correlated, near-duplicate rows. */
const SAMPLE_EVERY_MS = 5 * MINUTE;

function main(): void {
  const args = parseBenchArgs(process.argv.slice(2));
  const data = args.traces.length === 0 || !args.options.has('advisor') ? sharedDataDir() : '';
  const traceFiles = args.traces.length > 0 ? args.traces : singleNodeTraces(data);
  const advisorFile = pathOption(args, 'advisor') ?? path.join(data, 'aws_spot_advisor_linux_2025-06.csv');
  const horizonMs = numberOption(args, 'horizon-minutes', 20) * MINUTE;
  const heldOutShare = numberOption(args, 'held-out', 0.3);

  const traces = loadTraces(traceFiles);
  const advisor = parseSpotAdvisor(fs.readFileSync(advisorFile, 'utf8'), advisorFile);
  const prices = args.prices.flatMap(f => parseSpotPriceHistory(fs.readFileSync(f, 'utf8'), f));
  const histories = traces.map((t): PoolHistory => historyOf(t, advisor.get(`${regionOfZone(t.zone)}/${t.instanceType}`)?.band, prices));

  const samples = buildRiskSamples(histories, { horizonMs, sampleEveryMs: SAMPLE_EVERY_MS, heldOutShare });
  const train = samples.filter(s => !s.heldOut);
  const test = samples.filter(s => s.heldOut);
  if (test.length === 0 || !test.some(s => s.interrupted)) {
    throw new Error('the held-back range has no interruption to predict; pass longer traces (--trace) or a larger --held-out');
  }
  const coefficients = fitRiskCoefficients(train);
  const outcomes = test.map(s => s.interrupted);
  const model = test.map(s => predict(coefficients, s.features));

  const bandOf = new Map(histories.map(h => [h.pool, h.advisorBand ?? UNKNOWN_ADVISOR_BAND]));
  const band = test.map(s => advisorBandProbability(bandOf.get(s.pool)!, horizonMs));

  const pastRate = new Map<string, number>();
  for (const h of histories) {
    const endAt = h.startAt + h.unavailable.length * h.tickMs;
    const splitAt = h.startAt + (1 - heldOutShare) * (endAt - h.startAt);
    const count = transitionsOf(h).interruptions.filter(at => at < splitAt).length;
    pastRate.set(h.pool, count / ((splitAt - h.startAt) / 3_600_000));
  }
  const rate = test.map(s => probabilityFromRate(pastRate.get(s.pool)!, horizonMs));

  const results = {
    brier: round(brierScore(model, outcomes), 5),
    auc: round(areaUnderRoc(model, outcomes), 4),
    baselines: {
      'advisor-band': { brier: round(brierScore(band, outcomes), 5), auc: round(areaUnderRoc(band, outcomes), 4) },
      'past-rate': { brier: round(brierScore(rate, outcomes), 5), auc: round(areaUnderRoc(rate, outcomes), 4) },
    },
    horizonMinutes: horizonMs / MINUTE,
    heldOutShare,
    traces: traces.length,
    trainSamples: train.length,
    testSamples: test.length,
    testPositiveRate: round(outcomes.filter(Boolean).length / outcomes.length, 4),
    meanPredicted: round(model.reduce((a, b) => a + b, 0) / model.length, 4),
    coefficients: {
      intercept: round(coefficients.intercept, 4),
      weights: Object.fromEntries(RISK_FEATURES.map((f, i) => [f, round(coefficients.weights[i], 4)])),
    },
  };
  const file = writeResults('risk', results);
  console.log(`risk model, ${results.traces} traces, horizon ${results.horizonMinutes} min, last ${heldOutShare * 100}% of each trace held back`);
  console.log(`  test observations ${results.testSamples} (interrupted within the horizon: ${results.testPositiveRate})`);
  console.log(`  ferry model      Brier ${results.brier}  AUC ${results.auc}`);
  for (const [name, b] of Object.entries(results.baselines)) console.log(`  ${name.padEnd(16)} Brier ${b.brier}  AUC ${b.auc}`);
  console.log(`  coefficients ${JSON.stringify(results.coefficients)}`);
  console.log(`wrote ${file}`);
}

/** A trace as a pool history, with its own prices and any matching price-history rows. */
function historyOf(trace: SpotTrace, advisorBand: number | undefined, prices: ReturnType<typeof parseSpotPriceHistory>): PoolHistory {
  const own = (trace.pricesUsdPerHour ?? [])
    .map((price, k) => ({ at: trace.startAt + k * trace.tickMs, price }))
    .filter((p, k, all) => k === 0 || p.price !== all[k - 1].price);
  const matching = prices
    .filter(p => p.zone === trace.zone && p.instanceType === trace.instanceType)
    .map(p => ({ at: p.at, price: p.priceUsdPerHour }));
  return {
    pool: trace.source,
    zone: `${trace.cloud}:${trace.zone}`,
    advisorBand,
    startAt: trace.startAt,
    tickMs: trace.tickMs,
    unavailable: trace.unavailable,
    prices: [...own, ...matching].sort((a, b) => a.at - b.at),
  };
}

main();
