/* eslint-disable no-console -- a benchmark prints its figures */
/**
 * `npm run bench -- ui-frontend [--runs N] [--build]`
 *
 * The Spot tab on the production build of packages/app, in headless Chromium:
 *
 * - `entityTabMs`: from navigation start until the tab shows all its views
 *   (summary, policy, placement, cost and availability charts, migrations)
 *   for a service with a year of history; the median of `--runs` cold loads.
 *   The app's files come from packages/app/dist and every `/api` call is
 *   answered in-process (the catalog entity, permissions, and Ferry's API from
 *   dev/FakeFerryApi over a year of history), so the figure is the frontend's
 *   own time, not the backend's or the network's.
 * - `bundleGzipKiB`: the plugin's share of the app bundle, gzipped: the bytes
 *   the source maps attribute to plugins/ferry and plugins/ferry-common, plus
 *   the charting libraries only Ferry brings (recharts and its helpers).
 *
 * Builds packages/app first when it has no build, or with `--build`.
 * Prints its figures and writes bench/results/ui-frontend.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { chromium, Route } from 'playwright-core';
import type { Entity } from '@backstage/catalog-model';
import { FakeFerryApi } from '../dev/FakeFerryApi';
import { sessionsEntity } from '../dev/sampleService';
import { bundleShare } from './lib/bundleShare';

/** The figure the issue sets for `entityTabMs` on the production build. */
const TARGET_ENTITY_TAB_MS = 1500;
/** How long one load may take before the run counts as failed. */
const LOAD_TIMEOUT_MS = 60_000;
/** Where the portal's app is served from, as its built config says. */
const APP_ORIGIN = 'http://localhost:3000';
const ENTITY_PATH = '/catalog/default/component/sessions/spot';
/** What must be on screen for the tab to count as showing all its views. */
const ALL_VIEWS = [
  '[data-testid="ferry-summary"]',
  '[data-testid="ferry-policy-preview"]',
  '[data-testid="ferry-replica-row"]',
  '[data-testid="ferry-cost-chart"] .recharts-area',
  '[data-testid="ferry-availability-chart"] .recharts-line',
  '[data-testid="ferry-migration-row"]',
];

const root = resolve(__dirname, '../../..');
const appDir = join(root, 'packages/app');
const distDir = join(appDir, 'dist');
const resultsDir =
  process.env.FERRY_BENCH_RESULTS ?? join(root, 'bench/results');

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 5;
const forceBuild = args.includes('--build');

/** The dev harness's sample service, with the uid the catalog gives an entity. */
const entity: Entity = {
  ...sessionsEntity,
  metadata: { ...sessionsEntity.metadata, uid: 'bench-sessions' },
};

function build() {
  console.log('building packages/app (production)…');
  execFileSync(
    join(root, 'node_modules/.bin/backstage-cli'),
    ['package', 'build'],
    {
      cwd: appDir,
      stdio: 'inherit',
    },
  );
}

// ---------------------------------------------------------------- entity tab

const contentTypes: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'application/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

function serveApp(route: Route) {
  const url = new URL(route.request().url());
  let file = join(distDir, decodeURIComponent(url.pathname));
  if (!file.startsWith(distDir) || !existsSync(file) || url.pathname === '/') {
    file = join(distDir, 'index.html');
  } else if (!extname(file)) {
    file = join(distDir, 'index.html');
  }
  return route.fulfill({
    status: 200,
    contentType: contentTypes[extname(file)] ?? 'application/octet-stream',
    body: readFileSync(file),
  });
}

async function answerApi(route: Route, ferry: FakeFerryApi) {
  const request = route.request();
  const url = new URL(request.url());
  const path = url.pathname.replace(/^\/api/, '');
  const json = (body: unknown, status = 200) =>
    route.fulfill({
      status,
      contentType: 'application/json',
      body: JSON.stringify(body),
    });
  const ref = { kind: 'component', namespace: 'default', name: 'sessions' };
  const q = (k: string) => url.searchParams.get(k) ?? undefined;

  const ferryEntity = path.match(
    /^\/ferry\/entities\/[^/]+\/[^/]+\/[^/]+\/(\w+)$/,
  );
  if (ferryEntity) {
    switch (ferryEntity[1]) {
      case 'status':
        return json(await ferry.getStatus(ref));
      case 'cost':
        return json(
          await ferry.getCost(ref, { from: q('from')!, to: q('to')! }),
        );
      case 'availability':
        return json(
          await ferry.getAvailability(ref, { from: q('from')!, to: q('to')! }),
        );
      case 'migrations':
        return json(
          await ferry.getMigrations(ref, {
            limit: q('limit') ? Number(q('limit')) : undefined,
            cursor: q('cursor'),
          }),
        );
      case 'policy':
        return json(await ferry.getPolicy(ref));
      default:
    }
  }
  if (path === '/ferry/fleet') return json(await ferry.getFleet());
  if (path === '/ferry/health') return json(await ferry.getHealth());
  if (path.startsWith('/catalog/entities/by-name/')) return json(entity);
  if (path === '/catalog/entities/by-refs') {
    const refs: string[] = request.postDataJSON()?.entityRefs ?? [];
    return json({
      items: refs.map(r =>
        r === 'component:default/sessions' ? entity : null,
      ),
    });
  }
  if (path.startsWith('/catalog/entities/by-query')) {
    return json({ items: [], totalItems: 0, pageInfo: {} });
  }
  if (path.startsWith('/catalog/entity-facets')) return json({ facets: {} });
  if (path === '/auth/guest/refresh') {
    const ownership = ['user:default/guest', 'group:default/platform-team'];
    const payload = {
      sub: 'user:default/guest',
      ent: ownership,
      exp: Math.floor(Date.now() / 1000) + 3600,
    };
    const b64 = (o: unknown) =>
      Buffer.from(JSON.stringify(o)).toString('base64url');
    return json({
      profile: { displayName: 'Guest' },
      backstageIdentity: {
        token: `${b64({ alg: 'none', typ: 'vnd.backstage.user' })}.${b64(
          payload,
        )}.bench`,
        expiresInSeconds: 3600,
        identity: {
          type: 'user',
          userEntityRef: 'user:default/guest',
          ownershipEntityRefs: ownership,
        },
      },
    });
  }
  if (path === '/permission/authorize') {
    const items: { id: string }[] = request.postDataJSON()?.items ?? [];
    return json({ items: items.map(i => ({ id: i.id, result: 'ALLOW' })) });
  }
  return json(
    {
      error: {
        name: 'NotFoundError',
        message: `not part of the benchmark: ${path}`,
      },
    },
    404,
  );
}

async function entityTabTimes(): Promise<number[]> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const times: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      // A fresh context per run: a cold cache, as a person opening the tab.
      const context = await browser.newContext({
        viewport: { width: 1400, height: 900 },
      });
      const ferry = new FakeFerryApi();
      await context.route(`${APP_ORIGIN}/**`, route =>
        new URL(route.request().url()).pathname.startsWith('/api/')
          ? answerApi(route, ferry)
          : serveApp(route),
      );
      await context.route('http://localhost:7007/api/**', route =>
        answerApi(route, ferry),
      );
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', e => errors.push(String(e)));
      // Sign in as guest once; the app remembers and signs in again on load.
      await page.goto(`${APP_ORIGIN}/`);
      await page.getByRole('button', { name: /^enter$/i }).click();
      await page.waitForURL(url => !url.pathname.includes('sign'), {
        timeout: LOAD_TIMEOUT_MS,
      });
      await page.waitForTimeout(500);
      // Measure a cold load: nothing of the app in the browser's cache.
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.clearBrowserCache');
      await page.goto(`${APP_ORIGIN}${ENTITY_PATH}`);
      try {
        // A string, not a function: tsx would wrap a function in helpers the page lacks.
        await page.waitForFunction(
          `${JSON.stringify(ALL_VIEWS)}.every(s => document.querySelector(s))`,
          undefined,
          { timeout: LOAD_TIMEOUT_MS, polling: 'raf' },
        );
      } catch (e) {
        const shot = join(resultsDir, 'ui-frontend-failure.png');
        await page.screenshot({ path: shot, fullPage: true });
        throw new Error(
          `the tab did not show all its views (screenshot ${shot}; page errors: ${
            errors.join('; ') || 'none'
          })`,
        );
      }
      const ms = Number(await page.evaluate('performance.now()'));
      times.push(ms);
      if (run === 0) {
        await page.screenshot({
          path: join(resultsDir, 'ui-frontend-entity-tab.png'),
          fullPage: true,
        });
      }
      console.log(`  run ${run + 1}: ${ms.toFixed(0)} ms`);
      await context.close();
    }
  } finally {
    await browser.close();
  }
  return times;
}

function median(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  mkdirSync(resultsDir, { recursive: true });
  if (
    forceBuild ||
    !existsSync(join(distDir, 'index.html')) ||
    !existsSync(join(distDir, 'static'))
  ) {
    build();
  }
  const share = bundleShare(distDir);
  console.log(`entity tab, ${runs} cold loads of ${ENTITY_PATH}:`);
  const times = await entityTabTimes();
  const result = {
    entityTabMs: Math.round(median(times)),
    bundleGzipKiB: Math.round(share.bundleGzipKiB * 10) / 10,
    entityTabRunsMs: times.map(t => Math.round(t)),
    entityTabTargetMs: TARGET_ENTITY_TAB_MS,
    ownCodeGzipKiB: Math.round(share.ownGzipKiB * 10) / 10,
    chartLibrariesGzipKiB: Math.round(share.chartsGzipKiB * 10) / 10,
    appBundleGzipKiB: Math.round(share.appGzipKiB),
    history: 'one year (daily buckets for ranges over 7 days), 140 migrations',
  };
  console.log(
    `entityTabMs ${result.entityTabMs} (median; target < ${TARGET_ENTITY_TAB_MS})\n` +
      `bundleGzipKiB ${result.bundleGzipKiB} (own code ${result.ownCodeGzipKiB} + charts ${result.chartLibrariesGzipKiB}; whole app ${result.appBundleGzipKiB})`,
  );
  writeFileSync(
    join(resultsDir, 'ui-frontend.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(`wrote ${join(resultsDir, 'ui-frontend.json')}`);
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
