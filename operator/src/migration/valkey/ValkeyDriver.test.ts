/*
 * The valkey driver against real redis-server processes, each in its own PID
 * namespace inside a network namespace that plays a spot node. Clients reach
 * the store through a stable address that moves like a Service's backend.
 * Needs root and redis-server; fails (does not skip) without them.
 */
import type Valkey from 'iovalkey';
import { systemClock } from '../../core/clock';
import type { Migration, MigrationPhase } from '../../api/v1alpha1';
import { InMemoryMigrationStore, MigrationStore } from '../MigrationStore';
import { MigrationStateMachine } from '../MigrationStateMachine';
import { ValkeyDriver, SwitchoverMode } from './ValkeyDriver';
import { Testbed } from '../__testUtils__/Testbed';
import {
  TEST_ACCESS,
  TestbedValkeyRuntime,
  adminClient,
  startMember,
  VALKEY_PORT,
} from '../__testUtils__/valkeyMembers';
import { WriteLoad } from '../__testUtils__/WriteLoad';
import {
  SCENARIO_KEYS,
  bulkKeysPresent,
  populate,
  readScenarioKeys,
  writeScenarioKeys,
} from '../__testUtils__/scenario';
import { appClient } from '../__testUtils__/clients';
import { TLS_SERVER_NAME, makeCertificates } from '../__testUtils__/tls';
import { ValkeyAdmin } from './ValkeyAdmin';

/** A spot notice shorter than GCP's 30 s keeps the suite quick; the driver only needs seconds. */
const NOTICE_MS = 10_000;
/** A scenario's whole run: a FAILOVER of 20,000 keys took over 120 s in a fresh-clone run beside other suites. */
const SCENARIO_TIMEOUT_MS = 240_000;
const WRITE_RATE = 400;

interface Setup {
  bed: Testbed;
  runtime: TestbedValkeyRuntime;
  service: string;
  load: WriteLoad;
  app: Valkey;
}

async function setUp(bed: Testbed, source: string, sourceHost: string, bulkKeys: number): Promise<Setup> {
  const service = bed.serviceAddress(10);
  const runtime = new TestbedValkeyRuntime(bed, service);
  const member = await startMember(bed, source, sourceHost);
  runtime.adopt(member);
  await runtime.pointTo(member.endpoint);
  const admin = adminClient(member.endpoint);
  await admin.connect();
  await populate(admin, bulkKeys, 1024);
  admin.disconnect();
  const app = appClient(service, VALKEY_PORT);
  await writeScenarioKeys(app);
  const load = new WriteLoad({
    host: service,
    port: VALKEY_PORT,
    ratePerSec: WRITE_RATE,
    connections: 4,
    keyPrefix: `load:${source}`,
  });
  await load.start();
  return { bed, runtime, service, load, app };
}

function machine(store: MigrationStore, runtime: TestbedValkeyRuntime, switchover: SwitchoverMode = 'auto') {
  const driver = new ValkeyDriver({
    runtime,
    redirector: runtime,
    access: TEST_ACCESS,
    clock: systemClock,
    switchover,
  });
  return new MigrationStateMachine({ store, drivers: [driver], clock: systemClock });
}

function plan(sm: MigrationStateMachine, name: string, pod: string, from: string, to: string, noticeMs = NOTICE_MS) {
  return sm.plan('shop', name, {
    workloadRef: { kind: 'StatefulSet', name: 'cache' },
    pod,
    sourceNode: from,
    targetNode: to,
    reason: 'notice',
    driver: 'valkey',
    deadline: new Date(Date.now() + noticeMs).toISOString(),
  });
}

/** Roles of every member still running: exactly one primary is the invariant. */
async function primaries(runtime: TestbedValkeyRuntime): Promise<string[]> {
  const found: string[] = [];
  for (const member of runtime.members.values()) {
    const client = adminClient(member.endpoint);
    try {
      await client.connect();
      const role = (await client.call('ROLE')) as [string];
      if (role[0] === 'master') found.push(member.endpoint.name);
    } catch {
      // A member whose host is gone serves nobody.
    } finally {
      client.disconnect();
    }
  }
  return found;
}

async function expectNothingLost(s: Setup, bulkKeys: number): Promise<void> {
  const { load, app } = s;
  await load.stop();
  expect(load.ackedCount).toBeGreaterThan(0);
  expect(await load.lostWrites(app)).toEqual([]);
  expect(await readScenarioKeys(app)).toEqual({
    session: SCENARIO_KEYS.session.fields,
    jobs: [...SCENARIO_KEYS.jobs.items].reverse(),
    context: SCENARIO_KEYS.context.value,
  });
  expect(await bulkKeysPresent(app, bulkKeys)).toBe(bulkKeys);
}

describe('valkey driver with real servers', () => {
  let bed: Testbed;
  let setup: Setup | undefined;

  beforeAll(async () => {
    bed = await Testbed.create(['spot-a', 'spot-b', 'spot-c']);
  }, 30_000);

  afterEach(async () => {
    setup?.load.close();
    setup?.app.disconnect();
    await setup?.runtime.stopAll();
    setup = undefined;
  });

  afterAll(async () => {
    await bed?.destroy();
  }, 30_000);

  it(
    'hands a member off under write load; the source node then dies and nothing is lost',
    async () => {
      const BULK = 100_000; // ~100 MiB of 1 KiB values
      setup = await setUp(bed, 'cache-0', 'spot-a', BULK);
      const store = new InMemoryMigrationStore();
      const sm = machine(store, setup.runtime);
      const planned = await plan(sm, 'cache-0-notice', 'cache-0', 'spot-a', 'spot-b');
      const done = await sm.run('shop', planned.metadata.name);

      expect(done.status?.phase).toBe('Succeeded');
      expect(done.status?.phases.map(p => p.phase)).toEqual([
        'Planned', 'PreparingTarget', 'Transferring', 'SwitchingOver', 'Verifying', 'CleaningUp',
      ]);
      expect(done.status?.phases.every(p => p.finishedAt)).toBe(true);
      expect(done.status?.bytesMoved).toBeGreaterThan(BULK * 1024);
      expect(done.status?.writePauseMs).toBeGreaterThanOrEqual(0);
      // Where the pause went is on the record, part by part, and adds up to the pause.
      const steps = done.status?.driverState?.switchStepsMs ?? '';
      expect(steps.split(', ').map(s => s.split(' ')[0])).toEqual([
        'pause', 'drain', 'promote', 'demote', 'redirect', 'disconnect', 'unpause',
      ]);
      const stepsTotal = steps.split(', ').reduce((sum, s) => sum + Number(s.split(' ')[1]), 0);
      expect(stepsTotal).toBeLessThanOrEqual(done.status!.writePauseMs!);
      expect(stepsTotal).toBeGreaterThanOrEqual(done.status!.writePauseMs! - 5);
      expect(await primaries(setup.runtime)).toEqual([done.status?.targetPod]);
      expect(setup.runtime.members.has('cache-0')).toBe(false);

      // The notice runs out: the spot node is reclaimed with whatever still ran on it.
      const left = Date.parse(planned.spec.deadline!) - Date.now();
      await new Promise(r => setTimeout(r, Math.max(0, left)));
      await bed.destroyHost('spot-a');
      await new Promise(r => setTimeout(r, 500));
      await expectNothingLost(setup, BULK);
      await bed.addHost('spot-a');
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'switches with the server\'s FAILOVER when configured to, losing nothing',
    async () => {
      const BULK = 20_000;
      setup = await setUp(bed, 'cache-1', 'spot-b', BULK);
      const sm = machine(new InMemoryMigrationStore(), setup.runtime, 'failover');
      const planned = await plan(sm, 'cache-1-failover', 'cache-1', 'spot-b', 'spot-c');
      const done = await sm.run('shop', planned.metadata.name);
      expect(done.status?.phase).toBe('Succeeded');
      expect(await primaries(setup.runtime)).toEqual([done.status?.targetPod]);
      await expectNothingLost(setup, BULK);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

/** A store that "kills the operator" at its Nth status write: the write never lands. */
class CrashingStore extends InMemoryMigrationStore {
  crashAtWrite?: number;
  private writes = 0;

  async updateStatus(migration: Migration): Promise<Migration> {
    this.writes++;
    if (this.writes === this.crashAtWrite) {
      throw new Error(`operator killed before recording ${migration.status?.phase}`);
    }
    return super.updateStatus(migration);
  }
}

describe('valkey driver: the operator killed in each phase', () => {
  let bed: Testbed;
  let setup: Setup | undefined;

  beforeAll(async () => {
    bed = await Testbed.create(['spot-a', 'spot-b']);
  }, 30_000);

  afterEach(async () => {
    setup?.load.close();
    setup?.app.disconnect();
    await setup?.runtime.stopAll();
    setup = undefined;
  });

  afterAll(async () => {
    await bed?.destroy();
  }, 30_000);

  // Write N records the end of the Nth step; a crash there means the step did its
  // work but the successor finds the previous phase and runs the step again.
  const crashes: Array<[MigrationPhase, number]> = [
    ['Planned', 1],
    ['PreparingTarget', 2],
    ['Transferring', 3],
    ['SwitchingOver', 4],
    ['Verifying', 5],
    ['CleaningUp', 6],
  ];

  it.each(crashes)(
    'resumes when killed after the %s step ran but before it was recorded (write %d): one primary, nothing lost',
    async (_phase, write) => {
      const BULK = 10_000;
      const pod = `crash-${write}`;
      setup = await setUp(bed, pod, 'spot-a', BULK);
      const store = new CrashingStore();
      store.crashAtWrite = write;
      const first = machine(store, setup.runtime);
      const planned = await plan(first, `${pod}-m`, pod, 'spot-a', 'spot-b');
      await expect(first.run('shop', planned.metadata.name)).rejects.toThrow('operator killed');

      // A new operator process: new state machine, new driver, same cluster.
      const [done] = await machine(store, setup.runtime).resumeAll();
      expect(['Succeeded', 'RolledBack']).toContain(done.status?.phase);
      const serving = await primaries(setup.runtime);
      expect(serving).toHaveLength(1);
      expect(await setup.runtime.current()).toBe(serving[0]);
      await expectNothingLost(setup, BULK);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'resumes after a crash in the middle of the switch (roles swapped, clients not yet redirected)',
    async () => {
      const BULK = 10_000;
      setup = await setUp(bed, 'crash-mid', 'spot-a', BULK);
      const store = new InMemoryMigrationStore();
      const runtime = setup.runtime;
      const operatorProcess = new AbortController();
      const realPointTo = runtime.pointTo.bind(runtime);
      let armed = true;
      runtime.pointTo = async member => {
        if (armed && member.name !== 'crash-mid') {
          armed = false;
          operatorProcess.abort(new Error('operator killed mid-switch'));
          throw new Error('operator killed mid-switch');
        }
        return realPointTo(member);
      };
      const planned = await plan(machine(store, runtime), 'crash-mid-m', 'crash-mid', 'spot-a', 'spot-b');
      await expect(
        machine(store, runtime).run('shop', planned.metadata.name, operatorProcess.signal),
      ).rejects.toThrow('mid-switch');
      expect((await store.get('shop', 'crash-mid-m'))?.status?.phase).toBe('SwitchingOver');

      const [done] = await machine(store, runtime).resumeAll();
      expect(done.status?.phase).toBe('Succeeded');
      expect(await primaries(runtime)).toEqual([done.status?.targetPod]);
      expect(await runtime.current()).toBe(done.status?.targetPod);
      await expectNothingLost(setup, BULK);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

describe('valkey driver: the no-demotion rule', () => {
  let bed: Testbed;
  let setup: Setup | undefined;

  beforeAll(async () => {
    bed = await Testbed.create(['spot-a', 'spot-b']);
  }, 30_000);

  afterAll(async () => {
    setup?.load.close();
    setup?.app.disconnect();
    await setup?.runtime.stopAll();
    await bed?.destroy();
  }, 30_000);

  it(
    'never demotes a primary whose replica is not in sync',
    async () => {
      setup = await setUp(bed, 'nosync', 'spot-a', 1_000);
      const source = setup.runtime.members.get('nosync')!;
      const target = await startMember(bed, 'nosync-t', 'spot-b');
      setup.runtime.adopt(target);
      // A replica that can never sync: its replication password is wrong.
      const admin = adminClient(target.endpoint);
      await admin.connect();
      await admin.call('CONFIG', 'SET', 'masterauth', 'wrong-password');
      await admin.call('REPLICAOF', source.endpoint.host, VALKEY_PORT);
      admin.disconnect();

      const driver = new ValkeyDriver({
        runtime: setup.runtime,
        redirector: setup.runtime,
        access: TEST_ACCESS,
        clock: systemClock,
      });
      const state: Record<string, string> = {
        sourceName: 'nosync', sourceNode: 'spot-a', sourceHost: source.endpoint.host, sourcePort: String(VALKEY_PORT),
        targetName: 'nosync-t', targetNode: 'spot-b', targetHost: target.endpoint.host, targetPort: String(VALKEY_PORT),
      };
      const ctx = {
        migration: {} as Migration,
        state,
        clock: systemClock,
        signal: new AbortController().signal,
        addBytesMoved: () => {},
        recordWritePause: () => {},
        recordAtRisk: () => {},
        note: () => {},
      };
      await expect(driver.switchOver(ctx)).rejects.toThrow(/not in sync/);
      expect(await primaries(setup.runtime)).toEqual(['nosync']);
      expect(await setup.runtime.current()).toBe('nosync');
      await expectNothingLost(setup, 1_000);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

describe('valkey driver: nodes lost during the move', () => {
  let bed: Testbed;
  let setup: Setup | undefined;

  beforeEach(async () => {
    bed = await Testbed.create(['spot-a', 'spot-b']);
  }, 30_000);

  afterEach(async () => {
    setup?.load.close();
    setup?.app.disconnect();
    await setup?.runtime.stopAll();
    setup = undefined;
    await bed?.destroy();
  }, 30_000);

  it(
    'rolls back when the target node dies mid-transfer; the source keeps serving',
    async () => {
      const BULK = 100_000;
      setup = await setUp(bed, 'cache-t', 'spot-a', BULK);
      const store = new InMemoryMigrationStore();
      const sm = machine(store, setup.runtime);
      const planned = await plan(sm, 'cache-t-m', 'cache-t', 'spot-a', 'spot-b', 60_000);
      const running = sm.run('shop', planned.metadata.name);
      // Wait until the new member is syncing, then reclaim its node.
      const watcher = adminClient({ host: bed.host('spot-b').address, port: VALKEY_PORT });
      for (;;) {
        const m = await store.get('shop', 'cache-t-m');
        if (m?.status?.phase === 'Transferring') break;
        await new Promise(r => setTimeout(r, 5));
      }
      watcher.disconnect();
      await bed.destroyHost('spot-b');
      const done = await running;

      expect(done.status?.phase).toBe('RolledBack');
      expect(done.status?.failedPhase).toBe('Transferring');
      expect(await primaries(setup.runtime)).toEqual(['cache-t']);
      expect(await setup.runtime.current()).toBe('cache-t');
      // Still serving writes: the running load keeps being acknowledged ...
      const ackedBefore = setup.load.ackedCount;
      for (let waited = 0; waited < 2_000 && setup.load.ackedCount <= ackedBefore + 10; waited += 20) {
        await new Promise(r => setTimeout(r, 20));
      }
      expect(setup.load.ackedCount).toBeGreaterThan(ackedBefore + 10);
      // ... and a client that connects now through the stable address is served too.
      const fresh = appClient(setup.service, VALKEY_PORT);
      try {
        expect(await fresh.set('after-rollback', 'served')).toBe('OK');
        expect(await fresh.get('after-rollback')).toBe('served');
      } finally {
        fresh.disconnect();
      }
      await expectNothingLost(setup, BULK);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'promotes the replica when the source node dies before the notice ends, and reports what was at risk',
    async () => {
      const BULK = 20_000;
      setup = await setUp(bed, 'cache-s', 'spot-a', BULK);
      const store = new InMemoryMigrationStore();
      const driver = new ValkeyDriver({
        runtime: setup.runtime,
        redirector: setup.runtime,
        access: TEST_ACCESS,
        clock: systemClock,
      });
      // The node goes the moment the replica has caught up, before the switch.
      const realSwitch = driver.switchOver.bind(driver);
      let reclaimed = false;
      driver.switchOver = async ctx => {
        if (!reclaimed) {
          reclaimed = true;
          await bed.destroyHost('spot-a');
        }
        return realSwitch(ctx);
      };
      const sm = new MigrationStateMachine({ store, drivers: [driver], clock: systemClock });
      const planned = await plan(sm, 'cache-s-m', 'cache-s', 'spot-a', 'spot-b');
      const done = await sm.run('shop', planned.metadata.name);

      expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(/^Succeeded/);
      const atRisk = done.status?.atRisk;
      expect(atRisk?.promotedMember).toBe(done.status?.targetPod);
      expect(atRisk!.bytes).toBe(Math.max(0, atRisk!.lastSeenSourceOffset - atRisk!.promotedOffset));
      expect(await primaries(setup.runtime)).toEqual([done.status?.targetPod]);
      expect(await setup.runtime.current()).toBe(done.status?.targetPod);

      await setup.load.stop();
      const lost = await setup.load.lostWrites(setup.app);
      // The report must not claim safety it did not have: any lost write was either
      // inside the reported byte window or acknowledged after the source was last seen.
      const lastSeen = Date.parse(atRisk!.lastSeenAt);
      const unreported = atRisk!.bytes === 0 ? lost.filter(w => w.ackedAt < lastSeen) : [];
      expect(unreported).toEqual([]);
      expect(await readScenarioKeys(setup.app)).toEqual({
        session: SCENARIO_KEYS.session.fields,
        jobs: [...SCENARIO_KEYS.jobs.items].reverse(),
        context: SCENARIO_KEYS.context.value,
      });
      expect(await bulkKeysPresent(setup.app, BULK)).toBe(BULK);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

describe('valkey driver over TLS', () => {
  let bed: Testbed;
  let runtime: TestbedValkeyRuntime | undefined;
  let load: WriteLoad | undefined;
  let app: Valkey | undefined;
  let certs: ReturnType<typeof makeCertificates>;

  beforeAll(async () => {
    certs = makeCertificates();
    bed = await Testbed.create(['spot-a', 'spot-b']);
  }, 30_000);

  afterAll(async () => {
    load?.close();
    app?.disconnect();
    await runtime?.stopAll();
    await bed?.destroy();
    certs?.remove();
  }, 30_000);

  it(
    'hands off with TLS on every connection: operator, replication and clients',
    async () => {
      const tlsArgs = [
        '--port', '0',
        '--tls-port', String(VALKEY_PORT),
        '--tls-cert-file', certs.certFile,
        '--tls-key-file', certs.keyFile,
        '--tls-ca-cert-file', certs.caFile,
        '--tls-auth-clients', 'no',
        '--tls-replication', 'yes',
      ];
      const tls = { ca: certs.ca, servername: TLS_SERVER_NAME };
      const access = { ...TEST_ACCESS, tls };
      const service = bed.serviceAddress(30);
      const startTlsMember = (name: string, node: string) =>
        startMember(bed, name, node, tlsArgs, undefined, access);
      // Members whose only port speaks TLS; the runtime starts the target the same way.
      const tlsRuntime = new (class extends TestbedValkeyRuntime {
        async startMember(name: string, node: string) {
          const existing = this.members.get(name);
          if (existing) return existing.endpoint;
          const member = await startTlsMember(name, node);
          this.members.set(name, member);
          return member.endpoint;
        }
      })(bed, service);
      runtime = tlsRuntime;
      const source = await startTlsMember('cache-tls', 'spot-a');
      tlsRuntime.adopt(source);
      await tlsRuntime.pointTo(source.endpoint);

      app = appClient(service, VALKEY_PORT, tls);
      await writeScenarioKeys(app);
      load = new WriteLoad({ host: service, port: VALKEY_PORT, ratePerSec: 200, connections: 2, keyPrefix: 'tls', tls });
      await load.start();

      const driver = new ValkeyDriver({ runtime: tlsRuntime, redirector: tlsRuntime, access, clock: systemClock });
      const sm = new MigrationStateMachine({ store: new InMemoryMigrationStore(), drivers: [driver], clock: systemClock });
      const planned = await plan(sm, 'cache-tls-m', 'cache-tls', 'spot-a', 'spot-b');
      const done = await sm.run('shop', planned.metadata.name);
      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(/^Succeeded/);

      const target = tlsRuntime.members.get(done.status!.targetPod!)!;
      const role = await ValkeyAdmin.with(target.endpoint, access, a => a.replication());
      expect(role.role).toBe('master');
      await load.stop();
      expect(load.ackedCount).toBeGreaterThan(0);
      expect(await load.lostWrites(app)).toEqual([]);
      expect(await readScenarioKeys(app)).toEqual({
        session: SCENARIO_KEYS.session.fields,
        jobs: [...SCENARIO_KEYS.jobs.items].reverse(),
        context: SCENARIO_KEYS.context.value,
      });
      // A client that does not trust the CA is refused: the link really is TLS.
      const stranger = appClient(service, VALKEY_PORT, { servername: TLS_SERVER_NAME });
      stranger.options.retryStrategy = () => null;
      await expect(stranger.ping()).rejects.toThrow();
      stranger.disconnect();
    },
    SCENARIO_TIMEOUT_MS,
  );
});
