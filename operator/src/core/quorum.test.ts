import fc from 'fast-check';
import { maxMembersPerFailureDomain, maxMembersPerSpotPool, permanentFloor, quorumOf } from './quorum';

describe('quorum arithmetic', () => {
  it('needs a majority', () => {
    expect([1, 2, 3, 4, 5].map(quorumOf)).toEqual([1, 2, 2, 3, 3]);
  });

  it('rounds the permanent floor up, without float noise, and never below one', () => {
    expect(permanentFloor(10, 0.3)).toBe(3);
    expect(permanentFloor(5, 0.3)).toBe(2);
    expect(permanentFloor(3, 0)).toBe(1);
    expect(permanentFloor(0, 0.3)).toBe(0);
  });

  it('lets a lone member follow its ratio alone: on spot at 0, permanent otherwise', () => {
    expect(permanentFloor(1, 0)).toBe(0);
    expect(permanentFloor(1, 0.3)).toBe(1);
    expect(maxMembersPerFailureDomain(1)).toBe(1);
    expect(maxMembersPerSpotPool(1)).toBe(1);
  });

  it('rejects a ratio outside 0..1 with a message that says what to set', () => {
    expect(() => permanentFloor(3, 1.5)).toThrow(/permanentRatio must be between 0 and 1/);
  });

  it('lets a failure domain hold only what leaves the quorum standing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 99 }), n => {
        expect(n - maxMembersPerFailureDomain(n)).toBeGreaterThanOrEqual(quorumOf(n));
        expect(n - maxMembersPerFailureDomain(n) - 1).toBeLessThan(quorumOf(n));
      }),
    );
  });
});
