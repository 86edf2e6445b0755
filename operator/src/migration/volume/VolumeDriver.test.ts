/*
 * Contract tests of the volume driver against a storage fake that enforces what
 * real block storage enforces: a ReadWriteOnce volume is attached to one node
 * at a time, only in its own zone, and snapshots copy data at the moment taken.
 */
import { ManualClock } from '../../core/clock';
import type { MigrationSpec } from '../../api/v1alpha1';
import type { Migration } from '../../api/v1alpha1';
import { InMemoryMigrationStore } from '../MigrationStore';
import { MigrationStateMachine } from '../MigrationStateMachine';
import { ClaimInfo, VolumeDriver, VolumeRuntime } from './VolumeDriver';

class ZonalStorage implements VolumeRuntime {
  readonly nodes: Record<string, string> = { 'spot-a': 'eu-west-1a', 'spot-b': 'eu-west-1a', 'spot-c': 'eu-west-1b' };
  readonly claims = new Map<string, { zone: string; data: string; attachedTo?: string }>();
  readonly snapshots = new Map<string, string>();
  readonly pods = new Map<string, { node: string; claim: string; running: boolean }>();
  /** Every attach, to check that no volume was ever attached twice. */
  readonly violations: string[] = [];
  failRestore = false;

  async claimOf(pod: string): Promise<ClaimInfo> {
    const p = this.pods.get(pod)!;
    const c = this.claims.get(p.claim)!;
    return { claim: p.claim, zone: c.zone, sizeBytes: c.data.length };
  }
  async zoneOf(node: string) {
    return this.nodes[node];
  }
  async stopPod(pod: string) {
    const p = this.pods.get(pod);
    if (p?.running) {
      p.running = false;
      this.claims.get(p.claim)!.attachedTo = undefined;
    }
  }
  async isDetached(claim: string) {
    return !this.claims.get(claim)?.attachedTo;
  }
  async snapshot(claim: string, name: string) {
    if (!this.snapshots.has(name)) this.snapshots.set(name, this.claims.get(claim)!.data);
  }
  async snapshotReady(name: string) {
    return this.snapshots.has(name);
  }
  async restoreClaim(snapshot: string, claim: string, zone: string) {
    if (this.failRestore) throw new Error('quota exceeded in target zone');
    if (!this.claims.has(claim)) this.claims.set(claim, { zone, data: this.snapshots.get(snapshot)! });
  }
  async startPod(pod: string, node: string, claim: string) {
    const c = this.claims.get(claim)!;
    if (c.zone !== this.nodes[node]) this.violations.push(`${claim} (${c.zone}) attached in ${this.nodes[node]}`);
    if (c.attachedTo && c.attachedTo !== node) this.violations.push(`${claim} attached to ${c.attachedTo} and ${node}`);
    c.attachedTo = node;
    this.pods.set(pod, { node, claim, running: true });
  }
  async podReady(pod: string, node: string) {
    const p = this.pods.get(pod);
    return !!p && p.running && p.node === node;
  }
  async podNode(pod: string) {
    const p = this.pods.get(pod);
    return p?.running ? p.node : undefined;
  }
  async deleteSnapshot(name: string) {
    this.snapshots.delete(name);
  }
  async deleteClaim(claim: string) {
    this.claims.delete(claim);
  }
  /** What the pod reads from its volume now. */
  dataSeenBy(pod: string): string | undefined {
    const p = this.pods.get(pod);
    return p?.running ? this.claims.get(p.claim)?.data : undefined;
  }
}

function setUp(target: string) {
  const storage = new ZonalStorage();
  storage.claims.set('data-db-0', { zone: 'eu-west-1a', data: 'orders up to #8812', attachedTo: 'spot-a' });
  storage.pods.set('db-0', { node: 'spot-a', claim: 'data-db-0', running: true });
  const clock = new ManualClock(Date.parse('2026-05-28T14:03:00Z'));
  const store = new InMemoryMigrationStore();
  const machine = () =>
    new MigrationStateMachine({ store, clock, drivers: [new VolumeDriver({ runtime: storage, clock, pollMs: 1 })] });
  const spec: MigrationSpec = {
    workloadRef: { kind: 'StatefulSet', name: 'db' },
    pod: 'db-0',
    sourceNode: 'spot-a',
    targetNode: target,
    reason: 'notice',
    driver: 'volume',
  };
  return { storage, store, machine, spec };
}

describe('volume driver', () => {
  it('re-attaches the volume within its zone', async () => {
    const { storage, machine, spec } = setUp('spot-b');
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.driverState?.mode).toBe('reattach');
    expect(storage.pods.get('db-0')).toMatchObject({ node: 'spot-b', claim: 'data-db-0' });
    expect(storage.dataSeenBy('db-0')).toBe('orders up to #8812');
    expect(storage.violations).toEqual([]);
    expect(done.status?.bytesMoved).toBe(0);
  });

  it('takes the data to another zone through snapshots, and keeps no copies behind', async () => {
    const { storage, machine, spec } = setUp('spot-c');
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('Succeeded');
    expect(storage.pods.get('db-0')).toMatchObject({ node: 'spot-c', claim: 'data-db-0-eu-west-1b' });
    expect(storage.dataSeenBy('db-0')).toBe('orders up to #8812');
    expect(storage.violations).toEqual([]);
    expect(storage.snapshots.size).toBe(0);
    expect(storage.claims.has('data-db-0')).toBe(false);
    expect(done.status?.bytesMoved).toBe('orders up to #8812'.length);
  });

  it('carries writes made after the first snapshot (the final snapshot is taken after the stop)', async () => {
    const { storage, machine, spec } = setUp('spot-c');
    const sm = machine();
    const realStop = storage.stopPod.bind(storage);
    storage.stopPod = async pod => {
      // The application wrote between the pre-copy and the stop.
      const claim = storage.claims.get('data-db-0');
      if (claim && storage.pods.get(pod)?.running) claim.data = 'orders up to #8813';
      return realStop(pod);
    };
    await sm.plan('shop', 'm', spec);
    await sm.run('shop', 'm');
    expect(storage.dataSeenBy('db-0')).toBe('orders up to #8813');
  });

  it('rolls back to the source when the target zone cannot take the volume', async () => {
    const { storage, machine, spec } = setUp('spot-c');
    storage.failRestore = true;
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('RolledBack');
    expect(storage.pods.get('db-0')).toMatchObject({ node: 'spot-a', claim: 'data-db-0', running: true });
    expect(storage.dataSeenBy('db-0')).toBe('orders up to #8812');
    expect(storage.violations).toEqual([]);
  });

  it('ends the move at once, saying why, when the member is started off its target, and keeps it serving there', async () => {
    const { storage, machine, spec } = setUp('spot-b');
    storage.nodes['spot-d'] = 'eu-west-1a';
    // The placement webhook failed open: the scheduler put the member elsewhere in the zone.
    const realStart = storage.startPod.bind(storage);
    storage.startPod = (pod, _node, claim) => realStart(pod, 'spot-d', claim);
    const sm = machine();
    await sm.plan('shop', 'm', spec);
    const done = await sm.run('shop', 'm');
    expect(done.status?.phase).toBe('RolledBack');
    expect(done.status?.message).toMatch(/started on spot-d, not on the target spot-b: the placement webhook did not pin it/);
    expect(storage.pods.get('db-0')).toMatchObject({ node: 'spot-d', running: true });
    expect(storage.dataSeenBy('db-0')).toBe('orders up to #8812');
    expect(storage.violations).toEqual([]);
  });

  it.each([1, 2, 3, 4, 5, 6])(
    'resumes after the operator died at status write %d, with the data intact and one attachment',
    async crashAt => {
      const { storage, store, machine, spec } = setUp('spot-c');
      const update = store.updateStatus.bind(store);
      let writes = 0;
      store.updateStatus = async (m: Migration) => {
        if (++writes === crashAt) throw new Error('operator killed');
        return update(m);
      };
      await machine().plan('shop', 'm', spec);
      await expect(machine().run('shop', 'm')).rejects.toThrow('operator killed');
      const [done] = await machine().resumeAll();
      expect(done.status?.phase).toBe('Succeeded');
      expect(storage.dataSeenBy('db-0')).toBe('orders up to #8812');
      expect(storage.violations).toEqual([]);
    },
  );
});
