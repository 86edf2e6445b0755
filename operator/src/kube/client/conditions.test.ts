import { setCondition } from './conditions';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const T1 = Date.parse('2026-01-01T00:05:00Z');

describe('setCondition', () => {
  it('adds a condition with the time of its transition, in seconds as the API writes it', () => {
    expect(
      setCondition(
        [],
        { type: 'Ready', status: 'True', reason: 'Placed', message: 'ok' },
        T0 + 123,
      ),
    ).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Placed',
        message: 'ok',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ]);
  });

  it('keeps the transition time while the status holds, and moves it when it changes', () => {
    const ready = setCondition(
      [],
      { type: 'Ready', status: 'True', reason: 'Placed', message: 'ok' },
      T0,
    );
    const still = setCondition(
      ready,
      {
        type: 'Ready',
        status: 'True',
        reason: 'Placed',
        message: 'still ok',
        observedGeneration: 2,
      },
      T1,
    );
    expect(still[0]).toMatchObject({
      message: 'still ok',
      observedGeneration: 2,
      lastTransitionTime: '2026-01-01T00:00:00Z',
    });
    const lost = setCondition(
      still,
      {
        type: 'Ready',
        status: 'False',
        reason: 'QuorumAtRisk',
        message: '1 of 3 ready',
      },
      T1,
    );
    expect(lost[0].lastTransitionTime).toBe('2026-01-01T00:05:00Z');
    expect(ready[0].message).toBe('ok');
  });

  it('leaves the other conditions alone', () => {
    const both = setCondition(
      setCondition(
        [],
        { type: 'Ready', status: 'True', reason: 'Placed', message: '' },
        T0,
      ),
      { type: 'Degraded', status: 'False', reason: 'AllReady', message: '' },
      T1,
    );
    expect(both.map(c => c.type)).toEqual(['Ready', 'Degraded']);
  });
});
