/*
 * The checkpoint driver for real: redis-server in its own PID namespace on one
 * network namespace, dumped by CRIU through Ferry's node agent there, streamed to
 * the agent on a second network namespace and restored, with the pod's address
 * moving along. Needs root, redis-server and CRIU 4.2.1 (scripts/lib/criu.sh);
 * fails, does not skip, without them.
 */
import type Valkey from 'iovalkey';
import { rmSync } from 'node:fs';
import { systemClock } from '../../core/clock';
import type { Migration } from '../../api/v1alpha1';
import { InMemoryMigrationStore } from '../MigrationStore';
import { MigrationStateMachine } from '../MigrationStateMachine';
import { CheckpointDriver } from './CheckpointDriver';
import { Testbed } from '../__testUtils__/Testbed';
import { TestbedAgents, TestbedCheckpointRuntime, criuCommand } from '../__testUtils__/agents';
import { adminClient, redisServerPath, startMember, VALKEY_PORT } from '../__testUtils__/valkeyMembers';
import { WriteLoad } from '../__testUtils__/WriteLoad';
import { appClient } from '../__testUtils__/clients';
import {
  SCENARIO_KEYS,
  bulkKeysPresent,
  populate,
  readScenarioKeys,
  writeScenarioKeys,
} from '../__testUtils__/scenario';

const NOTICE_MS = 10_000;
const TEST_TIMEOUT_MS = 120_000;
const CONNECTIONS = 4;

describe('checkpoint driver through the node agent, with CRIU for real', () => {
  let bed: Testbed;
  let agents: TestbedAgents;
  let load: WriteLoad | undefined;
  let app: Valkey | undefined;
  const memberDirs: string[] = [];
  /** What each host's ICMP rate limit was before the test touched it. */
  const icmpRateLimit = new Map<string, string>();

  beforeAll(async () => {
    redisServerPath();
    criuCommand();
  }, 120_000);

  beforeEach(async () => {
    bed = await Testbed.create(['spot-a', 'spot-b']);
    agents = new TestbedAgents(bed);
    await agents.start('spot-a');
    await agents.start('spot-b');
    for (const host of ['spot-a', 'spot-b']) {
      const rate = await bed.inNetns(bed.host(host).netns, 'sysctl', ['-n', 'net.ipv4.icmp_ratelimit']);
      icmpRateLimit.set(host, rate.trim());
    }
  }, 60_000);

  afterEach(async () => {
    load?.close();
    app?.disconnect();
    load = undefined;
    app = undefined;
    await bed?.destroy();
    agents?.cleanUp();
    for (const dir of memberDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  async function podWithData(bulk: number, streamWhileDumping = true) {
    const member = await startMember(bed, 'cache-0', 'spot-a');
    memberDirs.push(member.dir);
    const address = bed.serviceAddress(20);
    await bed.placeAddress(address, 'spot-a');
    const runtime = new TestbedCheckpointRuntime(bed);
    runtime.pods.set('cache-0', { member, address });
    const admin = adminClient(member.endpoint);
    await admin.connect();
    await populate(admin, bulk, 1024);
    admin.disconnect();
    app = appClient(address, VALKEY_PORT);
    await writeScenarioKeys(app);
    load = new WriteLoad({
      host: address,
      port: VALKEY_PORT,
      ratePerSec: 400,
      connections: CONNECTIONS,
      keyPrefix: 'load',
    });
    await load.start();
    const store = new InMemoryMigrationStore();
    const driver = new CheckpointDriver({ runtime, agents, clock: systemClock, streamWhileDumping });
    const sm = new MigrationStateMachine({ store, drivers: [driver], clock: systemClock });
    /** A new operator process: new driver and state machine, same store and cluster. */
    const restarted = () =>
      new MigrationStateMachine({
        store,
        drivers: [new CheckpointDriver({ runtime, agents, clock: systemClock, streamWhileDumping })],
        clock: systemClock,
      });
    const planned = await sm.plan('shop', 'cache-0-ckpt', {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      pod: 'cache-0',
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'notice',
      driver: 'checkpoint',
      deadline: new Date(Date.now() + NOTICE_MS).toISOString(),
    });
    return { sm, store, runtime, driver, planned, restarted };
  }

  /** `host` no longer answers for a frozen process: no nft table of the agent's, its ICMP rate limit as it was. */
  async function expectNotAnswering(host: string) {
    const netns = bed.host(host).netns;
    expect(await bed.inNetns(netns, 'nft', ['list', 'tables'])).not.toMatch(/ferry_/);
    expect((await bed.inNetns(netns, 'sysctl', ['-n', 'net.ipv4.icmp_ratelimit'])).trim()).toBe(icmpRateLimit.get(host));
  }

  async function expectIntact(bulk: number) {
    await load!.stop();
    expect(await load!.lostWrites(app!)).toEqual([]);
    expect(await readScenarioKeys(app!)).toEqual({
      session: SCENARIO_KEYS.session.fields,
      jobs: [...SCENARIO_KEYS.jobs.items].reverse(),
      context: SCENARIO_KEYS.context.value,
    });
    expect(await bulkKeysPresent(app!, bulk)).toBe(bulk);
  }

  it(
    'moves the whole process to the other node under write load; connections survive; the source node then dies',
    async () => {
      const BULK = 100_000;
      const { sm, planned } = await podWithData(BULK);
      const done = await sm.run('shop', planned.metadata.name);

      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(/^Succeeded/);
      expect(done.status?.bytesMoved).toBeGreaterThan(BULK * 1024);
      expect(done.status?.writePauseMs).toBeGreaterThan(0);
      const restoredPid = Number(done.status?.driverState?.restoredPid);
      expect(await bed.pidsInHost('spot-b')).toContain(restoredPid);
      expect(bed.addressHost(bed.serviceAddress(20))).toBe('spot-b');
      // The source answered clients for the frozen process; cleaning up took that back.
      await expectNotAnswering('spot-a');

      // The notice runs out and the node is reclaimed; the process lives on spot-b now.
      await new Promise(r => setTimeout(r, Math.max(0, Date.parse(planned.spec.deadline!) - Date.now())));
      await bed.destroyHost('spot-a');
      await new Promise(r => setTimeout(r, 300));
      await expectIntact(BULK);
      // Established connections moved with the process: none had to reconnect.
      expect(load!.droppedConnections.size).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  // Write 3 records the end of the dump-and-stream step, write 4 the end of the
  // restore: a crash there means the step ran but its successor runs it again.
  it.each([
    ['the dump and page streaming', 3],
    ['the restore on the target', 4],
  ])(
    'resumes when the operator is killed after %s ran but before it was recorded',
    async (_what, crashAt) => {
      const BULK = 20_000;
      const { store, planned, restarted } = await podWithData(BULK);
      const update = store.updateStatus.bind(store);
      let writes = 0;
      store.updateStatus = async (m: Migration) => {
        if (++writes === crashAt) throw new Error('operator killed');
        return update(m);
      };
      await expect(restarted().run('shop', planned.metadata.name)).rejects.toThrow('operator killed');
      const [done] = await restarted().resumeAll();

      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(/^Succeeded/);
      expect(bed.addressHost(bed.serviceAddress(20))).toBe('spot-b');
      // Exactly one copy of the process runs, and it is the one the address leads to.
      const restoredPid = Number(done.status?.driverState?.restoredPid);
      expect(await bed.pidsInHost('spot-b')).toContain(restoredPid);
      await expectIntact(BULK);
    },
    TEST_TIMEOUT_MS,
  );

  it('answers for the address again when the dump fails and CRIU lets the process run on', async () => {
    const address = bed.serviceAddress(21);
    // No such process: CRIU fails after the agent started answering for the address.
    await expect(
      agents.agentFor('spot-a').checkpoint('failed-dump', 4_000_000, agents.agentFor('spot-b').url, undefined, address),
    ).rejects.toThrow(/criu dump failed/);
    await expectNotAnswering('spot-a');
  });

  it(
    'restores on the source from its own images when the target node dies after the dump',
    async () => {
      const BULK = 20_000;
      // Dumped locally: the source keeps its pages and can take the process back.
      const { sm, runtime, planned } = await podWithData(BULK, false);
      const attach = runtime.attachAddress.bind(runtime);
      runtime.attachAddress = async (address, node) => {
        await bed.destroyHost('spot-b');
        return attach(address, node);
      };
      const done = await sm.run('shop', planned.metadata.name);

      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(/^RolledBack/);
      expect(done.status?.failedPhase).toBe('SwitchingOver');
      expect(bed.addressHost(bed.serviceAddress(20))).toBe('spot-a');
      // Restored where it was frozen: the source stopped answering for it first.
      await expectNotAnswering('spot-a');
      await expectIntact(BULK);
    },
    TEST_TIMEOUT_MS,
  );
});
