import { ManualClock } from '../../core/clock';
import type { MigrationSpec } from '../../api/v1alpha1';
import { InMemoryMigrationStore } from '../MigrationStore';
import { MigrationStateMachine } from '../MigrationStateMachine';
import { EvictionResult, PodEvictor, RescheduleDriver } from './RescheduleDriver';

/** A workload controller and its PodDisruptionBudget, in memory. */
class FakeWorkload implements PodEvictor {
  pods = new Map<string, { node: string; ready: boolean }>([
    ['web-0', { node: 'spot-a', ready: true }],
    ['web-1', { node: 'spot-b', ready: true }],
  ]);
  minAvailable = 1;
  evictions = 0;

  async evict(_ns: string, pod: string): Promise<EvictionResult> {
    if (!this.pods.has(pod)) return 'gone';
    const ready = [...this.pods.values()].filter(p => p.ready).length;
    if (ready - 1 < this.minAvailable) return 'blocked';
    this.pods.delete(pod);
    this.evictions++;
    // The controller recreates the member elsewhere.
    this.pods.set(`${pod}-r`, { node: 'spot-c', ready: true });
    return 'evicted';
  }

  async readyReplacement(_ns: string, _w: string, avoidNode: string, except: string) {
    return [...this.pods.entries()].find(([name, p]) => name !== except && p.ready && p.node !== avoidNode && name.startsWith(except))?.[0];
  }
}

const spec: MigrationSpec = {
  workloadRef: { kind: 'Deployment', name: 'web' },
  pod: 'web-0',
  sourceNode: 'spot-a',
  reason: 'drain',
  driver: 'reschedule',
};

function setUp(workload = new FakeWorkload()) {
  const clock = new ManualClock(Date.parse('2026-05-28T14:03:00Z'));
  const store = new InMemoryMigrationStore();
  const machine = () =>
    new MigrationStateMachine({ store, clock, drivers: [new RescheduleDriver({ evictor: workload, clock, pollMs: 1 })] });
  return { workload, clock, store, machine };
}

describe('reschedule driver', () => {
  it('evicts the pod and waits for its replacement', async () => {
    const { workload, machine } = setUp();
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.targetPod).toBe('web-0-r');
    expect(workload.pods.has('web-0')).toBe(false);
  });

  it('waits while the PodDisruptionBudget blocks the eviction', async () => {
    const workload = new FakeWorkload();
    workload.pods.get('web-1')!.ready = false;
    const { machine } = setUp(workload);
    const realEvict = workload.evict.bind(workload);
    let attempts = 0;
    workload.evict = async (ns, pod) => {
      if (++attempts === 3) workload.pods.get('web-1')!.ready = true;
      return realEvict(ns, pod);
    };
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('Succeeded');
    expect(attempts).toBe(3);
  });

  it('is idempotent when the operator restarts after the eviction', async () => {
    const { workload, store, machine } = setUp();
    const update = store.updateStatus.bind(store);
    let writes = 0;
    store.updateStatus = async m => {
      if (++writes === 4) throw new Error('operator killed');
      return update(m);
    };
    await machine().plan('shop', 'm', spec);
    await expect(machine().run('shop', 'm')).rejects.toThrow('operator killed');
    const [done] = await machine().resumeAll();
    expect(done.status?.phase).toBe('Succeeded');
    expect(workload.evictions).toBe(1);
  });

  it('gives up when the budget stays blocked past the notice', async () => {
    const workload = new FakeWorkload();
    workload.minAvailable = 2;
    const { machine, clock } = setUp(workload);
    workload.evict = async () => {
      clock.advance(10_000);
      return 'blocked';
    };
    const sm = machine();
    await sm.plan('shop', 'm', { ...spec, deadline: new Date(clock.now() + 30_000).toISOString() });
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('RolledBack');
    expect(done.status?.message).toMatch(/PodDisruptionBudget/);
  });
});
