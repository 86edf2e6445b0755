import { ManualClock } from '../core/clock';
import type { Migration, MigrationSpec } from '../api/v1alpha1';
import {
  MigrationDriver,
  MigrationStepContext,
  SourceLostError,
  TargetLostError,
} from './MigrationDriver';
import { InMemoryMigrationStore, MigrationConflictError } from './MigrationStore';
import { MigrationStateMachine } from './MigrationStateMachine';

type Step = 'prepareTarget' | 'transfer' | 'switchOver' | 'verify' | 'cleanUp' | 'rollBack' | 'salvage';

/** A driver that records its calls and fails where told. */
class ScriptedDriver implements MigrationDriver {
  readonly method = 'reschedule' as const;
  readonly calls: Step[] = [];
  failures = new Map<Step, Error[]>();

  private async step(name: Step, ctx: MigrationStepContext): Promise<void> {
    this.calls.push(name);
    ctx.state[name] = String(Number(ctx.state[name] ?? 0) + 1);
    const queued = this.failures.get(name);
    const failure = queued?.shift();
    if (failure) throw failure;
    if (name === 'transfer') ctx.addBytesMoved(1000);
    if (name === 'switchOver') ctx.recordWritePause(42);
  }

  prepareTarget = (ctx: MigrationStepContext) => this.step('prepareTarget', ctx);
  transfer = (ctx: MigrationStepContext) => this.step('transfer', ctx);
  switchOver = (ctx: MigrationStepContext) => this.step('switchOver', ctx);
  verify = (ctx: MigrationStepContext) => this.step('verify', ctx);
  cleanUp = (ctx: MigrationStepContext) => this.step('cleanUp', ctx);
  rollBack = (ctx: MigrationStepContext) => this.step('rollBack', ctx);
  salvage = (ctx: MigrationStepContext) => this.step('salvage', ctx);
}

const spec: MigrationSpec = {
  workloadRef: { kind: 'StatefulSet', name: 'cache' },
  pod: 'cache-0',
  sourceNode: 'spot-a',
  targetNode: 'spot-b',
  reason: 'notice',
  driver: 'reschedule',
};

function setUp(storeImpl = new InMemoryMigrationStore()) {
  const clock = new ManualClock(Date.parse('2026-05-28T14:03:00Z'));
  const driver = new ScriptedDriver();
  const sm = new MigrationStateMachine({ store: storeImpl, drivers: [driver], clock });
  return { clock, driver, sm, store: storeImpl };
}

describe('MigrationStateMachine', () => {
  it('runs every phase in order, persisting after each step', async () => {
    const store = new InMemoryMigrationStore();
    const seen: string[] = [];
    const update = store.updateStatus.bind(store);
    store.updateStatus = async (m: Migration) => {
      seen.push(m.status!.phase);
      return update(m);
    };
    const { sm, driver } = setUp(store);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');

    expect(driver.calls).toEqual(['prepareTarget', 'transfer', 'switchOver', 'verify', 'cleanUp']);
    expect(seen).toEqual(['PreparingTarget', 'Transferring', 'SwitchingOver', 'Verifying', 'CleaningUp', 'Succeeded']);
    expect(done.status).toMatchObject({ phase: 'Succeeded', bytesMoved: 1000, writePauseMs: 42 });
    expect(done.status?.completedAt).toBeDefined();
    expect(done.status?.driverState).toMatchObject({ transfer: '1', switchOver: '1' });
  });

  it('retries a phase that fails transiently, then carries on', async () => {
    const { sm, driver } = setUp();
    driver.failures.set('transfer', [new Error('connection reset')]);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    expect(done.status?.phase).toBe('Succeeded');
    expect(driver.calls.filter(c => c === 'transfer')).toHaveLength(2);
    // Bytes of the failed attempt are not counted.
    expect(done.status?.bytesMoved).toBe(1000);
  });

  it('rolls back at once when the target is lost', async () => {
    const { sm, driver } = setUp();
    driver.failures.set('transfer', [new TargetLostError('spot-b reclaimed')]);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    expect(done.status).toMatchObject({ phase: 'RolledBack', failedPhase: 'Transferring' });
    expect(driver.calls).toEqual(['prepareTarget', 'transfer', 'rollBack']);
  });

  it('rolls back after a phase keeps failing', async () => {
    const { sm, driver } = setUp();
    driver.failures.set('switchOver', [new Error('a'), new Error('b'), new Error('c')]);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    expect(done.status?.phase).toBe('RolledBack');
    expect(driver.calls.filter(c => c === 'switchOver')).toHaveLength(3);
  });

  it('salvages when the source is lost before the switch, then verifies', async () => {
    const { sm, driver } = setUp();
    driver.failures.set('transfer', [new SourceLostError('spot-a gone')]);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    expect(driver.calls).toEqual(['prepareTarget', 'transfer', 'salvage', 'verify', 'cleanUp']);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.message).toMatch(/source lost in Transferring/);
  });

  it('fails, and says the target serves, when only cleanup keeps failing', async () => {
    const { sm, driver } = setUp();
    driver.failures.set('cleanUp', [new Error('x'), new Error('y'), new Error('z')]);
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.message).toMatch(/target serves/);
    expect(driver.calls).not.toContain('rollBack');
  });

  it('fails when the notice already ran out before the move began and there is nothing to salvage', async () => {
    const { sm, driver, clock } = setUp();
    driver.failures.set('salvage', [new Error('no copy')]);
    await sm.plan('ns', 'm1', { ...spec, deadline: new Date(clock.now() - 1).toISOString() });
    const done = await sm.run('ns', 'm1');
    expect(done.status?.phase).toBe('Failed');
    expect(driver.calls).toEqual(['salvage']);
  });

  it('resumes from the recorded phase after a crash, re-running only the unrecorded step', async () => {
    const store = new InMemoryMigrationStore();
    const update = store.updateStatus.bind(store);
    let writes = 0;
    store.updateStatus = async (m: Migration) => {
      if (++writes === 3) throw new Error('operator killed');
      return update(m);
    };
    const first = setUp(store);
    await first.sm.plan('ns', 'm1', spec);
    await expect(first.sm.run('ns', 'm1')).rejects.toThrow('operator killed');
    expect((await store.get('ns', 'm1'))?.status?.phase).toBe('Transferring');

    const second = setUp(store);
    const [done] = await second.sm.resumeAll();
    expect(done.status?.phase).toBe('Succeeded');
    expect(second.driver.calls).toEqual(['transfer', 'switchOver', 'verify', 'cleanUp']);
    // The first run's transfer did not reach the store; its bytes are not double-counted.
    expect(done.status?.bytesMoved).toBe(1000);
  });

  it('stops without recording anything when the operator is shutting down', async () => {
    const { sm, driver, store } = setUp();
    const shutdown = new AbortController();
    driver.failures.set('transfer', [new Error('interrupted')]);
    driver.transfer = async () => {
      shutdown.abort();
      throw new Error('interrupted');
    };
    await sm.plan('ns', 'm1', spec);
    await expect(sm.run('ns', 'm1', shutdown.signal)).rejects.toThrow('interrupted');
    expect((await store.get('ns', 'm1'))?.status?.phase).toBe('Transferring');
  });

  it('records how long each phase took', async () => {
    const { sm, clock, driver } = setUp();
    driver.transfer = async () => {
      clock.advance(1500);
    };
    await sm.plan('ns', 'm1', spec);
    const done = await sm.run('ns', 'm1');
    const transferring = done.status!.phases.find(p => p.phase === 'Transferring')!;
    expect(Date.parse(transferring.finishedAt!) - Date.parse(transferring.startedAt)).toBe(1500);
  });
});

describe('InMemoryMigrationStore', () => {
  it('refuses a stale write, as the Kubernetes API does', async () => {
    const store = new InMemoryMigrationStore();
    const { sm } = setUp(store);
    const created = await sm.plan('ns', 'm1', spec);
    await store.updateStatus(created);
    await expect(store.updateStatus(created)).rejects.toBeInstanceOf(MigrationConflictError);
    await expect(sm.plan('ns', 'm1', spec)).rejects.toBeInstanceOf(MigrationConflictError);
  });
});
