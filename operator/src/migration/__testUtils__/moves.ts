/*
 * One member moved from one testbed host to another, four ways: Ferry's `valkey`
 * hand-off and `checkpoint` move through the state machine, and the two ways
 * people move a store without Ferry (restart from an RDB snapshot, restart
 * empty). Shared by the per-method suite and the migration benchmark.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../core/clock';
import type { MigrationStatus } from '../../api/v1alpha1';
import { InMemoryMigrationStore } from '../MigrationStore';
import { MigrationStateMachine } from '../MigrationStateMachine';
import { ValkeyDriver } from '../valkey/ValkeyDriver';
import { CheckpointDriver } from '../checkpoint/CheckpointDriver';
import type { Testbed } from './Testbed';
import { TEST_ACCESS, TestMember, TestbedValkeyRuntime, adminClient, startMember } from './valkeyMembers';
import { TestbedAgents, TestbedCheckpointRuntime } from './agents';
import { sendOverLink } from './link';

/** How a member is moved. */
export type MoveMethod = 'valkey' | 'checkpoint' | 'rdb-restart' | 'no-persistence';
/** Every method, Ferry's first. */
export const MOVE_METHODS: MoveMethod[] = ['valkey', 'checkpoint', 'rdb-restart', 'no-persistence'];

/** Where the member is and what moves it. */
export interface MoveSetup {
  bed: Testbed;
  /** Runs the members; its server is the one the target runs too. */
  runtime: TestbedValkeyRuntime;
  /** Node agents on both hosts, for `checkpoint`. */
  agents?: TestbedAgents;
  source: TestMember;
  /**
   * The stable address clients use: a Service (`runtime.pointTo`) for every
   * method but `checkpoint`, whose restored sockets need the pod's own address
   * (`placeAddress`), as a CNI that keeps pod IPs gives it; see {@link placeClientAddress}.
   */
  service: string;
  from: string;
  to: string;
  /** The notice the move has, from now. */
  noticeMs: number;
}

/** What a move reported. */
export interface MoveOutcome {
  bytesMoved: number;
  /** The Migration's status, for Ferry's methods. */
  status?: MigrationStatus;
  /** Members started outside the runtime (the baselines' new servers). */
  extraMembers: TestMember[];
}

/** Gives clients the member's stable address the way `method` needs it. */
export async function placeClientAddress(setup: Pick<MoveSetup, 'bed' | 'runtime' | 'source' | 'service' | 'from'>, method: MoveMethod): Promise<void> {
  // One address, one role: a Service left from an earlier run would translate
  // the pod's address away, and a routed pod address would shadow a Service.
  if (method === 'checkpoint') {
    await setup.bed.stopService(setup.service);
    await setup.bed.placeAddress(setup.service, setup.from);
  } else {
    await setup.bed.withdrawAddress(setup.service);
    await setup.runtime.pointTo(setup.source.endpoint);
  }
}

/** Moves `setup.source` with `method`; throws when a Ferry migration does not succeed. */
export async function moveMember(setup: MoveSetup, method: MoveMethod): Promise<MoveOutcome> {
  const { bed, runtime, source, service, from, to } = setup;
  const name = source.endpoint.name;
  const spec = {
    workloadRef: { kind: 'StatefulSet' as const, name: 'probe' },
    pod: name,
    sourceNode: from,
    targetNode: to,
    reason: 'notice' as const,
    deadline: new Date(Date.now() + setup.noticeMs).toISOString(),
  };
  if (method === 'valkey' || method === 'checkpoint') {
    let driver;
    if (method === 'valkey') {
      driver = new ValkeyDriver({ runtime, redirector: runtime, access: TEST_ACCESS, clock: systemClock });
    } else {
      if (!setup.agents) throw new Error('a checkpoint move needs node agents on both hosts');
      const pods = new TestbedCheckpointRuntime(bed);
      pods.pods.set(name, { member: source, address: service });
      driver = new CheckpointDriver({ runtime: pods, agents: setup.agents, clock: systemClock });
    }
    const sm = new MigrationStateMachine({ store: new InMemoryMigrationStore(), drivers: [driver], clock: systemClock });
    await sm.plan('probe', `${name}-${method}`, { ...spec, driver: method });
    const done = await sm.run('probe', `${name}-${method}`);
    if (done.status?.phase !== 'Succeeded') {
      throw new Error(`migration ended ${done.status?.phase}: ${done.status?.message}`);
    }
    return { bytesMoved: done.status.bytesMoved, status: done.status, extraMembers: [] };
  }
  if (method === 'rdb-restart') {
    // Snapshot and stop in one step (SHUTDOWN SAVE blocks writers, so nothing
    // acknowledged is missing from the file), copy it over the link, start, load.
    const stopper = adminClient(source.endpoint);
    await stopper.connect();
    await stopper.call('SHUTDOWN', 'SAVE').catch(() => {});
    stopper.disconnect();
    const targetDir = mkdtempSync(join(tmpdir(), `${bed.prefix}-rdb-`));
    const copied = await sendOverLink(bed, from, to, join(source.dir, 'dump.rdb'), join(targetDir, 'dump.rdb'));
    const target = await startMember(bed, `${name}-new`, to, [], targetDir, TEST_ACCESS, runtime.server);
    await runtime.pointTo(target.endpoint);
    return { bytesMoved: copied.bytes, extraMembers: [target] };
  }
  process.kill(source.pid, 'SIGKILL');
  const target = await startMember(bed, `${name}-new`, to, [], undefined, TEST_ACCESS, runtime.server);
  await runtime.pointTo(target.endpoint);
  return { bytesMoved: 0, extraMembers: [target] };
}

/** Kills every process on the hosts except the node agents: what a move left behind (CRIU's restored member too). */
export async function clearHosts(bed: Testbed, hosts: string[]): Promise<void> {
  for (const host of hosts) {
    for (const pid of await bed.pidsInHost(host)) {
      let agent = false;
      try {
        agent = readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent/main.ts');
      } catch {
        continue; // Gone already.
      }
      if (agent) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
}
