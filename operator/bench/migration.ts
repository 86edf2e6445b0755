/*
 * `npm run bench -- migration [--datasets 100,1024] [--rate 500]`
 *
 * Moves a Valkey/Redis member holding 100 MiB and 1 GiB between two network
 * namespaces (the nodes) under a steady open-loop write load, four ways, side by
 * side: Ferry's `valkey` hand-off, Ferry's `checkpoint` move (CRIU through the
 * node agents), a restart from an RDB snapshot, and a restart without
 * persistence. For each: the write pause clients saw, total time, acknowledged
 * writes lost, keys lost, bytes moved, and the link's bandwidth measured in the
 * same run. Writes $FERRY_BENCH_RESULTS/migration.json. Needs root, redis-server
 * and CRIU (scripts/lib/criu.sh).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/core/clock';
import { InMemoryMigrationStore } from '../src/migration/MigrationStore';
import { MigrationStateMachine } from '../src/migration/MigrationStateMachine';
import { ValkeyDriver } from '../src/migration/valkey/ValkeyDriver';
import { CheckpointDriver } from '../src/migration/checkpoint/CheckpointDriver';
import { Testbed } from '../src/migration/__testUtils__/Testbed';
import {
  TEST_ACCESS,
  TestMember,
  TestbedValkeyRuntime,
  VALKEY_PORT,
  adminClient,
  startMember,
} from '../src/migration/__testUtils__/valkeyMembers';
import { TestbedAgents, TestbedCheckpointRuntime, criuCommand } from '../src/migration/__testUtils__/agents';
import { WriteLoad, quantile } from '../src/migration/__testUtils__/WriteLoad';
import { appClient } from '../src/migration/__testUtils__/clients';
import { measureLink, sendOverLink } from '../src/migration/__testUtils__/link';
import {
  SCENARIO_KEYS,
  bulkKeysPresent,
  populate,
  readScenarioKeys,
  writeScenarioKeys,
} from '../src/migration/__testUtils__/scenario';

type Method = 'ferry' | 'checkpoint' | 'rdb-restart' | 'no-persistence';
const METHODS: Method[] = ['ferry', 'checkpoint', 'rdb-restart', 'no-persistence'];
/** Value size of the bulk dataset: 1 KiB, so N MiB is N×1024 keys. */
const VALUE_BYTES = 1024;
/** Bytes of filler used to measure the link before each dataset. */
const LINK_PROBE_BYTES = 512 * 1024 * 1024;
/** Load keeps running this long after the move so late failures show. */
const SETTLE_MS = 1_000;
/** Time the load runs before the move, so the pause is measured against a steady state. */
const WARM_UP_MS = 1_000;
/** A notice as AWS gives it. */
const NOTICE_MS = 120_000;

/** One measured move. */
interface Run {
  datasetMiB: number;
  method: Method;
  writePauseMs: { p50: number; p99: number; max: number };
  totalMs: number;
  lostAckedWrites: number;
  lostKeys: number;
  bytesMoved: number;
  linkBytesPerSec: number;
  /** For `checkpoint`: connections that survived the move without reconnecting. */
  connectionsKept?: number;
  /** For `checkpoint`: how long the process was frozen (dump, stream, restore). */
  freezeMs?: number;
  /** For `checkpoint`: the freeze's parts, as the agents timed them. */
  freezeBreakdownMs?: { dump: number; stream: number; restore: number };
  /**
   * For `checkpoint`: the least a stop-and-copy freeze can take here, measured
   * in the same run: the images' bytes at the link's measured rate, plus the
   * restore (which reads every page back before the process runs again).
   */
  freezeFloorMs?: number;
  /**
   * For `checkpoint`: how long after the restore the last write sent during the
   * freeze was acknowledged (until then clients wait for their next retransmission).
   */
  clientTailMs?: number;
  /** For Ferry's methods: how long each phase of the Migration took, in order. */
  phasesMs?: Record<string, number>;
  /** The machine's 1-minute load average when the move started (the cores are shared). */
  loadAverage: number;
  ackedWrites: number;
}

function args(): { datasets: number[]; rate: number; methods: Method[] } {
  const get = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  return {
    datasets: (get('datasets') ?? '100,1024').split(',').map(Number),
    rate: Number(get('rate') ?? 500),
    methods: (get('methods')?.split(',') as Method[] | undefined) ?? METHODS,
  };
}

const SERVICE_INDEX = 10;
const CONNECTIONS = 4;

async function benchOne(
  bed: Testbed,
  agents: TestbedAgents,
  method: Method,
  datasetMiB: number,
  rate: number,
  linkBytesPerSec: number,
): Promise<Run> {
  const keys = datasetMiB * 1024;
  const service = bed.serviceAddress(SERVICE_INDEX);
  const valkeyRuntime = new TestbedValkeyRuntime(bed, service);
  const name = `bench-${method}-${datasetMiB}`;
  const source = await startMember(bed, name, 'spot-a');
  valkeyRuntime.adopt(source);
  await bed.placeAddress(service, 'spot-a');
  const admin = adminClient(source.endpoint);
  await admin.connect();
  await populate(admin, keys, VALUE_BYTES);
  admin.disconnect();

  const app = appClient(service, VALKEY_PORT);
  await writeScenarioKeys(app);
  const load = new WriteLoad({ host: service, port: VALKEY_PORT, ratePerSec: rate, connections: CONNECTIONS, keyPrefix: `load:${name}` });
  await load.start();
  await sleep(WARM_UP_MS);

  const loadAverage = Number(loadavg()[0].toFixed(2));
  const started = Date.now();
  let bytesMoved = 0;
  let freezeMs: number | undefined;
  let freezeBreakdownMs: Run['freezeBreakdownMs'];
  let phasesMs: Run['phasesMs'];
  let restoredAt: number | undefined;
  let extraMembers: TestMember[] = [];
  const spec = {
    workloadRef: { kind: 'StatefulSet' as const, name: 'bench' },
    pod: name,
    sourceNode: 'spot-a',
    targetNode: 'spot-b',
    reason: 'notice' as const,
    deadline: new Date(Date.now() + NOTICE_MS).toISOString(),
  };

  if (method === 'ferry') {
    const driver = new ValkeyDriver({ runtime: valkeyRuntime, redirector: valkeyRuntime, access: TEST_ACCESS, clock: systemClock });
    const sm = new MigrationStateMachine({ store: new InMemoryMigrationStore(), drivers: [driver], clock: systemClock });
    await sm.plan('bench', name, { ...spec, driver: 'valkey' });
    const done = await sm.run('bench', name);
    assertPhase(done.status?.phase, done.status?.message);
    bytesMoved = done.status!.bytesMoved;
    phasesMs = phaseDurations(done.status!.phases);
  } else if (method === 'checkpoint') {
    const runtime = new TestbedCheckpointRuntime(bed);
    runtime.pods.set(name, { member: source, address: service });
    const driver = new CheckpointDriver({ runtime, agents, clock: systemClock });
    const sm = new MigrationStateMachine({ store: new InMemoryMigrationStore(), drivers: [driver], clock: systemClock });
    await sm.plan('bench', name, { ...spec, driver: 'checkpoint' });
    const done = await sm.run('bench', name);
    assertPhase(done.status?.phase, done.status?.message);
    bytesMoved = done.status!.bytesMoved;
    freezeMs = done.status!.writePauseMs;
    phasesMs = phaseDurations(done.status!.phases);
    const switched = done.status!.phases.find(p => p.phase === 'SwitchingOver')?.finishedAt;
    restoredAt = switched ? Date.parse(switched) : undefined;
    const state = done.status!.driverState ?? {};
    freezeBreakdownMs = { dump: Number(state.dumpMs), stream: Number(state.streamMs), restore: Number(state.restoreMs) };
  } else if (method === 'rdb-restart') {
    // Snapshot and stop in one step (SHUTDOWN SAVE blocks writers, so nothing
    // acknowledged is missing from the file), copy it over the link, start, load.
    const stopper = adminClient(source.endpoint);
    await stopper.connect();
    await stopper.call('SHUTDOWN', 'SAVE').catch(() => {});
    stopper.disconnect();
    const targetDir = mkdtempSync(join(tmpdir(), `${bed.prefix}-rdb-`));
    const copied = await sendOverLink(bed, 'spot-a', 'spot-b', join(source.dir, 'dump.rdb'), join(targetDir, 'dump.rdb'));
    bytesMoved = copied.bytes;
    const target = await startMember(bed, `${name}-new`, 'spot-b', [], targetDir);
    extraMembers = [target];
    await bed.placeAddress(service, 'spot-b');
  } else {
    process.kill(source.pid, 'SIGKILL');
    const target = await startMember(bed, `${name}-new`, 'spot-b');
    extraMembers = [target];
    await bed.placeAddress(service, 'spot-b');
  }
  const totalMs = Date.now() - started;
  await sleep(SETTLE_MS);
  await load.stop();

  const latencies = load.latencies(started, Date.now());
  const lost = await load.lostWrites(app);
  const scenario = await readScenarioKeys(app);
  const scenarioLost =
    (Object.keys(scenario.session).length === 3 ? 0 : 1) +
    (scenario.jobs.length === SCENARIO_KEYS.jobs.items.length ? 0 : 1) +
    (scenario.context === SCENARIO_KEYS.context.value ? 0 : 1);
  const lostKeys = keys - (await bulkKeysPresent(app, keys)) + scenarioLost;
  const connectionsKept = method === 'checkpoint' ? CONNECTIONS - load.droppedConnections.size : undefined;
  const ackedWrites = load.acked.length;
  const clientTailMs =
    restoredAt === undefined
      ? undefined
      : Math.max(0, ...load.acked.filter(w => w.issuedAt <= restoredAt!).map(w => w.ackedAt - restoredAt!));

  load.close();
  app.disconnect();
  await valkeyRuntime.stopAll();
  for (const m of extraMembers) {
    process.kill(m.pid, 'SIGKILL');
    rmSync(m.dir, { recursive: true, force: true });
  }
  // Whatever CRIU restored lives on in spot-b's namespace; clear both nodes for the next run.
  for (const host of ['spot-a', 'spot-b']) {
    for (const pid of await bed.pidsInHost(host)) {
      if (!(await isAgent(pid))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
  }
  rmSync(source.dir, { recursive: true, force: true });
  await sleep(300);

  return {
    datasetMiB,
    method,
    writePauseMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: Math.max(0, ...latencies) },
    totalMs,
    lostAckedWrites: lost.length,
    lostKeys,
    bytesMoved,
    linkBytesPerSec: Math.round(linkBytesPerSec),
    ...(connectionsKept !== undefined ? { connectionsKept } : {}),
    ...(freezeMs !== undefined
      ? {
          freezeMs,
          freezeBreakdownMs,
          freezeFloorMs: Math.round((bytesMoved / linkBytesPerSec) * 1000 + (freezeBreakdownMs?.restore ?? 0)),
          clientTailMs,
        }
      : {}),
    ...(phasesMs ? { phasesMs } : {}),
    ackedWrites,
    loadAverage,
  };
}

async function isAgent(pid: number): Promise<boolean> {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent/main.ts');
  } catch {
    return false;
  }
}

/** Milliseconds spent in each phase the migration went through. */
function phaseDurations(phases: { phase: string; startedAt: string; finishedAt?: string }[]): Record<string, number> {
  const durations: Record<string, number> = {};
  for (const p of phases) {
    if (p.finishedAt) durations[p.phase] = Date.parse(p.finishedAt) - Date.parse(p.startedAt);
  }
  return durations;
}

function assertPhase(phase: string | undefined, message?: string): void {
  if (phase !== 'Succeeded') throw new Error(`migration ended ${phase}: ${message}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}

/** The issue's targets, checked against the figures. */
function targets(runs: Run[]) {
  const find = (method: Method, mib: number) => runs.find(r => r.method === method && r.datasetMiB === mib);
  const checks: Record<string, { target: string; actual: string; met: boolean }> = {};
  for (const mib of [...new Set(runs.map(r => r.datasetMiB))]) {
    const ferry = find('ferry', mib);
    const ckpt = find('checkpoint', mib);
    const rdb = find('rdb-restart', mib);
    if (ferry) {
      checks[`ferry ${mib} MiB write pause p99`] = { target: '<= 100 ms', actual: `${ferry.writePauseMs.p99} ms`, met: ferry.writePauseMs.p99 <= 100 };
    }
    if (ckpt && mib >= 1024) {
      checks[`checkpoint ${mib} MiB freeze`] = {
        target: '<= 1000 ms',
        actual: `${ckpt.freezeMs} ms (stop-and-copy floor here ${ckpt.freezeFloorMs} ms)`,
        met: (ckpt.freezeMs ?? Infinity) <= 1000,
      };
    }
    for (const r of [ferry, ckpt].filter(Boolean) as Run[]) {
      const bound = 1.5 * ((r.bytesMoved / r.linkBytesPerSec) * 1000) + 1000;
      checks[`${r.method} ${mib} MiB total time`] = { target: `<= ${Math.round(bound)} ms (1.5 x bytes/bandwidth + 1 s)`, actual: `${r.totalMs} ms`, met: r.totalMs <= bound };
      checks[`${r.method} ${mib} MiB acknowledged writes lost`] = { target: '0', actual: String(r.lostAckedWrites), met: r.lostAckedWrites === 0 };
      if (rdb) {
        checks[`${r.method} ${mib} MiB unavailability vs rdb-restart`] = {
          target: '>= 10x shorter',
          actual: `${r.writePauseMs.max} ms vs ${rdb.writePauseMs.max} ms (${(rdb.writePauseMs.max / Math.max(1, r.writePauseMs.max)).toFixed(1)}x)`,
          met: r.writePauseMs.max * 10 <= rdb.writePauseMs.max,
        };
      }
    }
  }
  return checks;
}

async function main(): Promise<void> {
  const { datasets, rate, methods } = args();
  if (methods.includes('checkpoint')) criuCommand();
  const bed = await Testbed.create(['spot-a', 'spot-b']);
  const agents = new TestbedAgents(bed);
  const cleanUp = async () => {
    await bed.destroy();
    agents.cleanUp();
  };
  process.once('SIGINT', () => cleanUp().then(() => process.exit(130)));
  const runs: Run[] = [];
  try {
    if (methods.includes('checkpoint')) {
      await agents.start('spot-a');
      await agents.start('spot-b');
    }
    for (const mib of datasets) {
      const link = await measureLink(bed, 'spot-a', 'spot-b', LINK_PROBE_BYTES);
      console.log(`link spot-a -> spot-b: ${(link / 1e9).toFixed(2)} GB/s`);
      for (const method of methods) {
        const run = await benchOne(bed, agents, method, mib, rate, link);
        runs.push(run);
        const parts = [
          `${String(mib).padStart(5)} MiB  ${method.padEnd(15)} pause p50/p99/max ${run.writePauseMs.p50}/${run.writePauseMs.p99}/${run.writePauseMs.max} ms`,
          `total ${run.totalMs} ms  lost acked ${run.lostAckedWrites}/${run.ackedWrites}  lost keys ${run.lostKeys}`,
          `moved ${(run.bytesMoved / 2 ** 20).toFixed(1)} MiB`,
        ];
        if (run.freezeMs !== undefined) {
          const b = run.freezeBreakdownMs;
          parts.push(
            `freeze ${run.freezeMs} ms (dump ${b?.dump}, stream ${b?.stream}, restore ${b?.restore}; floor ${run.freezeFloorMs}; clients' tail after it ${run.clientTailMs})`,
          );
        }
        if (run.connectionsKept !== undefined) parts.push(`connections kept ${run.connectionsKept}/${CONNECTIONS}`);
        parts.push(`load ${run.loadAverage}`);
        if (run.phasesMs) {
          parts.push(`phases ${Object.entries(run.phasesMs).map(([p, ms]) => `${p} ${ms}`).join(', ')} ms`);
        }
        console.log(parts.join('  '));
      }
    }
  } finally {
    await cleanUp();
  }
  const checks = targets(runs);
  for (const [name, c] of Object.entries(checks)) {
    console.log(`${c.met ? 'met    ' : 'MISSED '} ${name}: ${c.actual} (target ${c.target})`);
  }
  const dir = process.env.FERRY_BENCH_RESULTS ?? join(__dirname, '../../bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'migration.json');
  writeFileSync(
    file,
    `${JSON.stringify({ runs, targets: checks, writeRatePerSec: rate, connections: CONNECTIONS, valueBytes: VALUE_BYTES, measuredAt: new Date().toISOString() }, null, 2)}\n`,
  );
  console.log(`wrote ${file}`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
