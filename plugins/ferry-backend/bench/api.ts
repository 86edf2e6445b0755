/**
 * `npm run bench -- api`: Ferry's REST API on PostgreSQL holding 1,000 services
 * with a year of hourly cost and availability samples and 100,000 migrations,
 * under 50 concurrent clients (autocannon), through the real backend stack
 * (@backstage/backend-defaults: auth, HTTP router, error handling, the plugin's
 * database from config).
 *
 * Targets: entity summary (GET .../status) p99 under 50 ms, fleet summary
 * (GET /fleet) p99 under 200 ms. Prints the figures and writes
 * $FERRY_BENCH_RESULTS/api.json (keys entitySummaryP99Ms, fleetSummaryP99Ms, and
 * the other endpoints' figures for context).
 *
 * PostgreSQL: FERRY_POSTGRES_CONNECTION_STRING, or the throwaway server that
 * scripts/lib/postgres.sh's ferry_postgres starts. The seeded database
 * (`ferry_bench`) is reused when it already holds the data set; pass --reseed
 * to rebuild it.
 *
 * Options: --duration <s> (default 20), --connections <n> (default 50), --reseed.
 */
import {
  coreServices,
  createServiceFactory,
} from '@backstage/backend-plugin-api';
import { createBackend } from '@backstage/backend-defaults';
import { ConfigReader } from '@backstage/config';
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { Knex } from 'knex';
import ferryPlugin from '../src';
import { DatabaseFerryStore } from '../src/database/DatabaseFerryStore';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon');

const SERVICES = 1000;
const HOURS = 365 * 24;
const MIGRATIONS_PER_SERVICE = 100;
const DATABASE = 'ferry_bench';
const PORT = Number(process.env.FERRY_BENCH_PORT ?? 7087);
const TOKEN = 'ferry-bench-static-token';
const TARGETS = { entitySummaryP99Ms: 50, fleetSummaryP99Ms: 200 };
const HOUR_MS = 3_600_000;

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DURATION_S = option('duration', 20);
const CONNECTIONS = option('connections', 50);
const RESEED = args.includes('--reseed');

const ref = (i: number) =>
  `component:default/svc-${String(i).padStart(4, '0')}`;

const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * The PostgreSQL to use: FERRY_POSTGRES_CONNECTION_STRING, or ferry_postgres's
 * throwaway server; `stop` stops that server if this run started it.
 */
function postgres(): { url: string; stop: () => void } {
  if (process.env.FERRY_POSTGRES_CONNECTION_STRING) {
    return {
      url: process.env.FERRY_POSTGRES_CONNECTION_STRING,
      stop: () => {},
    };
  }
  const shell = (script: string) =>
    execFileSync(
      'bash',
      [
        '-c',
        `source scripts/lib/toolchain.sh && source scripts/lib/postgres.sh && ${script}`,
      ],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
  const wasRunning =
    shell(
      'ferry_postgres_running && echo yes || true',
    ).trim() === 'yes';
  console.log(
    'Using the throwaway PostgreSQL of scripts/lib/postgres.sh (ferry_postgres)',
  );
  const out = shell(
    'ferry_postgres >&2 && printf "%s\\n%s" "$FERRY_POSTGRES_CONNECTION_STRING" "$FERRY_POSTGRES_DIR"',
  );
  const [url, dir] = out.split('\n');
  return {
    url,
    stop: () => {
      if (!wasRunning) shell(`FERRY_POSTGRES_DIR='${dir}' ferry_postgres_stop`);
    },
  };
}

async function seeded(db: Knex): Promise<boolean> {
  try {
    const [w] = await db('ferry_workloads').count({ n: '*' });
    const [m] = await db('ferry_migrations').count({ n: '*' });
    const [c] = await db('ferry_cost_samples')
      .where('entity_ref', ref(SERVICES))
      .count({ n: '*' });
    return (
      Number(w.n) === SERVICES &&
      Number(m.n) === SERVICES * MIGRATIONS_PER_SERVICE &&
      Number(c.n) === HOURS
    );
  } catch {
    return false;
  }
}

async function seed(db: Knex): Promise<void> {
  const t0 = Math.floor((Date.now() - HOURS * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const started = Date.now();
  await db.raw(
    'TRUNCATE ferry_cost_samples, ferry_availability_samples, ferry_migrations, ferry_workloads, ferry_pools',
  );
  console.log(
    `Seeding ${SERVICES} services × ${HOURS} hours of cost and availability samples…`,
  );
  await db.raw(
    `INSERT INTO ferry_cost_samples (entity_ref, sampled_at, covers_ms, spot_usd, permanent_usd, on_demand_usd)
     SELECT 'component:default/svc-' || lpad(s::text, 4, '0'), ?::bigint + h::bigint * 3600000, 3600000,
            0.04 * (1 + s % 5) * (1 + 0.2 * sin(h / 24.0)), 0.1 * (1 + s % 3), 0.45 * (1 + s % 5)
       FROM generate_series(1, ?) s, generate_series(0, ? - 1) h`,
    [t0, SERVICES, HOURS],
  );
  await db.raw(
    `INSERT INTO ferry_availability_samples (entity_ref, sampled_at, covers_ms, quorum_ms, ready_members, required_members)
     SELECT 'component:default/svc-' || lpad(s::text, 4, '0'), ?::bigint + h::bigint * 3600000, 3600000,
            CASE WHEN (s * 7919 + h) % 997 = 0 THEN 1800000 ELSE 3600000 END,
            CASE WHEN (s * 7919 + h) % 997 = 0 THEN 1 ELSE 3 END, 2
       FROM generate_series(1, ?) s, generate_series(0, ? - 1) h`,
    [t0, SERVICES, HOURS],
  );
  console.log(`Seeding ${SERVICES * MIGRATIONS_PER_SERVICE} migrations…`);
  await db.raw(
    `INSERT INTO ferry_migrations (id, entity_ref, cluster, namespace, workload, pod, source_node, target_node,
                                   reason, driver, phase, outcome, phases, bytes_moved, write_pause_ms, message,
                                   started_at, finished_at)
     SELECT 'bench/ns-' || (s % 20) || '/svc-' || s || '-' || k,
            'component:default/svc-' || lpad(s::text, 4, '0'), 'bench', 'ns-' || (s % 20), 'svc-' || s,
            'svc-' || s || '-' || (k % 3), 'node-' || ((s + k) % 500), 'node-' || ((s + k + 1) % 500),
            (ARRAY['notice','drain','rebalance','prediction'])[1 + k % 4],
            (ARRAY['valkey','checkpoint','volume','reschedule'])[1 + (s + k) % 4],
            CASE WHEN k % 50 = 0 THEN 'Failed' ELSE 'Succeeded' END,
            CASE WHEN k % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
            '[{"phase":"Planned","startedAt":"2026-01-01T00:00:00.000Z"}]',
            (s * k) % 1000000000, 5 + (k % 40), NULL,
            ?::bigint + ((k * ${HOURS} / ${MIGRATIONS_PER_SERVICE}) + s % 80)::bigint * 3600000,
            ?::bigint + ((k * ${HOURS} / ${MIGRATIONS_PER_SERVICE}) + s % 80)::bigint * 3600000 + 40000
       FROM generate_series(1, ?) s, generate_series(0, ? - 1) k`,
    [t0, t0, SERVICES, MIGRATIONS_PER_SERVICE],
  );
  const rows = Array.from({ length: SERVICES }, (_, idx) => {
    const i = idx + 1;
    const replicas = Array.from({ length: 3 + (i % 3) }, (_r, r) => ({
      pod: `svc-${i}-${r}`,
      node: `node-${(i + r) % 500}`,
      capacityType: r === 0 ? 'on-demand' : 'spot',
      instanceType: ['m6i.large', 'r5.large', 'm5.large'][r % 3],
      zone: ['us-east-1a', 'us-east-1b', 'us-east-1c'][r % 3],
      hourlyCostUsd: r === 0 ? 0.096 : 0.035,
      interruptionRisk: r === 0 ? 0 : 0.0005 * (1 + (i % 7)),
      ready: true,
    }));
    const hourly = replicas.reduce((a, r) => a + r.hourlyCostUsd, 0);
    const status = {
      replicas,
      cost: {
        hourlyCostUsd: hourly,
        onDemandHourlyCostUsd: 0.096 * replicas.length,
        spendToDateUsd: hourly * HOURS,
        savingsToDateUsd: (0.096 * replicas.length - hourly) * HOURS,
      },
      availability: {
        target: 0.999,
        observed: 0.9995,
        errorBudgetRemaining: 0.5,
        requiredMembers: Math.floor(replicas.length / 2) + 1,
        readyMembers: replicas.length,
      },
      migrationsTotal: MIGRATIONS_PER_SERVICE,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Placed',
          message: 'placed',
          lastTransitionTime: new Date().toISOString(),
        },
      ],
    };
    return {
      entity_ref: ref(i),
      cluster: 'bench',
      namespace: `ns-${i % 20}`,
      kind: 'StatefulSet',
      name: `svc-${i}`,
      enabled: true,
      policy: JSON.stringify({
        enabled: true,
        permanentRatio: 0.3,
        availabilityTarget: 0.999,
        migration: 'auto',
      }),
      policy_source: 'catalog',
      status: JSON.stringify(status),
      replicas: replicas.length,
      spot_replicas: replicas.length - 1,
      hourly_cost_usd: hourly,
      on_demand_hourly_cost_usd: status.cost.onDemandHourlyCostUsd,
      spend_to_date_usd: status.cost.spendToDateUsd,
      savings_to_date_usd: status.cost.savingsToDateUsd,
      availability: 0.9995,
      availability_target: 0.999,
      max_interruption_risk: 0.0005 * (1 + (i % 7)),
      migrations_total: MIGRATIONS_PER_SERVICE,
      reported_at: Date.now(),
      ingested_at: Date.now(),
    };
  });
  for (let i = 0; i < rows.length; i += 100)
    await db('ferry_workloads').insert(rows.slice(i, i + 100));
  await db('ferry_pools').insert(
    ['m6i.large', 'r5.large', 'm5.large', 'r7i.large'].flatMap((t, ti) =>
      ['us-east-1a', 'us-east-1b', 'us-east-1c'].map((zone, zi) => ({
        cluster: 'bench',
        zone,
        instance_type: t,
        spot_price_usd_per_hour: 0.03 + ti * 0.01,
        on_demand_price_usd_per_hour: 0.096 + ti * 0.01,
        interruption_risk: 0.0002 * (1 + ti + zi),
        replicas: 100 * (1 + zi),
        updated_at: Date.now(),
      })),
    ),
  );
  await db.raw('VACUUM ANALYZE');
  console.log(`Seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function run(title: string, pathFor: () => string, durationS: number) {
  let firstFailure: string | undefined;
  const result = await autocannon({
    url: `http://127.0.0.1:${PORT}`,
    connections: CONNECTIONS,
    duration: durationS,
    headers: { authorization: `Bearer ${TOKEN}` },
    requests: [
      {
        method: 'GET',
        setupRequest: (req: any) => ({ ...req, path: pathFor() }),
        onResponse: (status: number, body: string) => {
          if (status >= 300 && !firstFailure)
            firstFailure = `${status} ${body}`.slice(0, 500);
        },
      },
    ],
  });
  const non2xx = result.non2xx + result.errors + result.timeouts;
  const figures = {
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    failures: non2xx,
    bytesPerResponse: Math.round(
      result.throughput.total / Math.max(1, result.requests.total),
    ),
  };
  console.log(
    `${title.padEnd(28)} p50 ${figures.p50Ms} ms  p99 ${
      figures.p99Ms
    } ms  ${figures.requestsPerSecond.toFixed(0)} req/s  ${
      figures.requests
    } requests  ${non2xx} failures`,
  );
  if (non2xx > 0)
    throw new Error(
      `${title}: ${non2xx} requests failed; the first: ${firstFailure}`,
    );
  return figures;
}

type Connection = {
  host: string;
  port: number;
  user: string;
  password: string;
};

/**
 * The backend under test runs in a child process, so that the load generator
 * does not share its event loop.
 */
async function startServer(
  connection: Connection,
): Promise<{ stop: () => Promise<void> }> {
  const child = fork(__filename, ['--serve', JSON.stringify(connection)], {
    // FERRY_BENCH_CPU_PROF=<dir> writes a CPU profile of the backend there.
    execArgv: process.env.FERRY_BENCH_CPU_PROF
      ? [
          ...process.execArgv,
          '--cpu-prof',
          `--cpu-prof-dir=${process.env.FERRY_BENCH_CPU_PROF}`,
        ]
      : process.execArgv,
    stdio: 'inherit',
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', message =>
      message === 'ready' ? resolve() : reject(new Error(String(message))),
    );
    child.once('exit', code =>
      reject(new Error(`The backend exited with ${code} before it was ready`)),
    );
  });
  return {
    stop: async () => {
      const exited = new Promise(resolve => child.once('exit', resolve));
      child.send('stop');
      await exited;
    },
  };
}

/** The child: the real backend with Ferry on the seeded database, until told to stop. */
async function serve(connection: Connection) {
  const config = new ConfigReader({
    backend: {
      baseUrl: `http://127.0.0.1:${PORT}`,
      listen: { port: PORT, host: '127.0.0.1' },
      database: {
        client: 'pg',
        connection,
        plugin: { ferry: { connection: { database: DATABASE } } },
      },
      auth: {
        externalAccess: [
          { type: 'static', options: { token: TOKEN, subject: 'ferry-bench' } },
        ],
      },
    },
    permission: { enabled: false },
    ferry: {
      demo: { enabled: false },
      catalogSync: {
        schedule: {
          frequency: { hours: 24 },
          timeout: { minutes: 1 },
          initialDelay: { hours: 1 },
        },
      },
      ingestion: {
        schedule: {
          frequency: { hours: 24 },
          timeout: { minutes: 1 },
          initialDelay: { hours: 1 },
        },
      },
    },
  });
  process.env.LOG_LEVEL ??= 'warn';
  const backend = createBackend();
  backend.add(
    createServiceFactory({
      service: coreServices.rootConfig,
      deps: {},
      factory: () => config,
    }),
  );
  backend.add(ferryPlugin);
  await backend.start();
  process.send?.('ready');
  process.on('message', async message => {
    if (message === 'stop') {
      await backend.stop();
      process.exit(0);
    }
  });
}

async function main() {
  const database = postgres();
  try {
    await measure(new URL(database.url));
  } finally {
    database.stop();
  }
}

async function measure(url: URL) {
  const connection = {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
  const admin = knexFactory({
    client: 'pg',
    connection: { ...connection, database: 'postgres' },
  });
  const exists = await admin.raw(
    'SELECT 1 FROM pg_database WHERE datname = ?',
    [DATABASE],
  );
  if (exists.rows.length === 0)
    await admin.raw('CREATE DATABASE ??', [DATABASE]);
  await admin.destroy();

  const db = knexFactory({
    client: 'pg',
    connection: { ...connection, database: DATABASE },
  });
  await DatabaseFerryStore.create({ database: { getClient: async () => db } });
  if (RESEED || !(await seeded(db))) await seed(db);
  else console.log('Reusing the seeded database (pass --reseed to rebuild it)');
  const sizes = await db.raw(`SELECT
      (SELECT count(*) FROM ferry_workloads) AS services,
      (SELECT count(*) FROM ferry_cost_samples) AS cost_samples,
      (SELECT count(*) FROM ferry_availability_samples) AS availability_samples,
      (SELECT count(*) FROM ferry_migrations) AS migrations`);
  await db.destroy();
  const dataset = Object.fromEntries(
    Object.entries(sizes.rows[0]).map(([k, v]) => [k, Number(v)]),
  );
  console.log(`Data set: ${JSON.stringify(dataset)}`);

  const server = await startServer(connection);

  const loadBefore = os.loadavg()[0];
  try {
    let n = 0;
    const nextEntity = () =>
      `/api/ferry/entities/component/default/svc-${String(
        (n++ % SERVICES) + 1,
      ).padStart(4, '0')}`;
    console.log(
      `Warming up, then ${CONNECTIONS} concurrent clients for ${DURATION_S} s per endpoint`,
    );
    await run('warm-up', () => `${nextEntity()}/status`, 3);
    await run('warm-up', () => '/api/ferry/fleet', 3);
    const entitySummary = await run(
      'entity summary (status)',
      () => `${nextEntity()}/status`,
      DURATION_S,
    );
    const fleetSummary = await run(
      'fleet summary',
      () => '/api/ferry/fleet',
      DURATION_S,
    );
    const context = Math.max(5, Math.round(DURATION_S / 2));
    const cost = await run(
      'entity cost (30 days)',
      () =>
        `${nextEntity()}/cost?from=${encodeURIComponent(
          new Date(Date.now() - 30 * 24 * HOUR_MS).toISOString(),
        )}&bucket=day`,
      context,
    );
    const availability = await run(
      'entity availability (7 days)',
      () => `${nextEntity()}/availability`,
      context,
    );
    const migrations = await run(
      'entity migrations (page)',
      () => `${nextEntity()}/migrations?limit=50`,
      context,
    );

    const results = {
      entitySummaryP99Ms: entitySummary.p99Ms,
      fleetSummaryP99Ms: fleetSummary.p99Ms,
      targets: TARGETS,
      met: {
        entitySummary: entitySummary.p99Ms < TARGETS.entitySummaryP99Ms,
        fleetSummary: fleetSummary.p99Ms < TARGETS.fleetSummaryP99Ms,
      },
      entitySummary,
      fleetSummary,
      entityCost30Days: cost,
      entityAvailability7Days: availability,
      entityMigrationsPage: migrations,
      dataset,
      connections: CONNECTIONS,
      durationSeconds: DURATION_S,
      // The machine is shared: a load average above its cores inflates the tail.
      machine: {
        cpus: os.cpus().length,
        loadAverageBefore: loadBefore,
        loadAverageAfter: os.loadavg()[0],
      },
      database: 'PostgreSQL (ferry_postgres)',
      date: new Date().toISOString(),
    };
    const dir =
      process.env.FERRY_BENCH_RESULTS ??
      path.resolve(__dirname, '../../../bench/results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'api.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    console.log(
      `entitySummaryP99Ms ${results.entitySummaryP99Ms} (target < ${TARGETS.entitySummaryP99Ms}), fleetSummaryP99Ms ${results.fleetSummaryP99Ms} (target < ${TARGETS.fleetSummaryP99Ms})`,
    );
    console.log(`Wrote ${path.join(dir, 'api.json')}`);
  } finally {
    await server.stop();
  }
}

(args[0] === '--serve' ? serve(JSON.parse(args[1])) : main()).catch(error => {
  console.error(error);
  process.exit(1);
});
