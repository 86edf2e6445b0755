import fc from 'fast-check';
import { DEFAULT_PROACTIVE_POLICY, ProactiveMoveGovernor } from './proactive';

const T0 = 0;
const MIN = 60_000;

describe('ProactiveMoveGovernor', () => {
  it('moves a pool\'s nodes once when risk crosses the threshold, not again while it hovers', () => {
    const governor = new ProactiveMoveGovernor();
    const at = (risk: number, t: number) => governor.decide(t, [{ node: 'n1', pool: 'p', risk, members: 1 }]);
    expect(at(0.1, T0)).toEqual([]);
    expect(at(0.3, T0 + MIN)).toEqual([{ node: 'n1', reason: 'prediction' }]);
    expect(at(0.24, T0 + 2 * MIN)).toEqual([]);
    expect(at(0.3, T0 + 3 * MIN)).toEqual([]);
  });

  it('keeps a new node of a pool that is still hot in the plan, but not one of a pool that cooled', () => {
    const governor = new ProactiveMoveGovernor();
    governor.decide(T0, [{ node: 'n1', pool: 'p', risk: 0.3, members: 1 }]);
    expect(governor.decide(T0 + MIN, [{ node: 'n2', pool: 'p', risk: 0.15, members: 1 }])).toHaveLength(1);
    expect(governor.decide(T0 + 2 * MIN, [{ node: 'n3', pool: 'p', risk: 0.05, members: 1 }])).toEqual([]);
  });

  it('moves a node again when its pool cools and then turns hot again', () => {
    const governor = new ProactiveMoveGovernor();
    const at = (risk: number, t: number) => governor.decide(t, [{ node: 'n1', pool: 'p', risk, members: 1 }]);
    expect(at(0.3, T0)).toHaveLength(1);
    expect(at(0.05, T0 + MIN)).toEqual([]);
    expect(at(0.3, T0 + 2 * MIN)).toEqual([{ node: 'n1', reason: 'prediction' }]);
  });

  it('never spends more than its budget in a window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ risk: fc.double({ min: 0, max: 1, noNaN: true }), members: fc.integer({ min: 0, max: 5 }), dt: fc.integer({ min: 0, max: 20 * MIN }) }), { maxLength: 200 }),
        steps => {
          const governor = new ProactiveMoveGovernor();
          let t = T0;
          const spent: { t: number; members: number }[] = [];
          steps.forEach((s, i) => {
            t += s.dt;
            const signals = governor.decide(t, [{ node: `n${i}`, pool: `p${i % 3}`, risk: s.risk, members: s.members }]);
            if (signals.length) spent.push({ t, members: s.members });
            const inWindow = spent.filter(x => t - x.t < DEFAULT_PROACTIVE_POLICY.windowMs).reduce((a, x) => a + x.members, 0);
            expect(inWindow).toBeLessThanOrEqual(DEFAULT_PROACTIVE_POLICY.movesPerWindow);
          });
        },
      ),
    );
  });

  it('rejects thresholds without hysteresis', () => {
    expect(() => new ProactiveMoveGovernor({ ...DEFAULT_PROACTIVE_POLICY, exitRisk: 0.3 })).toThrow(/must be below enterRisk/);
  });
});
