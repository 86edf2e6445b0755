/**
 * `npm run bench -- nodes [--sizes 100,1024] [--methods checkpoint,valkey,rdb-restart]
 * [--routes stop-and-copy,lazy]`:
 * a one-member Valkey moved from spot-a to spot-b on real nodes (test/nodes'
 * harness as the checkpoint suites set it up: a control plane, three kubelet +
 * containerd nodes, Ferry's runtime wrapper as the `ferry` handler, a node agent
 * on every node), three ways side by side for each dataset size:
 *
 * - `checkpoint`: Ferry's checkpoint move (KubeCheckpointDriver: CRIU through the
 *   agents, the restore through the runtime wrapper, the ReplicaSet's hand-off),
 *   once per route: `stop-and-copy` (pages streamed while the source dumps, then
 *   the restore) and `lazy` (the target restores without the pages and serves,
 *   fetching them from the paused source after);
 * - `valkey`: Ferry's hand-off (KubeValkeyDriver: a new member replicates, writes
 *   pause for the switch), run from the cluster's network as the operator's pod;
 * - `rdb-restart`: what people do without Ferry: writes paused on the source
 *   (CLIENT PAUSE WRITE, so nothing acknowledged is missing from the snapshot),
 *   a new pod on spot-b fetches the RDB from it (valkey-cli --rdb, pod to pod)
 *   and loads it, the Service is pointed at it and the source is deleted.
 *
 * The client is a writer pod on on-demand-c that SETs w:<i> through the member's
 * Service every ~20 ms, one valkey-cli (one connection) per write, retrying a
 * write until it is acknowledged, as an application does; it logs when each
 * write was issued, first failed, and was acknowledged (the machine's uptime,
 * which pods share). From that log, over the writes issued during the move:
 * writePauseMs (issue to acknowledgement, p50/p99/max), servedAgainMs (move start
 * to the first acknowledgement after the longest stretch without one),
 * reconnectMs (the longest time from a write's first failed attempt to its
 * acknowledgement through a new connection); and after it, every acknowledged
 * write and every populated key is looked for on the member the Service reaches.
 * Writes bench/results/nodes.json with migration.json's keys plus `method`,
 * `route` and `reconnectMs`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { MigrationStatus, MigrationSpec } from '../src/api/v1alpha1';
import {
  CheckpointNodes,
  MemberPod,
  NAMESPACE,
  waitFor,
} from '../test/nodes/checkpointNodes';
import type { HubMigrationSpec } from '../test/nodes/hubMigration';
import { MIGRATION_LINE } from '../test/nodes/hubMigration';
import { nodeTestImages } from '../test/nodes/nodeTestImages';
import type { CheckpointRoute } from '../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { InMemoryMigrationStore } from '../src/migration/MigrationStore';
import { parseBenchArgs, repoRoot, writeResults } from './lib/benchSupport';

const METHODS = ['checkpoint', 'valkey', 'rdb-restart'] as const;
type Method = (typeof METHODS)[number];
/**
 * How the bytes move against the freeze. The checkpoint takes the route it is
 * given (--routes); the hand-off copies while the member serves (pre-copy of a
 * kind); the RDB restart stops writes, then copies.
 */
type Route = 'stop-and-copy' | 'lazy' | 'pre-copy';
const CHECKPOINT_ROUTES: CheckpointRoute[] = ['stop-and-copy', 'lazy'];
const ROUTE_OF: Record<Exclude<Method, 'checkpoint'>, Route> = {
  valkey: 'pre-copy',
  'rdb-restart': 'stop-and-copy',
};
const SHORT_NAME: Record<Method, string> = {
  checkpoint: 'ck',
  valkey: 'vk',
  'rdb-restart': 'rdb',
};
/** Values of 1 KiB (DEBUG POPULATE), so N MiB is N x 1024 keys, as in migration.json. */
const VALUE_BYTES = 1024;
const SERVER = 'valkey-9.1';
/** A notice as AWS gives it; the moves are planned against its deadline. */
const NOTICE_MS = 120_000;
/** Acknowledged writes before the move starts, so the pause is measured against a steady state. */
const WRITES_BEFORE = 30;
/** Acknowledged writes after the move ended, so late failures show. */
const WRITES_AFTER = 30;
/** The writer's pause between writes, and its client's timeouts. */
const WRITER_INTERVAL_S = 0.02;
const WRITER_RETRY_S = 0.05;
/** How long one move (or the RDB restart's load) may take on a loaded machine. */
const MOVE_TIMEOUT_MS = 900_000;
const MIB = 1024 * 1024;

/** One measured move. */
interface Run {
  server: string;
  writesPerSec: number;
  values: '1k';
  datasetMiB: number;
  method: Method;
  route: Route;
  writePauseMs: { p50: number; p99: number; max: number };
  /** From the move's start until the client was served again after its longest wait. */
  servedAgainMs: number;
  /** The longest time from a write's first failed attempt to its acknowledgement through a new connection; 0 when none failed. */
  reconnectMs: number;
  totalMs: number;
  lostAckedWrites: number;
  lostKeys: number;
  bytesMoved: number;
  /** Not measured on real nodes (the checkpoint's floor is its own dump and restore). */
  linkBytesPerSec: null;
  /** One writer, a connection per write. */
  connections: number;
  shedWrites: number;
  connectionsKept: number;
  freezeMs?: number;
  freezeBreakdownMs?: { dump: number; stream: number; restore: number };
  freezeFloorMs?: number;
  clientTailMs?: number;
  /** For the lazy route: how long after the target served its last page arrived. */
  lazyCopyMs?: number;
  phasesMs?: Record<string, number>;
  survives: null;
  loadAverage: number;
  ackedWrites: number;
  measuredAt: string;
}

/** One write as the writer logged it (epoch ms). */
interface Write {
  i: number;
  issuedAt: number;
  ackedAt: number;
  firstFailedAt?: number;
}

function options() {
  const args = parseBenchArgs(process.argv.slice(2));
  const sizes = (args.options.get('sizes') ?? '100,1024')
    .split(',')
    .map(Number);
  if (sizes.some(s => !Number.isInteger(s) || s <= 0)) {
    throw new Error(
      `--sizes takes MiB as whole numbers separated by commas (100,1024), got "${args.options.get(
        'sizes',
      )}"`,
    );
  }
  const methods = (args.options.get('methods') ?? METHODS.join(','))
    .split(',')
    .map(m => m.trim());
  for (const m of methods) {
    if (!(METHODS as readonly string[]).includes(m)) {
      throw new Error(`--methods ${m}: unknown; use ${METHODS.join(', ')}`);
    }
  }
  const routes = (args.options.get('routes') ?? CHECKPOINT_ROUTES.join(','))
    .split(',')
    .map(r => r.trim());
  for (const r of routes) {
    if (!(CHECKPOINT_ROUTES as string[]).includes(r)) {
      throw new Error(
        `--routes ${r}: unknown; the checkpoint takes ${CHECKPOINT_ROUTES.join(
          ', ',
        )}`,
      );
    }
  }
  // One move per method, and one per route for the checkpoint.
  const moves: { method: Method; route: Route }[] = (
    methods as Method[]
  ).flatMap((method): { method: Method; route: Route }[] =>
    method === 'checkpoint'
      ? (routes as Route[]).map(route => ({ method, route }))
      : [{ method, route: ROUTE_OF[method] }],
  );
  return { sizes, moves };
}

/** The machine's uptime clock (the writer's, in every pod) on the bench's (epoch ms). */
const bootedAt =
  Date.now() -
  Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;

/**
 * The writer: each write is retried (one new connection each time) until the
 * member acknowledges it, and logged as `ack <i> <issued> <acked> <first failure or ->`
 * in seconds of uptime (busybox `date` has no sub-second format).
 */
function writerPod(name: string, service: string, image: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      nodeName: 'on-demand-c',
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'writer',
          image,
          imagePullPolicy: 'Never',
          command: [
            'sh',
            '-c',
            `i=0
while true; do
  i=$((i+1))
  read s idle < /proc/uptime
  f=-
  until [ "$(timeout 5 valkey-cli -h ${service} -t 1 SET w:$i $i 2>/dev/null)" = OK ]; do
    [ "$f" = - ] && read f idle < /proc/uptime
    sleep ${WRITER_RETRY_S}
  done
  read up idle < /proc/uptime
  echo "ack $i $s $up $f"
  sleep ${WRITER_INTERVAL_S}
done`,
          ],
        },
      ],
    },
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

class NodesBench {
  private readonly image: string;

  constructor(private readonly nodes: CheckpointNodes) {
    // The members' image: it has valkey-cli and busybox for the writer too.
    this.image = nodeTestImages().valkey.name;
  }

  get kubectl() {
    return (args: string[], input?: string) =>
      this.nodes.cluster.kubectl(args, input);
  }

  /** The writer's acknowledged writes so far. */
  writes(writer: string): Write[] {
    return this.kubectl(['logs', '-n', NAMESPACE, writer])
      .split('\n')
      .filter(line => line.startsWith('ack '))
      .map(line => {
        const [, i, issued, acked, failed] = line.split(' ');
        return {
          i: Number(i),
          issuedAt: bootedAt + Number(issued) * 1000,
          ackedAt: bootedAt + Number(acked) * 1000,
          firstFailedAt:
            failed && failed !== '-'
              ? bootedAt + Number(failed) * 1000
              : undefined,
        };
      });
  }

  async run(method: Method, route: Route, datasetMiB: number): Promise<Run> {
    const app = `${SHORT_NAME[method]}${
      route === 'lazy' ? 'l' : ''
    }-${datasetMiB}`;
    const writer = `writer-${app}`;
    const keys = datasetMiB * 1024;
    const source = await this.nodes.memberWithData(
      app,
      'spot-a',
      keys,
      VALUE_BYTES,
    );
    this.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace: NAMESPACE },
        spec: { selector: { app }, ports: [{ port: 6379 }] },
      }),
    );
    this.kubectl(['apply', '-f', '-'], writerPod(writer, app, this.image));
    this.kubectl([
      'wait',
      '-n',
      NAMESPACE,
      '--for=condition=Ready',
      `pod/${writer}`,
      '--timeout=240s',
    ]);
    await waitFor(`${WRITES_BEFORE} acknowledged writes to ${app}`, () =>
      this.writes(writer).length >= WRITES_BEFORE ? true : undefined,
    );

    const loadAverage = Number(loadavg()[0].toFixed(2));
    const calledAt = Date.now();
    const moved = await this.move(method, route, app, source);
    // The move as its Migration timed it (the hand-off's process takes a while
    // to start), else as the bench did.
    const startedAt = moved.startedAt ?? calledAt;
    const endedAt = moved.endedAt ?? Date.now();
    const ackedAtEnd = this.writes(writer).length;
    await waitFor(
      `${WRITES_AFTER} acknowledged writes to ${app} after the move`,
      () =>
        this.writes(writer).length >= ackedAtEnd + WRITES_AFTER
          ? true
          : undefined,
    );

    // Every write acknowledged so far: the log is read before the keys.
    const written = this.writes(writer);
    const exec = (args: string[]) =>
      this.kubectl([
        'exec',
        '-n',
        NAMESPACE,
        writer,
        '--',
        'valkey-cli',
        '-h',
        app,
        ...args,
      ]).trim();
    const present = new Set(
      exec(['--scan', '--pattern', 'w:*', '--count', '1000'])
        .split('\n')
        .filter(Boolean)
        .map(key => Number(key.slice(2))),
    );
    const lostAckedWrites = written.filter(w => !present.has(w.i)).length;
    // The populated keys and the marker memberWithData writes.
    const others = Number(exec(['dbsize'])) - present.size;
    const lostKeys = Math.max(0, keys + 1 - others);

    const during = written.filter(
      w => w.issuedAt >= startedAt && w.issuedAt <= endedAt,
    );
    const waits = during.map(w => w.ackedAt - w.issuedAt).sort((a, b) => a - b);
    // The client's longest stretch without an acknowledgement that began in the move.
    let longest = { from: startedAt, to: startedAt };
    for (let k = 1; k < written.length; k++) {
      const [a, b] = [written[k - 1].ackedAt, written[k].ackedAt];
      if (b >= startedAt && a <= endedAt && b - a > longest.to - longest.from) {
        longest = { from: a, to: b };
      }
    }
    const reconnects = written
      .filter(w => w.firstFailedAt !== undefined && w.ackedAt >= startedAt)
      .map(w => w.ackedAt - w.firstFailedAt!);
    const spanS =
      (written[written.length - 1].ackedAt - written[0].issuedAt) / 1000;

    const run: Run = {
      server: SERVER,
      writesPerSec: Math.round(written.length / spanS),
      values: '1k',
      datasetMiB,
      method,
      route,
      writePauseMs: {
        p50: Math.round(percentile(waits, 0.5)),
        p99: Math.round(percentile(waits, 0.99)),
        max: Math.round(waits[waits.length - 1] ?? 0),
      },
      servedAgainMs: Math.max(0, Math.round(longest.to - startedAt)),
      reconnectMs: Math.round(Math.max(0, ...reconnects)),
      totalMs: endedAt - startedAt,
      lostAckedWrites,
      lostKeys,
      bytesMoved: moved.bytesMoved,
      linkBytesPerSec: null,
      connections: 1,
      shedWrites: 0,
      connectionsKept: 0,
      ...checkpointFigures(method, moved.status, written),
      ...(moved.status
        ? { phasesMs: phaseDurations(moved.status.phases) }
        : {}),
      survives: null,
      loadAverage,
      ackedWrites: written.length,
      measuredAt: new Date().toISOString(),
    };
    await this.remove(app, writer);
    return run;
  }

  /** Moves the member of `app` with `method`; throws when Ferry's Migration does not succeed. */
  private async move(
    method: Method,
    route: Route,
    app: string,
    source: MemberPod,
  ): Promise<{
    bytesMoved: number;
    status?: MigrationStatus;
    startedAt?: number;
    endedAt?: number;
  }> {
    const spec: MigrationSpec = {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'notice',
      driver: method === 'valkey' ? 'valkey' : 'checkpoint',
      deadline: new Date(Date.now() + NOTICE_MS).toISOString(),
    };
    if (method === 'checkpoint') {
      const { sm } = this.nodes.machine(
        new InMemoryMigrationStore(),
        route as CheckpointRoute,
      );
      const planned = await sm.plan(NAMESPACE, `${app}-move`, spec);
      const done = await sm.run(NAMESPACE, planned.metadata.name);
      return this.succeeded(done.status, app);
    }
    if (method === 'valkey') {
      const status = await this.handOffInHub(app, spec);
      return this.succeeded(status, app);
    }
    return this.rdbRestart(app, source);
  }

  private succeeded(status: MigrationStatus | undefined, app: string) {
    if (status?.phase !== 'Succeeded') {
      throw new Error(
        `${app}'s Migration ended ${status?.phase}: ${
          status?.message
        }\n${this.nodes.nodeLogs('spot-b', 30)}`,
      );
    }
    const phases = status.phases;
    const last = phases[phases.length - 1];
    return {
      bytesMoved: status.bytesMoved,
      status,
      startedAt: Date.parse(phases[0].startedAt),
      endedAt: Date.parse(last.finishedAt ?? last.startedAt),
    };
  }

  /** The valkey hand-off, from a process in the cluster's network (test/nodes/hubMigration.ts). */
  private async handOffInHub(
    app: string,
    spec: MigrationSpec,
  ): Promise<MigrationStatus | undefined> {
    const access = this.nodes.cluster.hubAccess('ferry-bench');
    const request: HubMigrationSpec = {
      kubeconfig: access.kubeconfig,
      namespace: NAMESPACE,
      name: `${app}-move`,
      spec,
    };
    const child = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'KILL',
        '--',
        'nsenter',
        `--net=${access.netns}`,
        '--',
        process.execPath,
        '--import',
        'tsx',
        path.join(__dirname, '../test/nodes/hubMigration.ts'),
        JSON.stringify(request),
      ],
      {
        cwd: path.join(repoRoot(), 'operator'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', chunk => (out += chunk));
    child.stderr.on('data', chunk => (err += chunk));
    const code = await new Promise<number | null>(resolve =>
      child.on('exit', resolve),
    );
    const line = out.split('\n').find(l => l.startsWith(MIGRATION_LINE));
    if (code !== 0 || !line) {
      throw new Error(`the hand-off of ${app} exited ${code}: ${err || out}`);
    }
    return JSON.parse(line.slice(MIGRATION_LINE.length)).status;
  }

  /**
   * The restart from an RDB snapshot: writes paused on the source (they wait, so
   * none is acknowledged that the snapshot lacks), a new pod on spot-b fetches
   * the snapshot from the source and loads it, the Service is pointed at it once
   * it answers, and the source goes.
   */
  private async rdbRestart(
    app: string,
    source: MemberPod,
  ): Promise<{ bytesMoved: number; startedAt: number; endedAt: number }> {
    const started = Date.now();
    const sourceIp = this.kubectl([
      'get',
      'pod',
      '-n',
      NAMESPACE,
      source.name,
      '-o',
      'jsonpath={.status.podIP}',
    ]);
    // Not part of the move: by default a primary waits 5 s for more replicas before it streams a snapshot.
    this.nodes.cli(source.name, [
      'config',
      'set',
      'repl-diskless-sync-delay',
      '0',
    ]);
    const pausedAt = Date.now();
    this.nodes.cli(source.name, [
      'client',
      'pause',
      String(MOVE_TIMEOUT_MS),
      'write',
    ]);
    const restarted = `${app}-restarted`;
    this.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: restarted,
          namespace: NAMESPACE,
          labels: { member: restarted },
        },
        spec: {
          nodeName: 'spot-b',
          runtimeClassName: 'ferry',
          terminationGracePeriodSeconds: 1,
          volumes: [{ name: 'data', emptyDir: {} }],
          initContainers: [
            {
              name: 'fetch-rdb',
              image: this.image,
              imagePullPolicy: 'Never',
              command: [
                'valkey-cli',
                '-h',
                sourceIp,
                '--rdb',
                '/data/dump.rdb',
              ],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          containers: [
            {
              name: 'valkey',
              image: this.image,
              imagePullPolicy: 'Never',
              command: ['valkey-server'],
              args: [
                '--dir',
                '/data',
                '--dbfilename',
                'dump.rdb',
                '--protected-mode',
                'no',
                '--save',
                '',
                '--appendonly',
                'no',
              ],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
              ports: [{ containerPort: 6379 }],
              // Ready once loaded: a loading server answers PING with LOADING.
              readinessProbe: {
                exec: {
                  command: ['sh', '-c', '[ "$(valkey-cli ping)" = PONG ]'],
                },
                periodSeconds: 1,
              },
            },
          ],
        },
      }),
    );
    this.kubectl([
      'wait',
      '-n',
      NAMESPACE,
      '--for=condition=Ready',
      `pod/${restarted}`,
      `--timeout=${MOVE_TIMEOUT_MS / 1000}s`,
    ]);
    this.kubectl([
      'patch',
      'service',
      app,
      '-n',
      NAMESPACE,
      // The whole selector is replaced: a merge would keep `app` beside it.
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'replace',
          path: '/spec/selector',
          value: { member: restarted },
        },
      ]),
    ]);
    this.kubectl([
      'delete',
      'deployment',
      app,
      '-n',
      NAMESPACE,
      '--wait=false',
    ]);
    const bytesMoved = Number(
      this.kubectl([
        'exec',
        '-n',
        NAMESPACE,
        restarted,
        '--',
        'stat',
        '-c',
        '%s',
        '/data/dump.rdb',
      ]).trim(),
    );
    process.stdout.write(
      `  rdb-restart: writes paused ${
        Date.now() - pausedAt
      } ms until the Service moved\n`,
    );
    return { bytesMoved, startedAt: started, endedAt: Date.now() };
  }

  /** Deletes what a run made and waits until its members are gone, so the next run has the memory. */
  private async remove(app: string, writer: string): Promise<void> {
    for (const args of [
      ['deployment', app],
      ['service', app],
      ['pod', writer],
      ['pod', `${app}-restarted`],
    ]) {
      this.kubectl([
        'delete',
        ...args,
        '-n',
        NAMESPACE,
        '--ignore-not-found',
        '--wait=false',
      ]);
    }
    await waitFor(`${app}'s pods gone`, () =>
      this.kubectl(['get', 'pods', '-n', NAMESPACE, '-o', 'name'])
        .split('\n')
        .some(p => p.includes(`/${app}-`) || p === `pod/${writer}`)
        ? undefined
        : true,
    );
  }
}

/** The checkpoint's own figures: its freeze, the freeze's parts, and its floor. */
function checkpointFigures(
  method: Method,
  status: MigrationStatus | undefined,
  written: Write[],
): Partial<Run> {
  if (method !== 'checkpoint' || !status) return {};
  const state = status.driverState ?? {};
  const dump = Number(state.dumpMs);
  const stream = Number(state.streamMs);
  const restore = Number(state.restoreMs);
  const switched = status.phases.find(
    p => p.phase === 'SwitchingOver',
  )?.finishedAt;
  const restoredAt = switched ? Date.parse(switched) : undefined;
  const tail =
    restoredAt === undefined
      ? undefined
      : written
          .filter(w => w.issuedAt < restoredAt)
          .reduce((last, w) => Math.max(last, w.ackedAt), restoredAt) -
        restoredAt;
  return {
    freezeMs: status.writePauseMs,
    freezeBreakdownMs: { dump, stream, restore },
    // CRIU's own work: the dump (pages streamed to the target as they are
    // written) and runc's restore, without the pod's creation and the hand-off.
    freezeFloorMs: Number.isFinite(restore) ? dump + restore : undefined,
    clientTailMs: tail === undefined ? undefined : Math.round(tail),
    lazyCopyMs: state.lazyCopyMs ? Number(state.lazyCopyMs) : undefined,
  };
}

function phaseDurations(
  phases: { phase: string; startedAt: string; finishedAt?: string }[],
): Record<string, number> {
  const durations: Record<string, number> = {};
  for (const p of phases) {
    if (p.finishedAt) {
      durations[p.phase] = Date.parse(p.finishedAt) - Date.parse(p.startedAt);
    }
  }
  return durations;
}

async function main(): Promise<void> {
  const o = options();
  const nodes = await CheckpointNodes.start();
  const runs: Run[] = [];
  try {
    const bench = new NodesBench(nodes);
    for (const mib of o.sizes) {
      for (const { method, route } of o.moves) {
        const run = await bench.run(method, route, mib);
        runs.push(run);
        process.stdout.write(`${summaryLine(run)}\n`);
      }
    }
  } finally {
    await nodes.stop();
  }
  const file = writeResults('nodes', {
    note:
      'Real nodes (kubelet + containerd + runc, Ferry runtime wrapper and agents) on one shared machine: loadAverage is its 1-minute load when the move started. ' +
      'The client is one writer pod on a third node, a new connection per write through the Service, retrying each write until acknowledged. ' +
      "writePauseMs: issue to acknowledgement of the writes issued during the move. servedAgainMs: move start to the end of the client's longest wait. " +
      'reconnectMs: longest first-failure-to-acknowledgement of a write. route: how bytes move against the freeze (the hand-off replicates while serving). ' +
      "freezeFloorMs (checkpoint): the dump plus runc's restore, without the pod creation and the hand-off around them.",
    runs,
    valueBytes: VALUE_BYTES,
    measuredAt: new Date().toISOString(),
  });
  process.stdout.write(
    `${table(runs)}\nwrote ${path.relative(repoRoot(), file)}\n`,
  );
}

function summaryLine(r: Run): string {
  const parts = [
    `${String(r.datasetMiB).padStart(5)} MiB ${r.method.padEnd(11)} ${r.route}`,
    `pause p50/p99/max ${r.writePauseMs.p50}/${r.writePauseMs.p99}/${r.writePauseMs.max} ms`,
    `served again ${r.servedAgainMs} ms`,
    `reconnect ${r.reconnectMs} ms`,
    `total ${r.totalMs} ms`,
    `lost acked ${r.lostAckedWrites}/${r.ackedWrites}`,
    `lost keys ${r.lostKeys}`,
    `moved ${(r.bytesMoved / MIB).toFixed(1)} MiB`,
  ];
  if (r.freezeMs !== undefined) {
    const b = r.freezeBreakdownMs;
    parts.push(
      `freeze ${r.freezeMs} ms (dump ${b?.dump}, stream ${b?.stream}, restore ${b?.restore}; floor ${r.freezeFloorMs}; tail ${r.clientTailMs})`,
    );
  }
  parts.push(`load ${r.loadAverage}`);
  return parts.join('  ');
}

function table(runs: Run[]): string {
  return [
    '| dataset | method | route | load | pause p50/p99/max | served again | reconnect | total | lost acked | lost keys | moved | freeze (floor) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      r =>
        `| ${r.datasetMiB} MiB | ${r.method} | ${r.route} | ${
          r.loadAverage
        } | ${r.writePauseMs.p50}/${r.writePauseMs.p99}/${
          r.writePauseMs.max
        } ms | ${(r.servedAgainMs / 1000).toFixed(2)} s | ${(
          r.reconnectMs / 1000
        ).toFixed(2)} s | ${(r.totalMs / 1000).toFixed(2)} s | ${
          r.lostAckedWrites
        }/${r.ackedWrites} | ${r.lostKeys} | ${(r.bytesMoved / MIB).toFixed(
          1,
        )} MiB | ${
          r.freezeMs === undefined
            ? '-'
            : `${r.freezeMs} ms (${r.freezeFloorMs ?? '?'} ms)`
        } |`,
    ),
  ].join('\n');
}

main().then(
  () => process.exit(0),
  error => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  },
);
