/*
 * What survives a move besides the data, method by method, on every server the
 * project runs (Valkey 9.1, Valkey 8.1, Redis 7.0), with real clients through the
 * stable address: connections, pub/sub on channels and patterns under a steady
 * publisher, BLPOP/BRPOP/XREAD BLOCK waiters while items are pushed, MULTI/EXEC
 * and Lua in flight, keys with a TTL, and a herd of idle clients. Then `auto`
 * measures two workloads on real servers and must choose differently for them.
 * Needs root, CRIU (scripts/lib/criu.sh) and the servers (scripts/lib/valkey.sh);
 * fails, does not skip, without them.
 */
import { rmSync } from 'node:fs';
import { chooseMethod } from '../core/methodChoice';
import { systemClock } from '../core/clock';
import { InMemoryMigrationStore } from './MigrationStore';
import { MigrationStateMachine } from './MigrationStateMachine';
import { ValkeyDriver } from './valkey/ValkeyDriver';
import { CheckpointDriver } from './checkpoint/CheckpointDriver';
import { measureServer } from './valkey/serverFacts';
import { Testbed } from './__testUtils__/Testbed';
import { TestbedAgents, TestbedCheckpointRuntime, criuCommand } from './__testUtils__/agents';
import {
  TEST_ACCESS,
  TEST_SERVERS,
  TestMember,
  TestServer,
  TestbedValkeyRuntime,
  VALKEY_PORT,
  adminClient,
  serverCommand,
  startMember,
} from './__testUtils__/valkeyMembers';
import { WriteLoad } from './__testUtils__/WriteLoad';
import { appClient } from './__testUtils__/clients';
import { SurvivalProbe, Survives } from './__testUtils__/SurvivalProbe';
import { MOVE_METHODS, MoveMethod, clearHosts, moveMember, placeClientAddress } from './__testUtils__/moves';
import { bulkKeysPresent, populate } from './__testUtils__/scenario';
import { measureLink } from './__testUtils__/link';

const TEST_TIMEOUT_MS = 180_000;
const BULK_KEYS = 5_000;
const WRITE_RATE = 300;
const NOTICE_MS = 30_000;
/** The TTL of a key that moved may differ from what it should be by replication and clock reads, not more. */
const TTL_TOLERANCE_MS = 1_000;

interface Moved {
  survives: Survives;
  lostAcked: number;
  acked: number;
  lostKeys: number;
}

describe.each(TEST_SERVERS)('what survives a move on %s', server => {
  let bed: Testbed;
  let agents: TestbedAgents;
  const dirs: string[] = [];

  beforeAll(async () => {
    serverCommand(server);
    criuCommand();
    bed = await Testbed.create(['spot-a', 'spot-b']);
    agents = new TestbedAgents(bed);
    await agents.start('spot-a');
    await agents.start('spot-b');
  }, 120_000);

  afterEach(async () => {
    await clearHosts(bed, ['spot-a', 'spot-b']);
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  afterAll(async () => {
    await bed?.destroy();
    agents?.cleanUp();
  }, 30_000);

  async function moveWithProbe(method: MoveMethod, index: number): Promise<Moved> {
    const service = bed.serviceAddress(10 + index);
    const runtime = new TestbedValkeyRuntime(bed, service, server as TestServer);
    const source = await startMember(bed, `s-${method}`, 'spot-a', [], undefined, TEST_ACCESS, server as TestServer);
    dirs.push(source.dir);
    runtime.adopt(source);
    await placeClientAddress({ bed, runtime, source, service, from: 'spot-a' }, method);
    const admin = adminClient(source.endpoint);
    await admin.connect();
    await populate(admin, BULK_KEYS, 1024);
    admin.disconnect();
    const load = new WriteLoad({ host: service, port: VALKEY_PORT, ratePerSec: WRITE_RATE, connections: 4, keyPrefix: `load:${method}` });
    const probe = new SurvivalProbe({ host: service, port: VALKEY_PORT, prefix: `p:${method}` });
    const app = appClient(service, VALKEY_PORT);
    try {
      await probe.start();
      await load.start();
      await new Promise(r => setTimeout(r, 500));
      probe.moveStarted();
      const outcome = await moveMember(
        { bed, runtime, agents, source, service, from: 'spot-a', to: 'spot-b', noticeMs: NOTICE_MS },
        method,
      );
      dirs.push(...outcome.extraMembers.map(m => m.dir));
      probe.moveEnded();
      await new Promise(r => setTimeout(r, 500));
      await load.stop();
      const survives = await probe.finish();
      const lost = await load.lostWrites(app);
      return {
        survives,
        lostAcked: lost.length,
        acked: load.ackedCount,
        lostKeys: BULK_KEYS - (await bulkKeysPresent(app, BULK_KEYS)),
      };
    } finally {
      probe.close();
      load.close();
      app.disconnect();
      await runtime.stopAll();
    }
  }

  /** What each method must keep; `expect.anything()` where it makes no promise. */
  const PROMISES: Record<MoveMethod, Record<string, unknown>> = {
    // Ferry's hand-off keeps everything acknowledged, but every client reconnects at once.
    valkey: { data: true, ackedWrites: true, ttl: true, wholeTransactions: true, warmStore: true, connections: 'none', exactlyOnceItems: true, everyMessage: true, herdAtOnce: true },
    // The checkpoint moves the process with its sockets: nobody reconnects.
    checkpoint: { data: true, ackedWrites: true, ttl: true, wholeTransactions: true, warmStore: true, connections: 'all', exactlyOnceItems: true, everyMessage: true, herdAtOnce: false },
    // A restart from RDB keeps the data and TTLs; its clients all reconnect after it.
    'rdb-restart': { data: true, ackedWrites: true, ttl: true, wholeTransactions: true, warmStore: true, connections: 'none', exactlyOnceItems: expect.anything(), everyMessage: expect.anything(), herdAtOnce: expect.anything() },
    // The baseline loses what the post lists: data, TTL'd keys, acknowledged writes, a warm store.
    'no-persistence': { data: false, ackedWrites: false, ttl: false, wholeTransactions: expect.anything(), warmStore: false, connections: 'none', exactlyOnceItems: expect.anything(), everyMessage: expect.anything(), herdAtOnce: expect.anything() },
  };

  it.each(MOVE_METHODS.map((m, i) => [m, i] as const))(
    '%s',
    async (method, index) => {
      const moved = await moveWithProbe(method, index);
      const s = moved.survives;
      let connections = 'some';
      if (s.connectionsKept === s.connections) connections = 'all';
      if (s.connectionsKept === 0) connections = 'none';
      expect(moved.acked).toBeGreaterThan(0);
      expect({
        data: moved.lostKeys === 0,
        ackedWrites: moved.lostAcked === 0,
        ttl: s.ttlDriftMs !== null && s.ttlDriftMs <= TTL_TOLERANCE_MS,
        wholeTransactions: s.partialTransactions === 0,
        warmStore: s.herdMisses === 0,
        connections,
        exactlyOnceItems: s.blockedLost === 0 && s.blockedDuplicated === 0,
        everyMessage: s.pubsubLost === 0 && s.pubsubReceived.after > 0,
        herdAtOnce: s.herdReconnected > 0,
      }).toEqual(PROMISES[method]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('auto chooses per move from what it measures', () => {
  let bed: Testbed;
  let agents: TestbedAgents;
  const members: TestMember[] = [];

  beforeAll(async () => {
    criuCommand();
    bed = await Testbed.create(['spot-a', 'spot-b']);
    agents = new TestbedAgents(bed);
    await agents.start('spot-a');
    await agents.start('spot-b');
  }, 120_000);

  afterAll(async () => {
    await clearHosts(bed, ['spot-a', 'spot-b']);
    for (const m of members) rmSync(m.dir, { recursive: true, force: true });
    await bed?.destroy();
    agents?.cleanUp();
  }, 30_000);

  it(
    'hands off a plain cache and checkpoints a store with subscribers and blocked clients, recording why on each Migration',
    async () => {
      const server: TestServer = 'valkey-9.1';
      const link = await measureLink(bed, 'spot-a', 'spot-b', 64 * 2 ** 20);
      const workloads = [
        { pod: 'cache-0', service: bed.serviceAddress(40), clients: false },
        { pod: 'events-0', service: bed.serviceAddress(41), clients: true },
      ];
      const chosen: Record<string, { method: string; reason?: string; survives?: Survives }> = {};
      for (const w of workloads) {
        const runtime = new TestbedValkeyRuntime(bed, w.service, server);
        const source = await startMember(bed, w.pod, 'spot-a', [], undefined, TEST_ACCESS, server);
        members.push(source);
        runtime.adopt(source);
        // The store with subscribers is expected to be checkpointed: its clients use the pod's address.
        await placeClientAddress({ bed, runtime, source, service: w.service, from: 'spot-a' }, w.clients ? 'checkpoint' : 'valkey');
        const admin = adminClient(source.endpoint);
        await admin.connect();
        await populate(admin, BULK_KEYS, 1024);
        admin.disconnect();
        const probe = w.clients ? new SurvivalProbe({ host: w.service, port: VALKEY_PORT, prefix: w.pod }) : undefined;
        try {
          await probe?.start();
          // What auto measures: the server and its clients, the dataset, a 30 s notice,
          // the link, and the runtime class (the testbed's nodes run Ferry's agents).
          const measured = await measureServer(source.endpoint, TEST_ACCESS);
          expect(measured.kind).toBe('valkey');
          expect(measured.version).toEqual([9, 1]);
          const choice = chooseMethod({
            server: measured,
            stateBytes: measured.datasetBytes,
            timeLeftMs: NOTICE_MS,
            linkBytesPerSec: link,
            ferryRuntime: true,
          });
          expect(choice.fits).toBe(true);
          const pods = new TestbedCheckpointRuntime(bed);
          pods.pods.set(w.pod, { member: source, address: w.service });
          const driver =
            choice.method === 'valkey'
              ? new ValkeyDriver({ runtime, redirector: runtime, access: TEST_ACCESS, clock: systemClock })
              : new CheckpointDriver({ runtime: pods, agents, clock: systemClock });
          const sm = new MigrationStateMachine({ store: new InMemoryMigrationStore(), drivers: [driver], clock: systemClock });
          probe?.moveStarted();
          await sm.plan(
            'shop',
            `${w.pod}-notice`,
            {
              workloadRef: { kind: 'StatefulSet', name: w.pod.replace(/-0$/, '') },
              pod: w.pod,
              sourceNode: 'spot-a',
              targetNode: 'spot-b',
              reason: 'notice',
              driver: choice.method as 'valkey' | 'checkpoint',
              deadline: new Date(Date.now() + NOTICE_MS).toISOString(),
            },
            choice.reason,
          );
          const done = await sm.run('shop', `${w.pod}-notice`);
          probe?.moveEnded();
          expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(/^Succeeded/);
          chosen[w.pod] = { method: done.spec.driver, reason: done.status?.methodReason, survives: await probe?.finish() };
        } finally {
          probe?.close();
          await runtime.stopAll();
        }
      }
      expect(chosen['cache-0'].method).toBe('valkey');
      expect(chosen['cache-0'].reason).toMatch(/^valkey: valkey 9\.1, .*30\.0 s left.*live hand-off/);
      expect(chosen['events-0'].method).toBe('checkpoint');
      expect(chosen['events-0'].reason).toMatch(/^checkpoint: .*subscribed and \d+ blocked clients keep their connections/);
      const s = chosen['events-0'].survives!;
      expect(s.connectionsKept).toBe(s.connections);
      expect(s.pubsubLost).toBe(0);
      expect(s.blockedLost).toBe(0);
      expect(s.blockedDuplicated).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
