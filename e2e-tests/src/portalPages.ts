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
