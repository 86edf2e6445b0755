import { SoleLeader } from './SoleLeader';

describe('SoleLeader', () => {
  it('leads at once and until stopped, then says it stopped', async () => {
    const seen: string[] = [];
    let signal: AbortSignal | undefined;
    const leader = new SoleLeader({
      onStartedLeading: s => {
        signal = s;
        seen.push('started');
      },
      onStoppedLeading: () => seen.push('stopped'),
    });
    const running = leader.run();
    expect(leader.isLeader).toBe(true);
    expect(seen).toEqual(['started']);
    await leader.stop();
    await running;
    expect(leader.isLeader).toBe(false);
    expect(signal?.aborted).toBe(true);
    expect(seen).toEqual(['started', 'stopped']);
  });

  it('does not lead once stopped before it ran', async () => {
    const started = jest.fn();
    const leader = new SoleLeader({ onStartedLeading: started });
    await leader.stop();
    await leader.run();
    expect(started).not.toHaveBeenCalled();
    expect(leader.isLeader).toBe(false);
  });
});
