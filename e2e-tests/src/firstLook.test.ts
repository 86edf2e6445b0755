import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from './browser.ts';
import { eventually, openAsGuest, SETTLE_TIMEOUT_MS, shot, wordsBrokenInside } from './portalPages.ts';

// Runs before the other browser suites (files run in name order), so its
// screenshots are the portal's first minute: the month the demo replayed before
// it served, before any test opts a service in or reclaims a node.

const WIDTHS = [1280, 1920];
const THEMES = ['light', 'dark'] as const;
const ENTITY = '/catalog/default/component/session-store';

/** Each Ferry page, how to tell it has its data, and the element that holds Ferry's part of it. */
const PAGES: {
  name: string;
  path: string;
  testId: string;
  scope: string;
  ready: (page: Page) => Promise<void>;
  /** Opens what the page hides at first (data tables), to check its headers as well. */
  expand?: (page: Page) => Promise<void>;
}[] = [
  {
    name: 'fleet-page',
    path: '/ferry',
    testId: 'ferry-fleet-page',
    scope: '[data-testid="ferry-fleet-page"]',
    ready: async page => {
      const rows = page.getByTestId('ferry-fleet-row');
      const n = await eventually(() => rows.count(), c => c >= 3);
      assert.ok(n >= 3, `${n} services on the fleet page`);
    },
  },
  {
    name: 'spot-tab',
    path: `${ENTITY}/spot`,
    testId: 'ferry-entity-tab',
    scope: '[data-testid="ferry-entity-tab"]',
    ready: async page => {
      await page.getByTestId('ferry-replica-row').first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      await page.getByTestId('ferry-migration-row').first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      await page.getByTestId('ferry-at-risk-moment').first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      await page.getByTestId('ferry-cost-chart').locator('.recharts-area').first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
    },
    expand: async page => {
      // The charts' data tables, so their headers are checked too: the cost
      // table holds a row a day of the replayed month.
      for (const chart of ['ferry-cost-chart', 'ferry-availability-chart']) {
        await page.getByTestId(chart).getByRole('button', { name: /show data as a table/i }).click();
      }
      const days = await eventually(
        () => page.getByTestId('ferry-cost-chart').locator('tbody tr').count(),
        n => n >= 28,
      );
      assert.ok(days >= 28, `${days} days in the cost chart`);
    },
  },
  {
    name: 'overview-card',
    path: ENTITY,
    testId: 'ferry-spot-card',
    scope: '[data-testid="ferry-spot-card"]',
    ready: async page => {
      const card = page.getByTestId('ferry-spot-card');
      const text = await eventually(() => card.innerText(), t => /\$\s?\d/.test(t));
      assert.match(text, /\$\s?\d/);
    },
  },
];

describe('the first look at the demo, at 1280 and 1920 px, light and dark', () => {
  let browser: Browser;

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser.close();
  });

  for (const theme of THEMES) {
    describe(`${theme} theme`, () => {
      let context: BrowserContext;
      let page: Page;

      before(async () => {
        context = await browser.newContext({ colorScheme: theme, viewport: { width: WIDTHS[0], height: 1000 } });
        // Backstage keeps the picked theme in local storage under 'theme'.
        await context.addInitScript(id => window.localStorage.setItem('theme', id), theme);
        page = await context.newPage();
      });

      after(async () => {
        await context.close();
      });

      for (const target of PAGES) {
        it(`shows the ${target.name} with no header broken inside a word`, async () => {
          try {
            for (const width of WIDTHS) {
              await page.setViewportSize({ width, height: 1000 });
              await openAsGuest(page, target.path, target.testId);
              await target.ready(page);
              assert.deepEqual(await wordsBrokenInside(page, target.scope), [], `at ${width} px`);
              await shot(page, `first-look-${target.name}-${width}-${theme}`);
              if (target.expand) {
                await target.expand(page);
                assert.deepEqual(await wordsBrokenInside(page, target.scope), [], `at ${width} px, expanded`);
              }
            }
          } catch (error) {
            await shot(page, `first-look-${target.name}-${theme}-failed`);
            throw error;
          }
        });
      }
    });
  }
});
