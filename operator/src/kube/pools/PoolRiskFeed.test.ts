import { ManualClock } from '../../core/clock';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import type { NodeView } from '../../core/model';
import { DEFAULT_PROACTIVE_POLICY } from '../../core/proactive';
import {
  advisorBandProbability,
  BAND_ONLY_COEFFICIENTS,
  RISK_FEATURES,
  RiskCoefficients,
  UNKNOWN_ADVISOR_BAND,
} from '../../core/risk';
import { PriceBook } from './PoolPriceFeed';
import {
  advisorBandOf,
  PoolRiskFeed,
  shippedAdvisorBands,
} from './PoolRiskFeed';

const START = Date.parse('2026-11-01T00:00:00Z');
const MINUTE = 60_000;

function spotNode(name: string, instanceType: string, zone: string): NodeView {
  const resources = { cpuMillis: 2000, memoryMiB: 8192 };
  return {
    name,
    instanceType,
    zone,
    capacityType: 'spot',
    allocatable: resources,
    free: resources,
  };
}

const notice = (node: string): DisruptionSignal => ({
  node,
  reason: 'notice',
  deadline: START + 2 * MINUTE,
});
const HOT = {
  instanceType: 'm5.large',
  zone: 'eu-west-1a',
  capacityType: 'spot',
};
const CALM = {
  instanceType: 'm5.large',
  zone: 'eu-west-1b',
  capacityType: 'spot',
};

/**
 * A model that turns a pool hot right after a reclaim and its replacement, and
 * lets it cool within the hour: the feed's mechanics, whatever the shipped fit weighs.
 */
const RECLAIM_SENSITIVE: RiskCoefficients = {
  intercept: 7.5,
  weights: RISK_FEATURES.map(
    f =>
      (({ bandLogit: 1, recentRecovery: 2 } as Record<string, number>)[f] ?? 0),
  ),
};

describe('PoolRiskFeed', () => {
  it("gives each pool its region's advisor band from the shipped table, and the unknown band where the table has none", () => {
    const advisor = shippedAdvisorBands();
    expect(
      advisorBandOf(advisor, { instanceType: 'm5.large', zone: 'eu-west-1a' }),
    ).toBe(1);
    expect(
      advisorBandOf(advisor, { instanceType: 'm5.xlarge', zone: 'eu-west-1c' }),
    ).toBe(2);
    expect(
      advisorBandOf(advisor, { instanceType: 'm6i.large', zone: 'eu-west-1b' }),
    ).toBe(0);
    // The table has m5.large in eu-west-1 only: another region's is unknown.
    expect(
      advisorBandOf(advisor, { instanceType: 'm5.large', zone: 'us-east-1a' }),
    ).toBeUndefined();

    const feed = new PoolRiskFeed({
      coefficients: BAND_ONLY_COEFFICIENTS,
      clock: new ManualClock(START),
    });
    expect(feed.bandOf({ instanceType: 'm5.large', zone: 'us-east-1a' })).toBe(
      UNKNOWN_ADVISOR_BAND,
    );
    expect(
      feed.riskOf({
        instanceType: 'm6i.large',
        zone: 'eu-west-1b',
        capacityType: 'spot',
      }),
    ).toBeCloseTo(advisorBandProbability(0), 12);
    expect(
      feed.riskOf({
        instanceType: 'm5.xlarge',
        zone: 'eu-west-1c',
        capacityType: 'spot',
      }),
    ).toBeCloseTo(advisorBandProbability(2), 12);
    expect(feed.riskOf({ ...HOT, capacityType: 'on-demand' })).toBe(0);
  });

  it("raises a pool's risk past the proactive threshold as its nodes are reclaimed and replaced, and only that pool's", () => {
    const clock = new ManualClock(START);
    const feed = new PoolRiskFeed({ clock, coefficients: RECLAIM_SENSITIVE });
    let nodes = [
      spotNode('hot-1', 'm5.large', 'eu-west-1a'),
      spotNode('calm-1', 'm5.large', 'eu-west-1b'),
    ];
    feed.observe(nodes, []);
    const calmBefore = feed.riskOf(CALM);
    const hotBefore = feed.riskOf(HOT);
    expect(hotBefore).toBeCloseTo(calmBefore, 12);
    expect(hotBefore).toBeLessThan(DEFAULT_PROACTIVE_POLICY.exitRisk);

    for (let i = 1; i <= 3; i++) {
      clock.advance(MINUTE);
      feed.observe(nodes, [notice(`hot-${i}`)]);
      // The same notice seen again is the same interruption.
      feed.observe(nodes, [notice(`hot-${i}`)]);
      clock.advance(MINUTE);
      // The reclaimed node goes and a replacement joins the pool: capacity came back.
      nodes = [
        ...nodes.filter(n => n.name !== `hot-${i}`),
        spotNode(`hot-${i + 1}`, 'm5.large', 'eu-west-1a'),
      ];
      feed.observe(nodes, []);
    }
    expect(
      feed.history().pools.find(p => p.zone === 'eu-west-1a'),
    ).toMatchObject({
      interruptions: 3,
      lastRecoveryAt: clock.now(),
    });
    expect(feed.riskOf(HOT)).toBeGreaterThanOrEqual(
      DEFAULT_PROACTIVE_POLICY.enterRisk,
    );
    expect(feed.riskOf(CALM)).toBeLessThan(DEFAULT_PROACTIVE_POLICY.exitRisk);
    expect(
      feed
        .risks()
        .map(r => r.pool.zone)
        .sort(),
    ).toEqual(['eu-west-1a', 'eu-west-1b']);
  });

  it('takes a reclaim and its replacement seen in one look as a recovery, but not a reclaimed node itself, nor the nodes found at the first look', () => {
    const clock = new ManualClock(START);
    const feed = new PoolRiskFeed({ clock });
    const found = spotNode('hot-1', 'm5.large', 'eu-west-1a');
    feed.observe([found], [notice('hot-1')]);
    expect(feed.history().pools[0]).toMatchObject({ interruptions: 1 });
    expect(feed.history().pools[0].lastRecoveryAt).toBeUndefined();

    clock.advance(MINUTE);
    // A node that arrives already reclaimed is no capacity coming back.
    const reclaimedOnArrival = spotNode('hot-2', 'm5.large', 'eu-west-1a');
    feed.observe(
      [found, reclaimedOnArrival],
      [notice('hot-1'), notice('hot-2')],
    );
    expect(feed.history().pools[0]).toMatchObject({ interruptions: 2 });
    expect(feed.history().pools[0].lastRecoveryAt).toBeUndefined();

    clock.advance(MINUTE);
    const replacement = spotNode('hot-3', 'm5.large', 'eu-west-1a');
    feed.observe([replacement], []);
    expect(feed.history().pools[0]).toMatchObject({
      interruptions: 2,
      lastRecoveryAt: clock.now(),
    });

    clock.advance(MINUTE);
    // hot-3 is reclaimed and hot-4 replaces it within one burst of events.
    feed.observe(
      [replacement, spotNode('hot-4', 'm5.large', 'eu-west-1a')],
      [notice('hot-3')],
    );
    expect(feed.history().pools[0]).toMatchObject({
      interruptions: 3,
      lastRecoveryAt: clock.now(),
    });
  });

  it('counts a notice the cloud sent (the interruption queue) once, as a node signal is', () => {
    const feed = new PoolRiskFeed({ clock: new ManualClock(START) });
    const node = spotNode('hot-1', 'm5.large', 'eu-west-1a');
    feed.observe([node], []);
    feed.cloudSignal(node, 'notice');
    feed.observe([node], [notice('hot-1')]);
    feed.cloudSignal(node, 'recommendation');
    expect(feed.history().pools[0]).toMatchObject({
      interruptions: 1,
      lastRebalanceAt: START,
    });
    expect(feed.history().counted).toEqual({
      'hot-1': ['notice', 'recommendation'],
    });
  });

  it("follows the pools' spot prices: their ratio to on-demand is a feature the coefficients weigh", () => {
    const clock = new ManualClock(START);
    const book = new PriceBook();
    const price = (usdPerHour: number) =>
      book.setSpot('eu-west-1a', 'm5.large', {
        usdPerHour,
        source: 'EC2 spot price history (eu-west-1)',
      });
    book.setOnDemand('eu-west-1', 'm5.large', {
      usdPerHour: 0.1,
      source: 'on-demand price list',
    });
    // The advisor band and the spot price over on-demand only, each with weight 1.
    const coefficients = {
      intercept: 0,
      weights: RISK_FEATURES.map(f =>
        f === 'bandLogit' || f === 'priceToOnDemand' ? 1 : 0,
      ),
    };
    const feed = new PoolRiskFeed({
      coefficients,
      clock,
      spotPrices: () => book,
    });
    const nodes = [
      spotNode('hot-1', 'm5.large', 'eu-west-1a'),
      spotNode('calm-1', 'm5.large', 'eu-west-1b'),
    ];
    price(0.04);
    book.setSpot('eu-west-1b', 'm5.large', {
      usdPerHour: 0.04,
      source: 'EC2 spot price history (eu-west-1)',
    });
    feed.observe(nodes, []);
    const before = feed.riskOf(HOT);
    expect(before).toBeCloseTo(feed.riskOf(CALM), 12);
    clock.advance(60 * MINUTE);
    price(0.06);
    feed.observe(nodes, []);
    // logit rises by the ratio's rise, (0.06 - 0.04) / 0.1.
    const logit = (p: number) => Math.log(p / (1 - p));
    expect(logit(feed.riskOf(HOT)) - logit(before)).toBeCloseTo(0.2, 9);
    expect(feed.riskOf(CALM)).toBeCloseTo(before, 12);
  });

  it('restores what another replica observed: the same risk, and a notice it counted is not counted again', () => {
    const clock = new ManualClock(START);
    const first = new PoolRiskFeed({ clock });
    let nodes = [
      spotNode('hot-1', 'm5.large', 'eu-west-1a'),
      spotNode('hot-2', 'm5.large', 'eu-west-1a'),
    ];
    first.observe(nodes, []);
    clock.advance(MINUTE);
    first.observe(nodes, [notice('hot-1'), notice('hot-2')]);
    clock.advance(MINUTE);
    nodes = [
      spotNode('hot-2', 'm5.large', 'eu-west-1a'),
      spotNode('hot-3', 'm5.large', 'eu-west-1a'),
    ];
    first.observe(nodes, [notice('hot-2')]);
    const stored = JSON.parse(JSON.stringify(first.history()));

    clock.advance(MINUTE);
    const next = new PoolRiskFeed({ clock });
    next.restore(stored);
    next.observe(nodes, [notice('hot-2')]);
    expect(next.riskOf(HOT)).toBeCloseTo(first.riskOf(HOT), 12);
    expect(next.history().pools[0]).toMatchObject({ interruptions: 2 });
    // hot-1 is gone: nothing to remember about it.
    expect(Object.keys(next.history().counted)).toEqual(['hot-2']);
  });

  it('starts afresh from a history of another version, and says so', () => {
    const errors: string[] = [];
    const feed = new PoolRiskFeed({
      clock: new ManualClock(START),
      onError: e => errors.push(String(e)),
    });
    feed.restore({ version: 99, pools: [], counted: {} });
    expect(errors).toEqual([
      'Error: pool risk history has version 99, this operator reads 1; starting afresh',
    ]);
  });
});
