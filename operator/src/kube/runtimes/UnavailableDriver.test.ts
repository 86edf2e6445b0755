import { MigrationStateMachine } from '../../migration/MigrationStateMachine';
import { InMemoryMigrationStore } from '../../migration/MigrationStore';
import { UnavailableDriver } from './UnavailableDriver';

describe('UnavailableDriver', () => {
  it('rolls its migration back at once, saying which method is missing and why', async () => {
    const machine = new MigrationStateMachine({
      store: new InMemoryMigrationStore(),
      drivers: [new UnavailableDriver('volume', 'no snapshot runtime')],
      clock: { now: () => Date.now() },
    });
    await machine.plan('shop', 'm-1', {
      workloadRef: { kind: 'StatefulSet', name: 'db' },
      pod: 'db-0',
      sourceNode: 'spot-a',
      reason: 'notice',
      driver: 'volume',
    });
    const done = await machine.run('shop', 'm-1');
    expect(done.status).toMatchObject({
      phase: 'RolledBack',
      failedPhase: 'PreparingTarget',
      bytesMoved: 0,
    });
    expect(done.status?.message).toContain(
      'the volume migration method is not available on this operator: no snapshot runtime',
    );
  });
});
