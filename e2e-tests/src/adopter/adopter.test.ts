// The adopter's app in Chromium: an app from @backstage/create-app with Ferry
// installed from its release tarballs as the READMEs say (scripts/adopter.sh
// starts it and passes its URLs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { APP_URL, ARTIFACTS, launchBrowser } from '../browser.ts';

const TEMPLATE = process.env.FERRY_ADOPTER_TEMPLATE ?? 'new';
// The dev server compiles each route on first use; slow on a loaded two-core machine.
const PAGE_TIMEOUT_MS = 240_000;
// The demo runs a simulated minute a wall second; the tab asks again every 10 s.
const SETTLE_TIMEOUT_MS = 120_000;
/** The entity the backend README's demo step adds to examples/entities.yaml. */
const ENTITY_PATH = '/catalog/default/component/session-store';

async function openAsGuest(page: Page, path: string, testId: string): Promise<Locator> {
  await page.goto(`${APP_URL}${path}`, { timeout: PAGE_TIMEOUT_MS });
  const enter = page.getByRole('button', { name: /^enter$/i });
  const target = page.getByTestId(testId);
  await enter.or(target).first().waitFor({ timeout: PAGE_TIMEOUT_MS });
  if (await enter.isVisible()) {
    await enter.click();
  }
  await target.waitFor({ timeout: PAGE_TIMEOUT_MS });
  return target;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${TEMPLATE}-${name}.png`), fullPage: true });
}

describe(`Ferry in a fresh ${TEMPLATE} app from create-app, installed from its tarballs`, () => {
  let browser: Browser;
  let page: Page;

  before(async () => {
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await browser.close();
  });

  it('shows the Spot tab of an annotated entity with data from the demo operator', async () => {
    try {
      const tab = await openAsGuest(page, `${ENTITY_PATH}/spot`, 'ferry-entity-tab');
      const rows = tab.getByTestId('ferry-replica-row');
      await rows.first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      // session-store has three members in the demo; the default permanent ratio keeps one permanent.
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      while ((await rows.count()) < 3 && Date.now() < deadline) {
        await page.waitForTimeout(1000);
      }
      assert.equal(await rows.count(), 3);
      // The catalog's annotations opt it in at the backend's first catalog sync, and the
      // tab asks again every 10 s: a warm app answers before the members have moved.
      const capacitiesNow = async () =>
        Promise.all((await rows.all()).map(row => row.getAttribute('data-capacity')));
      let capacities = await capacitiesNow();
      while (!capacities.includes('spot') && Date.now() < deadline + SETTLE_TIMEOUT_MS) {
        await page.waitForTimeout(1000);
        capacities = await capacitiesNow();
      }
      assert.ok(capacities.includes('spot'), `a member on spot: ${capacities.join(', ')}`);
      assert.match(await tab.getByTestId('ferry-savings').innerText(), /\$\s?\d/);
      await shot(page, 'entity-spot-tab');
    } catch (error) {
      await shot(page, 'entity-spot-tab-failed');
      throw error;
    }
  });

  it('loads the fleet page with the opted-in service', async () => {
    try {
      const fleet = await openAsGuest(page, '/ferry', 'ferry-fleet-page');
      await fleet.getByTestId('ferry-fleet-row').first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      assert.match(await fleet.innerText(), /session-store/);
      await shot(page, 'fleet-page');
    } catch (error) {
      await shot(page, 'fleet-page-failed');
      throw error;
    }
  });
});
