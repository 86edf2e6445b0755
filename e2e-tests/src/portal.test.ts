import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { BACKEND_URL, launchBrowser } from './browser.ts';
import { capacities, eventually, openAsGuest, PAGE_TIMEOUT_MS, SETTLE_TIMEOUT_MS, shot } from './portalPages.ts';

const NODE_NAME = /ip-[\w.-]+\.compute\.internal/;

describe('the portal with the operator in demo mode', () => {
  let browser: Browser;
  let page: Page;

  before(async () => {
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await browser.close();
  });

  it('shows where the operator placed an opted-in service', async () => {
    try {
      const tab = await openAsGuest(page, '/catalog/default/component/session-store/spot', 'ferry-entity-tab');
      const rows = tab.getByTestId('ferry-replica-row');
      // session-store has three members; its catalog annotations opt it in with a
      // permanent ratio of 0.3, so one member stays permanent and two move to spot.
      const seen = await eventually(
        () => capacities(rows),
        c => c.filter(x => x === 'spot').length === 2,
      );
      assert.deepEqual([...seen].sort(), ['on-demand', 'spot', 'spot']);
      // Node names come from the operator's simulated cluster, nowhere else.
      for (const text of await rows.allInnerTexts()) {
        assert.match(text, NODE_NAME, `a node name in: ${text}`);
      }
      assert.match(await tab.getByTestId('ferry-savings').innerText(), /\$\s?\d/);

      // The demo replayed the month before the portal served: the cost chart of
      // the default 30-day range holds a point a day, not the one of a fresh start.
      const cost = tab.getByTestId('ferry-cost-chart');
      await cost.getByRole('button', { name: /show data as a table/i }).click();
      const days = await eventually(
        () => cost.locator('tbody tr').count(),
        n => n >= 28,
      );
      assert.ok(days >= 28, `${days} daily cost points`);
      // And the month's reclaims Ferry moved members through are in the timeline.
      const moved = tab.getByTestId('ferry-migration-row');
      await moved.first().waitFor({ timeout: SETTLE_TIMEOUT_MS });
      assert.match(await moved.first().innerText(), /notice|reclaim/i);
      await cost.getByRole('button', { name: /hide data table/i }).click();
      await shot(page, 'entity-spot-tab');
    } catch (error) {
      await shot(page, 'entity-spot-tab-failed');
      throw error;
    }
  });

  it('opts a service in from the tab, moves it through a spot reclaim, and keeps it available', async () => {
    try {
      const tab = await openAsGuest(page, '/catalog/default/component/agent-memory/spot', 'ferry-entity-tab');
      const policy = tab.getByTestId('ferry-policy');
      await policy.waitFor({ timeout: PAGE_TIMEOUT_MS });

      // agent-memory's catalog-info.yaml says `ferry.dev/spot: disabled`: all five
      // members run on permanent capacity until its owner opts in here.
      const rows = tab.getByTestId('ferry-replica-row');
      assert.deepEqual(
        await eventually(() => capacities(rows), c => c.length === 5),
        Array(5).fill('on-demand'),
      );
      await shot(page, 'opt-in-before');

      const toggle = policy.getByLabel(/run on spot capacity/i);
      assert.equal(await toggle.isChecked(), false);
      await toggle.check();
      // What the change does to cost and risk, before it is saved.
      const preview = tab.getByTestId('ferry-policy-preview');
      await preview.waitFor();
      assert.match(await preview.innerText(), /spot/i);
      await shot(page, 'opt-in-preview');
      await tab.getByTestId('ferry-policy-save').click();
      await tab.getByTestId('ferry-policy-saved').waitFor({ timeout: SETTLE_TIMEOUT_MS });

      // Permanent ratio 0.3 of five members: two stay permanent, three go to spot.
      const placed = await eventually(
        () => capacities(rows),
        c => c.filter(x => x === 'spot').length === 3,
      );
      assert.equal(placed.filter(x => x === 'spot').length, 3, placed.join(', '));
      await shot(page, 'opt-in-placed');

      // A spot reclaim in demo mode, through the backend as the signed-in guest.
      const spotRow = rows.and(page.locator('[data-capacity="spot"]')).first();
      const node = (await spotRow.innerText()).match(NODE_NAME)?.[0];
      assert.ok(node, 'a spot replica row names its node');
      const refresh = await page.request.get(`${BACKEND_URL}/api/auth/guest/refresh?env=development`, {
        headers: { 'x-requested-with': 'XMLHttpRequest' },
      });
      assert.equal(refresh.status(), 200, await refresh.text());
      const token = (await refresh.json()).backstageIdentity.token;
      const reclaim = await page.request.post(`${BACKEND_URL}/api/ferry/demo/reclaim`, {
        headers: { authorization: `Bearer ${token}` },
        data: { node },
      });
      assert.equal(reclaim.status(), 200, await reclaim.text());
      const { migrations } = await reclaim.json();
      assert.ok(migrations.length >= 1, 'the reclaim started a migration');

      // The migration shows up in the timeline, and the member leaves the node.
      const timeline = tab.getByTestId('ferry-migrations');
      const migrationRow = timeline.getByTestId('ferry-migration-row').first();
      await migrationRow.waitFor({ timeout: SETTLE_TIMEOUT_MS });
      assert.match(await migrationRow.innerText(), /notice|reclaim/i);
      const nodes = await eventually(
        () => rows.allInnerTexts(),
        texts => texts.length === 5 && !texts.some(t => t.includes(node!)),
      );
      assert.ok(!nodes.some(t => t.includes(node!)), `the reclaimed node ${node} still runs a member`);
      await migrationRow.click();
      const details = page.getByTestId('ferry-migration-details');
      await details.waitFor();
      assert.ok((await details.getByTestId('ferry-migration-phase').count()) >= 1);
      await shot(page, 'migration-details');
      await page.keyboard.press('Escape');

      // Availability held: the quorum never broke, so the target is still met.
      const availability = await tab.getByTestId('ferry-availability').innerText();
      assert.match(availability, /meets target/i, availability);
      await shot(page, 'after-reclaim');
    } catch (error) {
      await shot(page, 'opt-in-failed');
      throw error;
    }
  });

  it('shows the policy read-only to someone who does not own the service', async () => {
    try {
      // job-queue belongs to data-team; the guest is in platform-team.
      const readOnly = await openAsGuest(page, '/catalog/default/component/job-queue/spot', 'ferry-policy-read-only');
      assert.match(await readOnly.innerText(), /owner|permission/i);
      assert.equal(await page.getByTestId('ferry-policy-save').count(), 0);
      await shot(page, 'policy-read-only');
    } catch (error) {
      await shot(page, 'read-only-failed');
      throw error;
    }
  });

  it('lists every opted-in service on the fleet page', async () => {
    try {
      const fleet = await openAsGuest(page, '/ferry', 'ferry-fleet-page');
      const services = await eventually(
        () => fleet.getByTestId('ferry-fleet-row').allInnerTexts(),
        texts => texts.length >= 3,
      );
      for (const name of ['session-store', 'job-queue', 'agent-memory']) {
        assert.ok(services.some(t => t.includes(name)), `${name} in: ${services.join(' | ')}`);
      }
      assert.match(await fleet.getByTestId('ferry-fleet-savings').innerText(), /\$\s?\d/);
      await shot(page, 'fleet-page');
    } catch (error) {
      await shot(page, 'fleet-failed');
      throw error;
    }
  });
});
