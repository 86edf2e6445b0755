import { buildRiskSamples, PoolHistory, transitionsOf } from './riskTraining';
import { RISK_FEATURES } from './risk';

const MIN = 60_000;

const history = (pool: string, zone: string, pattern: string): PoolHistory => ({
  pool,
  zone,
  advisorBand: 2,
  startAt: 0,
  tickMs: 5 * MIN,
  unavailable: [...pattern].map(c => c === '1'),
});

describe('buildRiskSamples', () => {
  it('labels an observation by whether the pool is interrupted within the horizon', () => {
    const samples = buildRiskSamples([history('p', 'z', '000000001100000000')], {
      horizonMs: 20 * MIN,
      sampleEveryMs: 5 * MIN,
      heldOutShare: 0.3,
    });
    const interruptionAt = transitionsOf(history('p', 'z', '000000001100000000')).interruptions[0];
    expect(interruptionAt).toBe(40 * MIN);
    for (const s of samples) {
      expect(s.interrupted).toBe(s.at < interruptionAt && s.at + 20 * MIN >= interruptionAt);
    }
    expect(samples.some(s => s.interrupted)).toBe(true);
    // No observation while the pool has no capacity.
    expect(samples.map(s => s.at)).not.toContain(45 * MIN);
  });

  it('holds back the final share of each pool\'s time range', () => {
    const samples = buildRiskSamples([history('p', 'z', '0'.repeat(100))], { horizonMs: 20 * MIN, sampleEveryMs: 5 * MIN, heldOutShare: 0.3 });
    const held = samples.filter(s => s.heldOut);
    expect(Math.min(...held.map(s => s.at))).toBeGreaterThanOrEqual(0.7 * 500 * MIN);
    expect(samples.filter(s => !s.heldOut).every(s => s.at < 0.7 * 500 * MIN)).toBe(true);
  });

  it('feeds an interruption of one pool into the features of the other pools of its zone only', () => {
    const samples = buildRiskSamples(
      [history('a', 'z1', '00001000000'), history('b', 'z1', '00000000000'), history('c', 'z2', '00000000000')],
      { horizonMs: 10 * MIN, sampleEveryMs: 5 * MIN, heldOutShare: 0 },
    );
    const zoneFeature = RISK_FEATURES.indexOf('recentZoneInterruption');
    const at = 25 * MIN;
    expect(samples.find(s => s.pool === 'b' && s.at === at)!.features[zoneFeature]).toBeGreaterThan(0.5);
    expect(samples.find(s => s.pool === 'c' && s.at === at)!.features[zoneFeature]).toBe(0);
  });
});
