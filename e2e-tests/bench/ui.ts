/**
 * `npm run bench -- ui`: how fast the Spot tab shows all its views for a service
 * with a year of history, on the production build of the app served by the real
 * backend (operator in demo mode), in headless Chromium; and how much of the app
 * bundle (gzipped) is Ferry's (plugins/ferry/bench/lib/bundleShare.ts).
 *
 * Target: the entity tab complete in under 1.5 s.
 *
 * The history is seeded into the plugin's SQLite database before the backend
 * starts: a year of hourly cost and availability samples and 2,000 migrations for
 * component:default/session-store, through the plugin's own store class.
 *
 * Options: --runs <n> (default 7), --skip-build (reuse packages/app/dist).
 * Writes $FERRY_BENCH_RESULTS/ui.json (entityTabMs, bundleGzipKiB, and more).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { DatabaseFerryStore } from '../../plugins/ferry-backend/src/database/DatabaseFerryStore';
import { bundleShare } from '../../plugins/ferry/bench/lib/bundleShare';
import { launchBrowser } from '../src/browser';

const ROOT = path.resolve(import.meta.dirname, '../..');
const APP_DIST = path.join(ROOT, 'packages/app/dist');
const PORT = Number(process.env.FERRY_BENCH_PORT ?? 7097);
const BASE_URL = `http://localhost:${PORT}`;
const ENTITY_REF = 'component:default/session-store';
const TARGET_ENTITY_TAB_MS = 1500;
const HOUR_MS = 3_600_000;
const YEAR_HOURS = 365 * 24;
const SEEDED_MIGRATIONS = 2000;
const STARTUP_TIMEOUT_MS = 300_000;
const VIEW_TIMEOUT_MS = 60_000;

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1] || 7) || 7;
const SKIP_BUILD = args.includes('--skip-build');

function buildApp(): number {
  const started = Date.now();
  execFileSync('yarn', ['workspace', 'app', 'build'], { cwd: ROOT, stdio: 'inherit' });
  return Date.now() - started;
}

async function seedHistory(directory: string, now: number) {
  const knex = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: path.join(directory, 'ferry.sqlite') },
    useNullAsDefault: true,
  });
  const store = await DatabaseFerryStore.create({
    database: { getClient: async () => knex } as any,
  });
  const start = now - YEAR_HOURS * HOUR_MS;
  const cost = [];
  const availability = [];
  for (let h = 1; h <= YEAR_HOURS; h++) {
    const sampledAt = start + h * HOUR_MS;
    // Two r6g.large spot members and one permanent, at the shipped demo prices.
    cost.push({ entityRef: ENTITY_REF, sampledAt, coversMs: HOUR_MS, spotUsd: 2 * 0.021 * (1 + 0.2 * Math.sin(h / 300)), permanentUsd: 0.056, onDemandUsd: 3 * 0.056 });
    const dip = h % 997 === 0;
    availability.push({ entityRef: ENTITY_REF, sampledAt, coversMs: HOUR_MS, quorumMs: dip ? HOUR_MS - 40_000 : HOUR_MS, readyMembers: dip ? 2 : 3, requiredMembers: 2 });
  }
  await store.addSamples(cost, availability);
  const reasons = ['notice', 'drain', 'rebalance', 'prediction'] as const;
  const migrations = [];
  for (let i = 0; i < SEEDED_MIGRATIONS; i++) {
    const startedAt = start + Math.floor(((i + 0.5) * YEAR_HOURS * HOUR_MS) / SEEDED_MIGRATIONS);
    const at = (ms: number) => new Date(startedAt + ms).toISOString();
    migrations.push({
      id: `bench-${i}`,
      entityRef: ENTITY_REF,
      cluster: 'demo',
      namespace: 'payments',
      workload: 'session-store',
      pod: `session-store-${i % 3}`,
      sourceNode: `ip-10-1-${i % 250}-1.eu-west-1.compute.internal`,
      targetNode: `ip-10-2-${i % 250}-1.eu-west-1.compute.internal`,
      reason: reasons[i % reasons.length],
      driver: 'valkey' as const,
      phase: 'Succeeded',
      outcome: 'succeeded' as const,
      phases: [
        { phase: 'PreparingTarget', startedAt: at(0), finishedAt: at(4000), durationMs: 4000 },
        { phase: 'Transferring', startedAt: at(4000), finishedAt: at(9000), durationMs: 5000 },
        { phase: 'SwitchingOver', startedAt: at(9000), finishedAt: at(9040), durationMs: 40 },
      ],
      bytesMoved: 64 * 1024 * 1024,
      writePauseMs: 40,
      startedAt: at(0),
      finishedAt: at(9500),
    });
  }
  await store.upsertMigrations(migrations);
  await knex.destroy();
}

async function startBackend(databaseDir: string) {
  const override = path.join(databaseDir, 'app-config.bench.yaml');
  fs.writeFileSync(
    override,
    [
      'app:',
      `  baseUrl: ${BASE_URL}`,
      'backend:',
      `  baseUrl: ${BASE_URL}`,
      '  listen:',
      `    port: ${PORT}`,
      '  cors:',
      `    origin: ${BASE_URL}`,
      '  database:',
      '    client: better-sqlite3',
      '    connection:',
      `      directory: ${databaseDir}`,
      '',
    ].join('\n'),
  );
  const backend = spawn(
    'yarn',
    ['workspace', 'backend', 'start', '--config', path.join(ROOT, 'app-config.yaml'), '--config', override],
    { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = fs.createWriteStream(path.join(databaseDir, 'backend.log'));
  backend.stdout.pipe(log);
  backend.stderr.pipe(log);
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (backend.exitCode !== null) throw new Error(`the backend exited; see ${databaseDir}/backend.log`);
    try {
      const res = await fetch(`${BASE_URL}/.backstage/health/v1/readiness`);
      if (res.ok) return backend;
    } catch {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 1000));
  }
  throw new Error(`the backend did not become ready in ${STARTUP_TIMEOUT_MS / 1000}s; see ${databaseDir}/backend.log`);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measureEntityTab() {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${BASE_URL}/`, { timeout: VIEW_TIMEOUT_MS });
    const enter = page.getByRole('button', { name: /^enter$/i });
    await enter.waitFor({ timeout: VIEW_TIMEOUT_MS });
    await enter.click();
    // The catalog is the home page; its table lists the example services once the
    // catalog has read them, which may be a few seconds after the backend is ready.
    const listed = page.getByText('session-store').first();
    const deadline = Date.now() + VIEW_TIMEOUT_MS;
    while (!(await listed.isVisible())) {
      if (Date.now() > deadline) throw new Error('the catalog never listed session-store');
      await page.waitForTimeout(2000);
      if (!(await listed.isVisible())) await page.reload();
    }

    const url = `${BASE_URL}/catalog/default/component/session-store/spot`;
    const complete = async () => {
      const tab = page.getByTestId('ferry-entity-tab');
      await tab.getByTestId('ferry-replica-row').first().waitFor({ timeout: VIEW_TIMEOUT_MS });
      await tab.getByTestId('ferry-cost').locator('svg .recharts-area, svg .recharts-bar, svg .recharts-line').first().waitFor({ timeout: VIEW_TIMEOUT_MS });
      await tab.getByTestId('ferry-migration-row').first().waitFor({ timeout: VIEW_TIMEOUT_MS });
      await tab.locator('[data-testid="ferry-loading"]').first().waitFor({ state: 'detached', timeout: VIEW_TIMEOUT_MS });
    };
    const timings: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const started = Date.now();
      await page.goto(url, { timeout: VIEW_TIMEOUT_MS });
      await complete();
      timings.push(Date.now() - started);
    }
    // The year view of the cost and availability history, after the tab is up.
    const yearStarted = Date.now();
    await page.getByRole('button', { name: /1 year/i }).click();
    await page.locator('[data-testid="ferry-loading"]').first().waitFor({ state: 'detached', timeout: VIEW_TIMEOUT_MS });
    await page.getByTestId('ferry-cost').locator('svg .recharts-area, svg .recharts-bar, svg .recharts-line').first().waitFor({ timeout: VIEW_TIMEOUT_MS });
    const yearRangeMs = Date.now() - yearStarted;
    const artifacts = path.join(ROOT, 'bench/results');
    await page.screenshot({ path: path.join(artifacts, 'ui-entity-tab-year.png'), fullPage: true });
    return { timings, yearRangeMs };
  } catch (error) {
    const page = browser.contexts()[0]?.pages()[0];
    await page?.screenshot({ path: path.join(ROOT, 'bench/results/ui-failed.png'), fullPage: true });
    throw error;
  } finally {
    await browser.close();
  }
}

async function main() {
  const buildMs = SKIP_BUILD && fs.existsSync(path.join(APP_DIST, 'index.html')) ? undefined : buildApp();
  const bundle = bundleShare(APP_DIST);
  const databaseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ui-bench-'));
  console.log(`Seeding a year of history for ${ENTITY_REF} into ${databaseDir}`);
  await seedHistory(databaseDir, Date.now());
  const backend = await startBackend(databaseDir);
  try {
    const { timings, yearRangeMs } = await measureEntityTab();
    const result = {
      entityTabMs: percentile(timings, 50),
      entityTabP95Ms: percentile(timings, 95),
      entityTabRunsMs: timings,
      entityTabYearRangeMs: yearRangeMs,
      bundleGzipKiB: +bundle.bundleGzipKiB.toFixed(1),
      pluginSourceGzipKiB: +bundle.ownGzipKiB.toFixed(1),
      chartsGzipKiB: +bundle.chartsGzipKiB.toFixed(1),
      appGzipKiB: +bundle.appGzipKiB.toFixed(1),
      appBuildMs: buildMs,
      targetEntityTabMs: TARGET_ENTITY_TAB_MS,
      meetsTarget: percentile(timings, 50) < TARGET_ENTITY_TAB_MS,
      history: { hours: YEAR_HOURS, migrations: SEEDED_MIGRATIONS },
    };
    console.table({
      'entity tab, median (ms)': result.entityTabMs,
      'entity tab, p95 (ms)': result.entityTabP95Ms,
      '1-year range after the tab (ms)': result.entityTabYearRangeMs,
      'Ferry share of the bundle, gzipped (KiB)': result.bundleGzipKiB,
      '  of which the plugin sources (KiB)': result.pluginSourceGzipKiB,
      'whole app, gzipped (KiB)': result.appGzipKiB,
    });
    const out = path.join(process.env.FERRY_BENCH_RESULTS ?? path.join(ROOT, 'bench/results'), 'ui.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    try {
      process.kill(-backend.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
