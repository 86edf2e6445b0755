import fc from 'fast-check';
import { AvailabilityLedger, CostLedger } from './accounting';

const HOUR = 3_600_000;

describe('CostLedger', () => {
  it('prices each interval at its own prices and shares, with the on-demand counterfactual', () => {
    const ledger = new CostLedger();
    ledger.accrue(2 * HOUR, [
      { capacityType: 'spot', nodePriceUsdPerHour: 0.04, onDemandPriceUsdPerHour: 0.126, nodeShare: 0.5 },
      { capacityType: 'on-demand', nodePriceUsdPerHour: 0.126, onDemandPriceUsdPerHour: 0.126, nodeShare: 1 },
    ]);
    ledger.accrue(HOUR, [{ capacityType: 'spot', nodePriceUsdPerHour: 0.08, onDemandPriceUsdPerHour: 0.126, nodeShare: 1 }]);
    const t = ledger.totals();
    expect(t.spendUsd).toBeCloseTo(0.04 * 0.5 * 2 + 0.126 * 2 + 0.08, 10);
    expect(t.onDemandSpendUsd).toBeCloseTo(0.126 * 0.5 * 2 + 0.126 * 2 + 0.126, 10);
    expect(t.savingsUsd).toBeCloseTo(t.onDemandSpendUsd - t.spendUsd, 10);
  });

  it('never reports savings when everything ran on demand', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 10 * HOUR }), fc.double({ min: 0.01, max: 5, noNaN: true }))), intervals => {
        const ledger = new CostLedger();
        for (const [ms, price] of intervals) {
          ledger.accrue(ms, [{ capacityType: 'on-demand', nodePriceUsdPerHour: price, onDemandPriceUsdPerHour: price, nodeShare: 1 }]);
        }
        expect(Math.abs(ledger.totals().savingsUsd)).toBeLessThan(1e-9);
      }),
    );
  });
});

describe('AvailabilityLedger', () => {
  it('measures time with the required members ready, counts outages and the error budget', () => {
    const ledger = new AvailabilityLedger(0.99);
    ledger.observe(99 * HOUR, 3, 2);
    ledger.observe(0.5 * HOUR, 1, 2);
    ledger.observe(0.5 * HOUR, 1, 2);
    ledger.observe(HOUR, 2, 2);
    const t = ledger.totals();
    expect(t.availability).toBeCloseTo(100 / 101, 10);
    expect(t.outages).toBe(1);
    expect(t.errorBudgetRemaining).toBeLessThan(0.02);
    expect(t.errorBudgetRemaining).toBeGreaterThan(0);
  });

  it('rejects a target outside (0, 1]', () => {
    expect(() => new AvailabilityLedger(99.9)).toThrow(/availability target must be in \(0, 1\]/);
  });
});
