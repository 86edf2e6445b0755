import fc from 'fast-check';
import {
  advisorBandProbability,
  areaUnderRoc,
  brierScore,
  fitRiskCoefficients,
  InterruptionRiskModel,
  RISK_FEATURES,
  RiskSample,
} from './risk';
import { seededRandom } from './random';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const MIN = 60_000;

describe('advisor bands', () => {
  it('give a higher risk for a higher band and a longer horizon', () => {
    const byBand = [0, 1, 2, 3, 4].map(b => advisorBandProbability(b));
    expect([...byBand].sort((a, b) => a - b)).toEqual(byBand);
    expect(advisorBandProbability(2, 60 * MIN)).toBeGreaterThan(advisorBandProbability(2, 20 * MIN));
    expect(() => advisorBandProbability(7)).toThrow(/advisor band must be 0..4/);
  });
});

describe('metrics', () => {
  it('AUC is 1 for a perfect ranking, 0.5 for a constant one', () => {
    expect(areaUnderRoc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
    expect(areaUnderRoc([0.3, 0.3, 0.3], [false, true, false])).toBe(0.5);
  });

  it('Brier score is 0 for certain right answers and 1 for certain wrong ones', () => {
    expect(brierScore([1, 0], [true, false])).toBe(0);
    expect(brierScore([0, 1], [true, false])).toBe(1);
  });
});

describe('InterruptionRiskModel', () => {
  it('raises a pool\'s risk after an interruption in its zone, and lets it fade', () => {
    const weightOf: Partial<Record<(typeof RISK_FEATURES)[number], number>> = { recentZoneInterruption: 4, bandLogit: 1 };
    const weights = RISK_FEATURES.map(f => weightOf[f] ?? 0);
    const model = new InterruptionRiskModel({ intercept: 0, weights });
    model.track({ pool: 'r5.large@a', zone: 'a', advisorBand: 0 }, T0);
    model.track({ pool: 'm5.large@a', zone: 'a', advisorBand: 0 }, T0);
    model.track({ pool: 'm5.large@b', zone: 'b', advisorBand: 0 }, T0);
    const before = model.risk('r5.large@a', T0 + MIN);
    model.recordInterruption('m5.large@a', T0 + MIN);
    expect(model.risk('r5.large@a', T0 + 2 * MIN)).toBeGreaterThan(before * 10);
    expect(model.risk('m5.large@b', T0 + 2 * MIN)).toBeCloseTo(before, 10);
    expect(model.risk('r5.large@a', T0 + 600 * MIN)).toBeLessThan(model.risk('r5.large@a', T0 + 2 * MIN));
  });

  it('says which pool it does not know', () => {
    expect(() => new InterruptionRiskModel().risk('x@y', T0)).toThrow(/does not track pool x@y/);
  });

  it('learns a feature that predicts interruptions, and calibrates to the base rate', () => {
    const random = seededRandom(7);
    const samples: RiskSample[] = [];
    for (let i = 0; i < 4000; i++) {
      const features = RISK_FEATURES.map(() => random());
      const p = features[2] > 0.8 ? 0.5 : 0.02;
      samples.push({ features, interrupted: random() < p });
    }
    const fitted = fitRiskCoefficients(samples);
    const predictions = samples.map(s => fitted.intercept + s.features.reduce((a, v, i) => a + v * fitted.weights[i], 0));
    expect(fitted.weights[2]).toBeGreaterThan(Math.max(...fitted.weights.filter((_, i) => i !== 2).map(Math.abs)));
    expect(areaUnderRoc(predictions, samples.map(s => s.interrupted))).toBeGreaterThan(0.8);
  });

  it('gives a probability for any feature values', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: RISK_FEATURES.length, maxLength: RISK_FEATURES.length }), weights => {
        const model = new InterruptionRiskModel({ intercept: 0, weights });
        model.track({ pool: 'p', zone: 'z', advisorBand: 3 }, T0);
        model.recordPrice('p', T0, 0.04);
        model.recordPrice('p', T0 + MIN, 0.05);
        model.recordInterruption('p', T0 + 2 * MIN);
        const r = model.risk('p', T0 + 3 * MIN);
        expect(r).toBeGreaterThanOrEqual(0);
        expect(r).toBeLessThanOrEqual(1);
      }),
    );
  });
});
