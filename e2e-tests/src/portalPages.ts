import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { APP_URL, ARTIFACTS } from './browser.ts';

/** The first compile of a route in the dev server can take a while on two cores. */
export const PAGE_TIMEOUT_MS = 120_000;
/** The Spot tab asks again every 10 s; the demo runs a simulated minute a second. */
export const SETTLE_TIMEOUT_MS = 90_000;

/** Opens a portal path and waits for `testId`, signing in as a guest when the sign-in page comes first. */
export async function openAsGuest(page: Page, path: string, testId: string): Promise<Locator> {
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

/** Polls until `check` holds; returns the last value it saw, for the assertion's message. */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  timeoutMs = SETTLE_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!check(value) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 1000));
    value = await read();
  }
  return value;
}

/** The capacity of each replica row: `spot` or `on-demand`. */
export async function capacities(rows: Locator): Promise<string[]> {
  const values: string[] = [];
  for (const row of await rows.all()) {
    values.push((await row.getAttribute('data-capacity')) ?? '?');
  }
  return values;
}

/** A full-page screenshot in the artifacts folder. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Words of table headers and headings inside `scope` that the browser broke
 * across lines ("Read y", "Migratio ns"): a word whose text spans two line boxes.
 * A name may still wrap after a hyphen or a slash ("job-" / "queue"), where
 * lines may break.
 */
export async function wordsBrokenInside(page: Page, scope: string): Promise<string[]> {
  return page.evaluate(selector => {
    const broken: string[] = [];
    for (const root of document.querySelectorAll(selector)) {
      for (const header of root.querySelectorAll('th, [role=columnheader], h1, h2, h3, h4, h5, h6')) {
        const walker = document.createTreeWalker(header, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const text = node.textContent ?? '';
          for (const word of text.matchAll(/[^\s\-/]+/g)) {
            const range = document.createRange();
            range.setStart(node, word.index!);
            range.setEnd(node, word.index! + word[0].length);
            const lines = new Set(
              [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)),
            );
            if (lines.size > 1) broken.push(`'${word[0]}' in '${header.textContent?.trim()}'`);
          }
        }
      }
    }
    return broken;
  }, scope);
}
