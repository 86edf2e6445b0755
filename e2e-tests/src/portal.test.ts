import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { APP_URL, ARTIFACTS, launchBrowser } from './browser.ts';

// The first compile of a route in the dev server can take a while on two cores.
const PAGE_TIMEOUT_MS = 120_000;

/** Opens a portal path, signing in as a guest when the sign-in page comes first. */
async function openAsGuest(page: Page, path: string): Promise<void> {
  await page.goto(`${APP_URL}${path}`, { timeout: PAGE_TIMEOUT_MS });
  const enter = page.getByRole('button', { name: /^enter$/i });
  const signedIn = page.locator('nav, [data-testid="ferry-entity-tab"]');
  await Promise.race([
    enter.waitFor({ timeout: PAGE_TIMEOUT_MS }),
    signedIn.first().waitFor({ timeout: PAGE_TIMEOUT_MS }),
  ]);
  if (await enter.isVisible()) {
    await enter.click();
  }
}

test('the Spot tab of an example entity shows where the operator placed its replicas', async () => {
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  try {
    await openAsGuest(page, '/catalog/default/component/session-store/spot');

    const tab = page.getByTestId('ferry-entity-tab');
    await tab.waitFor({ timeout: PAGE_TIMEOUT_MS });
    const rows = tab.getByTestId('ferry-replica-row');
    // session-store has three members; its catalog annotations opt it in with a
    // permanent ratio of 0.3, so one member stays permanent and two move to spot.
    // The tab refreshes itself while the operator places them.
    let texts: string[] = [];
    const deadline = Date.now() + PAGE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      texts = await rows.allInnerTexts();
      if (texts.filter(t => /\bspot\b/i.test(t)).length === 2) break;
      await page.waitForTimeout(1000);
    }
    assert.equal(texts.length, 3, `three replica rows, saw: ${texts.join(' | ')}`);
    assert.equal(texts.filter(t => /\bspot\b/i.test(t)).length, 2, texts.join(' | '));
    assert.equal(texts.filter(t => /\bpermanent\b/i.test(t)).length, 1, texts.join(' | '));
    // Node names come from the operator's simulated cluster, nowhere else.
    for (const text of texts) {
      assert.match(text, /compute\.internal/, `a node name in: ${text}`);
    }

    await page.screenshot({ path: join(ARTIFACTS, 'entity-spot-tab.png'), fullPage: true });
  } catch (error) {
    await page.screenshot({ path: join(ARTIFACTS, 'entity-spot-tab-failed.png'), fullPage: true });
    throw error;
  } finally {
    await browser.close();
  }
});
