import type { ClusterState } from '../state/ClusterState';
import {
  REPLACEMENT_PASS_INTERVAL_MS,
  ReplacementController,
} from './ReplacementController';

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** A cluster with nothing to re-place, that counts the passes looking at it. */
function countingState(): { state: ClusterState; passes: number[] } {
  const passes: number[] = [];
  const state = {
    synced: true,
    workloads: () => {
      passes.push(Date.now());
      return [];
    },
    migrations: { list: () => [] },
    nodeViews: () => [],
  } as unknown as ClusterState;
  return { state, passes };
}

describe('ReplacementController', () => {
  it('runs one pass for a burst of changes, and the next one an interval after it', async () => {
    const { state, passes } = countingState();
    const controller = new ReplacementController({
      writes: { patchSpotPolicyStatus: async () => {} },
      state,
      machine: {
        plan: async () => {
          throw new Error('nothing to re-place, nothing to plan');
        },
      },
      pools: async () => [],
    });
    try {
      // A reclaim's burst: a change every few milliseconds, each after the last pass ended.
      for (let i = 0; i < 40; i++) {
        controller.changed();
        await sleep(5);
      }
      expect(passes).toHaveLength(1);
      const deadline = Date.now() + 3 * REPLACEMENT_PASS_INTERVAL_MS;
      while (passes.length < 2 && Date.now() < deadline) await sleep(20);
      expect(passes).toHaveLength(2);
      // Timers may fire a little early; not a whole tenth of the interval.
      expect(passes[1] - passes[0]).toBeGreaterThanOrEqual(
        REPLACEMENT_PASS_INTERVAL_MS * 0.9,
      );
      // Nothing changed since: no more passes.
      await sleep(REPLACEMENT_PASS_INTERVAL_MS * 1.5);
      expect(passes).toHaveLength(2);
    } finally {
      await controller.stop();
    }
  });

  it('looks at once at a change after a quiet interval', async () => {
    const { state, passes } = countingState();
    const controller = new ReplacementController({
      writes: { patchSpotPolicyStatus: async () => {} },
      state,
      machine: {
        plan: async () => {
          throw new Error('nothing to re-place, nothing to plan');
        },
      },
      pools: async () => [],
    });
    try {
      controller.changed();
      await sleep(REPLACEMENT_PASS_INTERVAL_MS * 1.2);
      const before = Date.now();
      controller.changed();
      await sleep(50);
      expect(passes).toHaveLength(2);
      expect(passes[1] - before).toBeLessThan(50);
    } finally {
      await controller.stop();
    }
  });
});
