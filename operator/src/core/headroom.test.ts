import fc from 'fast-check';
import { freeSlotsOf, headroomSlotsFor, MAX_HEADROOM_SLOTS, planHeadroom } from './headroom';
import { MEMBER_REQUESTS, node, NODE_SIZE, pool } from './__testUtils__/cluster';

describe('planHeadroom', () => {
  const pools = ['a', 'b', 'c'].flatMap(z => [pool('r5.large', z, 'spot', 0.04), pool('m5.large', z, 'spot', 0.05)]);
  const slotsPerNode = freeSlotsOf(NODE_SIZE, MEMBER_REQUESTS);

  it('launches enough spare nodes, spread over zones, to reach the wanted slots', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 4 }), (slots, used) => {
        const existing = [node('spot-1', { instanceType: 'r5.large', zone: 'a' }, 'spot', used)];
        const plan = planHeadroom({ nodes: existing, pools, requests: MEMBER_REQUESTS, slots });
        expect(plan.freeSlots).toBe(slotsPerNode - used);
        expect(plan.freeSlots + plan.launch.length * slotsPerNode).toBeGreaterThanOrEqual(slots);
        // Three launches or more cover every zone.
        const zones = new Set(plan.launch.map(p => p.zone)).size;
        expect(zones).toBe(plan.launch.length >= 3 ? 3 : zones);
        // Never more than one node beyond what is needed.
        expect(plan.freeSlots + (plan.launch.length - 1) * slotsPerNode).toBeLessThan(Math.max(slots, plan.freeSlots + 1));
      }),
    );
  });

  it('does not count nodes that are leaving or cordoned, or permanent nodes', () => {
    const leaving = { ...node('spot-1', { instanceType: 'r5.large', zone: 'a' }, 'spot'), terminatesAt: 1 };
    const cordoned = { ...node('spot-2', { instanceType: 'r5.large', zone: 'b' }, 'spot'), unschedulable: true };
    const permanent = node('od-1', { instanceType: 'm5.large', zone: 'a' }, 'on-demand');
    expect(planHeadroom({ nodes: [leaving, cordoned, permanent], pools, requests: MEMBER_REQUESTS, slots: 1 }).freeSlots).toBe(0);
  });

  it('does not launch into a pool that cannot launch', () => {
    const closed = pools.map(p => ({ ...p, launchable: p.zone === 'c' }));
    const plan = planHeadroom({ nodes: [], pools: closed, requests: MEMBER_REQUESTS, slots: 2 });
    expect(plan.launch.every(p => p.zone === 'c')).toBe(true);
  });

  it('keeps room for the largest pool, bounded', () => {
    expect(headroomSlotsFor([2, 7, 3])).toBe(7);
    expect(headroomSlotsFor([200])).toBe(MAX_HEADROOM_SLOTS);
    expect(headroomSlotsFor([])).toBe(0);
  });
});

describe('planHeadroom with busy pools', () => {
  it('puts spare room in pools that hold no members first', () => {
    const pools = ['a', 'b'].flatMap(z => [pool('cheap.large', z, 'spot', 0.03), pool('dear.large', z, 'spot', 0.06)]);
    const membersPerPool = new Map([['cheap.large@a', 4], ['cheap.large@b', 4]]);
    const plan = planHeadroom({ nodes: [], pools, requests: MEMBER_REQUESTS, slots: 2, membersPerPool });
    expect(plan.launch.map(p => p.instanceType)).toEqual(['dear.large']);
  });
});
