/*
 * `npm run bench -- migration [--rate 500,5000,20000,50000] [--server valkey-9.1,valkey-8.1,redis-7.0]
 *                             [--datasets 100,1024] [--methods valkey,checkpoint,rdb-restart,no-persistence]
 *                             [--values 1k|mixed] [--survives yes|no] [--table yes|no]`
 *
 * Moves a Valkey/Redis member holding 100 MiB and 1 GiB between two network
 * namespaces (the nodes) under a steady open-loop write load (pipelined over
 * many connections), four ways, side by side: Ferry's `valkey` hand-off, Ferry's
 * `checkpoint` move (CRIU through the node agents), a restart from an RDB
 * snapshot, and a restart without persistence. For each: the write pause clients
 * saw, total time, acknowledged writes lost, keys lost, bytes moved, the link's
 * bandwidth measured in the same run, and what survived besides the data
 * (connections, pub/sub, blocked clients, transactions, TTLs, the reconnect herd;
 * src/migration/__testUtils__/SurvivalProbe.ts). One `--rate` and one `--server`
 * is one cell of the grid; runs are merged into $FERRY_BENCH_RESULTS/migration.json
 * by (server, rate, values, dataset, method, probe), and their rows replace the
 * same cells' rows of the table in operator/docs/migration.md (between its
 * markers), keeping every other row, so the table is built cell by cell. Needs root and
 * CRIU (scripts/lib/criu.sh); the servers come from scripts/lib/valkey.sh.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Testbed } from '../src/migration/__testUtils__/Testbed';
import {
  TEST_SERVERS,
  TestServer,
  TestbedValkeyRuntime,
  VALKEY_PORT,
  adminClient,
  serverCommand,
  startMember,
} from '../src/migration/__testUtils__/valkeyMembers';
import { TestbedAgents, criuCommand } from '../src/migration/__testUtils__/agents';
import type { ValueMix } from '../src/migration/__testUtils__/WriteLoad';
import { ThreadedWriteLoad } from '../src/migration/__testUtils__/ThreadedWriteLoad';
import { appClient } from '../src/migration/__testUtils__/clients';
import { measureLink } from '../src/migration/__testUtils__/link';
import { MOVE_METHODS, MoveMethod, clearHosts, moveMember, placeClientAddress } from '../src/migration/__testUtils__/moves';
import { SurvivalProbe, Survives } from '../src/migration/__testUtils__/SurvivalProbe';
import {
  SCENARIO_KEYS,
  bulkKeysPresent,
  populate,
  readScenarioKeys,
  writeScenarioKeys,
} from '../src/migration/__testUtils__/scenario';
import { mergeTableBetween } from '../src/migration/__testUtils__/benchTable';
import { parseBenchArgs, repoRoot, writeResults } from './lib/benchSupport';

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
/** Write rates of the grid (writes/s). */
const RATES = [500, 5_000, 20_000, 50_000];
/** The issue's targets for the hand-off. */
const TARGET_PAUSE_P99_MS = 10;
const TARGET_PAUSE_RATE = 20_000;
/** Where the table goes in the docs. */
const TABLE_START = '<!-- migration-bench-table:start -->';
const TABLE_END = '<!-- migration-bench-table:end -->';

/** One measured move. */
interface Run {
  server: TestServer;
  writesPerSec: number;
  values: ValueMix;
  datasetMiB: number;
  method: MoveMethod;
  writePauseMs: { p50: number; p99: number; max: number };
  totalMs: number;
  lostAckedWrites: number;
  lostKeys: number;
  bytesMoved: number;
  linkBytesPerSec: number;
  /** Connections of the write load. */
  connections: number;
  /** Writes the load could not issue because too many waited (an outage at a high rate). */
  shedWrites: number;
  /**
   * How late the load's thread issued writes (ms beyond its 5 ms tick): writes are
   * timed from their issue, so a lag here is load the bench did not offer, not pause.
   */
  loadIssueLagMs?: { p99: number; max: number };
  /** Connections of the write load that survived the move without reconnecting. */
  connectionsKept?: number;
  /** For `checkpoint`: how long the process was frozen (dump, stream, restore). */
  freezeMs?: number;
  /** For `checkpoint`: the freeze's parts, as the agents timed them. */
  freezeBreakdownMs?: { dump: number; stream: number; restore: number };
  /** For `checkpoint`: the images' bytes at the link's measured rate plus the restore. */
  freezeFloorMs?: number;
  /** For `checkpoint`: how long after the restore the last write sent during the freeze was acknowledged. */
  clientTailMs?: number;
  /** For `valkey`: how long the source's writes were paused (CLIENT PAUSE to UNPAUSE), as the driver timed it. */
  serverPauseMs?: number;
  /** For `valkey`: the pause's parts as the driver timed them (pause, drain, promote, demote, redirect, disconnect, unpause). */
  switchStepsMs?: string;
  /** For Ferry's methods: how long each phase of the Migration took, in order. */
  phasesMs?: Record<string, number>;
  /** What survived besides the data; null when the run had no probe (`--survives no`). */
  survives: Survives | null;
  /** The machine's 1-minute load average when the move started (the cores are shared). */
  loadAverage: number;
  ackedWrites: number;
  measuredAt: string;
}

interface Options {
  rates: number[];
  servers: TestServer[];
  datasets: number[];
  methods: MoveMethod[];
  values: ValueMix;
  table: boolean;
  survives: boolean;
}

function options(): Options {
  const args = parseBenchArgs(process.argv.slice(2));
  const list = (name: string, fallback: string) => (args.options.get(name) ?? fallback).split(',').map(s => s.trim());
  const numbers = (name: string, fallback: string) =>
    list(name, fallback).map(s => {
      const n = Number(s);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} takes positive numbers separated by commas, got "${s}"`);
      return n;
    });
  const servers = list('server', TEST_SERVERS.join(','));
  for (const s of servers) {
    if (!(TEST_SERVERS as readonly string[]).includes(s)) {
      throw new Error(`--server ${s}: unknown; use ${TEST_SERVERS.join(', ')}`);
    }
  }
  const methods = list('methods', MOVE_METHODS.join(',')).map(m => (m === 'ferry' ? 'valkey' : m));
  for (const m of methods) {
    if (!(MOVE_METHODS as string[]).includes(m)) throw new Error(`--methods ${m}: unknown; use ${MOVE_METHODS.join(', ')}`);
  }
  const values = args.options.get('values') ?? '1k';
  if (values !== '1k' && values !== 'mixed') throw new Error(`--values ${values}: use 1k or mixed`);
  return {
    rates: numbers('rate', RATES.join(',')),
    servers: servers as TestServer[],
    datasets: numbers('datasets', '100,1024'),
    methods: methods as MoveMethod[],
    values,
    table: (args.options.get('table') ?? 'yes') !== 'no',
    survives: (args.options.get('survives') ?? 'yes') !== 'no',
  };
}

/** Many connections at high rates, as a busy application has; at least four. */
function connectionsFor(rate: number): number {
  return Math.min(32, Math.max(4, Math.ceil(rate / 1_000)));
}

const SERVICE_INDEX = 10;

async function benchOne(
  bed: Testbed,
  agents: TestbedAgents,
  server: TestServer,
  method: MoveMethod,
  datasetMiB: number,
  rate: number,
  values: ValueMix,
  linkBytesPerSec: number,
  withProbe: boolean,
): Promise<Run> {
  const keys = datasetMiB * 1024;
  const service = bed.serviceAddress(SERVICE_INDEX);
  const runtime = new TestbedValkeyRuntime(bed, service, server);
  const name = `bench-${method}-${datasetMiB}`;
  const source = await startMember(bed, name, 'spot-a', [], undefined, undefined, server);
  runtime.adopt(source);
  await placeClientAddress({ bed, runtime, source, service, from: 'spot-a' }, method);
  const admin = adminClient(source.endpoint);
  await admin.connect();
  await populate(admin, keys, VALUE_BYTES);
  admin.disconnect();

  const app = appClient(service, VALKEY_PORT);
  await writeScenarioKeys(app);
  const connections = connectionsFor(rate);
  // The writers run on a thread of their own: their latencies must be the server's
  // pause, not this thread's stalls (the driver's polls, the probe, process spawns).
  const load = new ThreadedWriteLoad({ host: service, port: VALKEY_PORT, ratePerSec: rate, connections, keyPrefix: `load:${name}`, values });
  const probe = withProbe ? new SurvivalProbe({ host: service, port: VALKEY_PORT, prefix: `probe:${name}` }) : undefined;
  await probe?.start();
  await load.start();
  await sleep(WARM_UP_MS);

  const loadAverage = Number(loadavg()[0].toFixed(2));
  const started = Date.now();
  probe?.moveStarted(started);
  let outcome;
  try {
    outcome = await moveMember({ bed, runtime, agents, source, service, from: 'spot-a', to: 'spot-b', noticeMs: NOTICE_MS }, method);
  } catch (error) {
    probe?.close();
    await load.close();
    app.disconnect();
    throw error;
  }
  const totalMs = Date.now() - started;
  probe?.moveEnded();
  await sleep(SETTLE_MS);
  await load.stop();
  const survives = (await probe?.finish()) ?? null;

  const latencies = await load.latencies(started, Date.now());
  const lost = await load.countLostWrites();
  const summary = await load.summary();
  const scenario = await readScenarioKeys(app);
  const scenarioLost =
    (Object.keys(scenario.session).length === 3 ? 0 : 1) +
    (scenario.jobs.length === SCENARIO_KEYS.jobs.items.length ? 0 : 1) +
    (scenario.context === SCENARIO_KEYS.context.value ? 0 : 1);
  const lostKeys = keys - (await bulkKeysPresent(app, keys)) + scenarioLost;
  const status = outcome.status;
  const phasesMs = status ? phaseDurations(status.phases) : undefined;
  let checkpoint: Partial<Run> = {};
  if (method === 'checkpoint' && status) {
    const state = status.driverState ?? {};
    const freezeBreakdownMs = { dump: Number(state.dumpMs), stream: Number(state.streamMs), restore: Number(state.restoreMs) };
    const switched = status.phases.find(p => p.phase === 'SwitchingOver')?.finishedAt;
    const restoredAt = switched ? Date.parse(switched) : undefined;
    const lastAck = restoredAt === undefined ? undefined : await load.lastAckOfIssuedBefore(restoredAt);
    checkpoint = {
      freezeMs: status.writePauseMs,
      freezeBreakdownMs,
      freezeFloorMs: Math.round((outcome.bytesMoved / linkBytesPerSec) * 1000 + freezeBreakdownMs.restore),
      clientTailMs: lastAck === undefined || restoredAt === undefined ? undefined : Math.max(0, lastAck - restoredAt),
    };
  }
  const handOff: Partial<Run> =
    method === 'valkey' && status
      ? { serverPauseMs: status.writePauseMs, switchStepsMs: status.driverState?.switchStepsMs }
      : {};
  const run: Run = {
    server,
    writesPerSec: rate,
    values,
    datasetMiB,
    method,
    writePauseMs: { p50: latencies.quantile(0.5), p99: latencies.quantile(0.99), max: latencies.max },
    totalMs,
    lostAckedWrites: lost.count,
    lostKeys,
    bytesMoved: outcome.bytesMoved,
    linkBytesPerSec: Math.round(linkBytesPerSec),
    connections,
    shedWrites: summary.shed,
    loadIssueLagMs: summary.issueLagMs,
    connectionsKept: connections - summary.droppedConnections,
    ...checkpoint,
    ...handOff,
    ...(phasesMs ? { phasesMs } : {}),
    survives,
    ackedWrites: summary.acked,
    loadAverage,
    measuredAt: new Date().toISOString(),
  };

  await load.close();
  app.disconnect();
  await runtime.stopAll();
  for (const m of outcome.extraMembers) {
    try {
      process.kill(m.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
    rmSync(m.dir, { recursive: true, force: true });
  }
  // Whatever CRIU restored lives on in spot-b's namespace; clear both nodes for the next run.
  await clearHosts(bed, ['spot-a', 'spot-b']);
  rmSync(source.dir, { recursive: true, force: true });
  await sleep(300);
  return run;
}

/** Milliseconds spent in each phase the migration went through. */
function phaseDurations(phases: { phase: string; startedAt: string; finishedAt?: string }[]): Record<string, number> {
  const durations: Record<string, number> = {};
  for (const p of phases) {
    if (p.finishedAt) durations[p.phase] = Date.parse(p.finishedAt) - Date.parse(p.startedAt);
  }
  return durations;
}

function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}

/** The issue's targets, checked against every recorded run. */
function targets(runs: Run[]) {
  const checks: Record<string, { target: string; actual: string; met: boolean }> = {};
  for (const r of runs) {
    const cell = `${r.server} ${r.writesPerSec}/s ${r.values} ${r.datasetMiB} MiB ${r.method}${r.survives ? ' with probe' : ''}`;
    if (r.method === 'valkey' || r.method === 'checkpoint') {
      checks[`${cell}: acknowledged writes lost`] = { target: '0', actual: String(r.lostAckedWrites), met: r.lostAckedWrites === 0 };
    }
    // Subscribers lengthen the pause by their re-subscription (docs/migration.md): the
    // pause target is about writes alone, so it is checked on runs without the probe.
    if (r.method === 'valkey' && r.writesPerSec >= TARGET_PAUSE_RATE && !r.survives) {
      checks[`${cell}: write pause p99`] = {
        target: `<= ${TARGET_PAUSE_P99_MS} ms`,
        actual: `${r.writePauseMs.p99} ms`,
        met: r.writePauseMs.p99 <= TARGET_PAUSE_P99_MS,
      };
    }
    if (r.method === 'valkey' && r.datasetMiB >= 1024) {
      const bound = 1.5 * ((r.bytesMoved / r.linkBytesPerSec) * 1000) + 1000;
      checks[`${cell}: total time`] = {
        target: `<= ${Math.round(bound)} ms (1.5 x bytes/link + 1 s)`,
        actual: `${r.totalMs} ms`,
        met: r.totalMs <= bound,
      };
    }
  }
  return checks;
}

const key = (r: Run) => `${r.server}|${r.writesPerSec}|${r.values}|${r.datasetMiB}|${r.method}|${r.survives ? 'probe' : 'load only'}`;

/** Runs recorded earlier, from cells not run again now. */
function previousRuns(file: string): Run[] {
  if (!existsSync(file)) return [];
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { runs?: Run[] };
    // Runs from before servers were named cannot be placed in the grid.
    return (parsed.runs ?? []).filter(r => r.server && r.writesPerSec);
  } catch {
    return [];
  }
}

const fmt = (v: number | null | undefined, unit = '', none = 'lost') => (v === null || v === undefined ? none : `${v}${unit}`);

/** Columns that name a cell of the grid: a run replaces only the row of its own cell. */
const TABLE_SHAPE = {
  keyColumns: 6, // server, writes/s, values, dataset, method, probe
  order: (cells: string[]) => [
    (TEST_SERVERS as readonly string[]).indexOf(cells[0]),
    Number(cells[1]),
    cells[2] === '1k' ? 0 : 1,
    parseFloat(cells[3]),
    (MOVE_METHODS as string[]).indexOf(cells[4]),
    cells[5] === 'yes' ? 0 : 1,
  ],
};

const TABLE_HEADER = [
  '| server | writes/s | values | dataset | method | probe | load | write pause p50/p99/max | total | lost acked | lost keys | connections kept | reconnect | pub/sub lost (recv before/during/after) | blocked lost/dup | partial tx | TTL drift | herd (at once, p99 first s, misses) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];

/** The table row of one run, as the docs show it. */
function tableRow(r: Run): string {
  const s = r.survives;
  const base = `| ${r.server} | ${r.writesPerSec} | ${r.values} | ${r.datasetMiB} MiB | ${r.method} | ${s ? 'yes' : 'no'} | ${r.loadAverage} | ${r.writePauseMs.p50}/${r.writePauseMs.p99}/${r.writePauseMs.max} ms | ${(r.totalMs / 1000).toFixed(2)} s | ${r.lostAckedWrites}/${r.ackedWrites} | ${r.lostKeys}`;
  return s
    ? `${base} | ${s.connectionsKept}/${s.connections} | ${fmt(s.reconnectMs, ' ms', 'none')} | ${s.pubsubLost} (${s.pubsubReceived.before}/${s.pubsubReceived.during}/${s.pubsubReceived.after}) | ${s.blockedLost}/${s.blockedDuplicated} | ${s.partialTransactions} | ${fmt(s.ttlDriftMs, ' ms')} | ${s.herdReconnected}, ${s.herdP99Ms} ms, ${s.herdMisses} |`
    : `${base} | ${r.connectionsKept}/${r.connections} | - | - | - | - | - | - |`;
}

/**
 * Writes the rows of `runs` into the docs' table. Rows of other cells stay (the
 * table is the record of runs made in other worktrees and on other days, whose
 * JSON is not kept), so the grid can be measured one cell at a time.
 */
function writeTable(runs: Run[]): string {
  const file = join(repoRoot(), 'operator', 'docs', 'migration.md');
  const text = readFileSync(file, 'utf8');
  writeFileSync(
    file,
    mergeTableBetween(text, { start: TABLE_START, end: TABLE_END }, TABLE_HEADER, runs.map(tableRow), TABLE_SHAPE),
  );
  return file;
}

async function main(): Promise<void> {
  const o = options();
  if (o.methods.includes('checkpoint')) criuCommand();
  for (const server of o.servers) serverCommand(server);
  const bed = await Testbed.create(['spot-a', 'spot-b']);
  const agents = new TestbedAgents(bed);
  const cleanUp = async () => {
    await bed.destroy();
    agents.cleanUp();
  };
  process.once('SIGINT', () => cleanUp().then(() => process.exit(130)));
  const runs: Run[] = [];
  try {
    if (o.methods.includes('checkpoint')) {
      await agents.start('spot-a');
      await agents.start('spot-b');
    }
    for (const server of o.servers) {
      for (const rate of o.rates) {
        for (const mib of o.datasets) {
          const link = await measureLink(bed, 'spot-a', 'spot-b', LINK_PROBE_BYTES);
          console.log(`${server} ${rate}/s ${mib} MiB: link spot-a -> spot-b ${(link / 1e9).toFixed(2)} GB/s`);
          for (const method of o.methods) {
            const run = await benchOne(bed, agents, server, method, mib, rate, o.values, link, o.survives);
            runs.push(run);
            const s = run.survives;
            const parts = [
              `${server} ${rate}/s ${String(mib).padStart(5)} MiB ${method.padEnd(15)} pause p50/p99/max ${run.writePauseMs.p50}/${run.writePauseMs.p99}/${run.writePauseMs.max} ms`,
              `total ${run.totalMs} ms  lost acked ${run.lostAckedWrites}/${run.ackedWrites} (shed ${run.shedWrites}, issue lag p99/max ${run.loadIssueLagMs?.p99}/${run.loadIssueLagMs?.max} ms)  lost keys ${run.lostKeys}`,
              `moved ${(run.bytesMoved / 2 ** 20).toFixed(1)} MiB`,
              s
                ? `kept ${s.connectionsKept}/${s.connections} reconnect ${fmt(s.reconnectMs, ' ms', 'none')} pubsub lost ${s.pubsubLost} blocked ${s.blockedLost}/${s.blockedDuplicated} partial tx ${s.partialTransactions} ttl drift ${fmt(s.ttlDriftMs, ' ms')} herd ${s.herdReconnected} p99 ${s.herdP99Ms} ms`
                : `load connections kept ${run.connectionsKept}/${run.connections} (no probe)`,
            ];
            if (run.freezeMs !== undefined) {
              const b = run.freezeBreakdownMs;
              parts.push(`freeze ${run.freezeMs} ms (dump ${b?.dump}, stream ${b?.stream}, restore ${b?.restore}; floor ${run.freezeFloorMs}; tail ${run.clientTailMs})`);
            }
            if (run.serverPauseMs !== undefined) parts.push(`server pause ${run.serverPauseMs} ms (${run.switchStepsMs})`);
            parts.push(`load ${run.loadAverage}`);
            if (run.phasesMs) parts.push(`phases ${Object.entries(run.phasesMs).map(([p, ms]) => `${p} ${ms}`).join(', ')} ms`);
            console.log(parts.join('  '));
          }
        }
      }
    }
  } finally {
    await cleanUp();
  }
  const dir = process.env.FERRY_BENCH_RESULTS ?? join(repoRoot(), 'bench', 'results');
  const fresh = new Set(runs.map(key));
  const all = [...previousRuns(join(dir, 'migration.json')).filter(r => !fresh.has(key(r))), ...runs];
  const checks = targets(all);
  for (const [name, c] of Object.entries(checks)) {
    console.log(`${c.met ? 'met    ' : 'MISSED '} ${name}: ${c.actual} (target ${c.target})`);
  }
  const file = writeResults('migration', { runs: all, targets: checks, valueBytes: VALUE_BYTES, measuredAt: new Date().toISOString() });
  console.log(`wrote ${file}`);
  if (o.table) console.log(`wrote the table into ${writeTable(all)}`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
