import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../browser.ts';
import { capacities, eventually, openAsGuest, PAGE_TIMEOUT_MS, shot } from '../portalPages.ts';

// The portal against the playground's real nodes (scripts/e2e.sh --cluster playground
// starts both): an owner opts a service in from the Spot tab, the backend writes its
// SpotPolicy, the operator running from its image moves real pods, a drain becomes
// a migration in the timeline, and the cost and availability views fill from the
// cluster's status.

const KUBECTL = process.env.FERRY_KUBECTL ?? 'kubectl';
/** Real pods take their time: image unpacking, a Valkey hand-off, the tab's refresh. */
const MOVE_TIMEOUT_MS = 240_000;

function kubectl(args: string[]): string {
  return execFileSync(KUBECTL, args, { encoding: 'utf8' });
}

function json<T>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json'])) as T;
}

interface PodList {
  items: { metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string } }[];
}

interface MigrationList {
  items: {
    metadata: { name: string };
    spec: { pod: string; sourceNode: string; reason: string; workloadRef: { name: string } };
    status?: { phase?: string; targetPod?: string; targetNode?: string; message?: string };
  }[];
}

/** The value a member holds under `key`, read on the member itself (its own server, not the Service). */
function memberValue(pod: string, key: string): string {
  return kubectl(['exec', '-n', 'assistants', pod, '-c', 'valkey', '--', 'valkey-cli', 'GET', key]).trim();
}

function agentMemoryMigrations(): MigrationList['items'] {
  return json<MigrationList>(['get', 'migrations', '-n', 'assistants']).items.filter(
    m => m.spec.workloadRef.name === 'agent-memory',
  );
}

function capacityOfNode(node: string): string {
  return kubectl(['get', 'node', node, '-o', 'jsonpath={.metadata.labels.karpenter\\.sh/capacity-type}']);
}

describe('the portal against the playground', () => {
  let browser: Browser;
  let page: Page;
  let drain: ReturnType<typeof spawn> | undefined;

  before(async () => {
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    drain?.kill();
    await browser.close();
  });

  it('opts agent-memory in from the Spot tab, moves its real pods, and shows a drain as a migration', async t => {
    const started = Date.now();
    // Each step's time in the output: real pods on a loaded machine, worth seeing when one is slow.
    const step = (text: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${text}`);
    try {
      const tab = await openAsGuest(page, '/catalog/default/component/agent-memory/spot', 'ferry-entity-tab');
      const policy = tab.getByTestId('ferry-policy');
      await policy.waitFor({ timeout: PAGE_TIMEOUT_MS });
      const rows = tab.getByTestId('ferry-replica-row');
      await eventually(() => rows.count(), n => n === 3, PAGE_TIMEOUT_MS);
      await shot(page, 'playground-opt-in-before');

      // Before the opt-in every member runs on permanent capacity (the workload's
      // own node selector), and each holds a key naming it: a member that moves
      // takes its data along.
      const before = json<PodList>(['get', 'pods', '-n', 'assistants', '-l', 'app=agent-memory']).items;
      assert.equal(before.length, 3);
      for (const pod of before) {
        assert.equal(capacityOfNode(pod.spec.nodeName!), 'on-demand', `${pod.metadata.name} before the opt-in`);
        kubectl(['exec', '-n', 'assistants', pod.metadata.name, '-c', 'valkey', '--', 'valkey-cli', 'SET', 'member', pod.metadata.name]);
      }

      // 1. Opt in from the tab.
      const toggle = policy.getByLabel(/run on spot capacity/i);
      assert.equal(await toggle.isChecked(), false);
      await toggle.check();
      await tab.getByTestId('ferry-policy-save').click();
      await tab.getByTestId('ferry-policy-saved').waitFor({ timeout: PAGE_TIMEOUT_MS });
      step('1. opted in from the Spot tab (saved)');

      // 2. The backend wrote the SpotPolicy into the cluster.
      const written = json<{ spec: { enabled: boolean }; metadata: { annotations?: Record<string, string> } }>([
        'get',
        'spotpolicy',
        'agent-memory',
        '-n',
        'assistants',
      ]);
      assert.equal(written.spec.enabled, true);
      assert.equal(written.metadata.annotations?.['ferry.dev/policy-source'], 'portal');
      step('2. SpotPolicy assistants/agent-memory in the cluster: enabled, source portal');

      // 3. The operator, running from its image, places the members as the policy
      // says: one of three on permanent capacity (ratio 0.3, rounded up), two on spot.
      const placed = await eventually(
        () => capacities(rows),
        c => c.filter(x => x === 'spot').length === 2 && c.length === 3,
        MOVE_TIMEOUT_MS,
      );
      assert.deepEqual([...placed].sort(), ['on-demand', 'spot', 'spot']);
      await shot(page, 'playground-opt-in-placed');
      step(`3. the tab shows ${[...placed].sort().join(', ')}`);

      // The members that ran before the opt-in moved (re-placement, reason `policy`),
      // each to a member on spot that holds its data.
      const succeeded = () =>
        agentMemoryMigrations().filter(m => m.spec.reason === 'policy' && m.status?.phase === 'Succeeded');
      const moved = await eventually(async () => succeeded(), list => list.length >= 2, MOVE_TIMEOUT_MS);
      assert.equal(
        moved.length,
        2,
        `two policy moves succeeded: ${JSON.stringify(agentMemoryMigrations().map(m => [m.metadata.name, m.status?.phase, m.status?.message]))}`,
      );
      const original = new Set(before.map(p => p.metadata.name));
      for (const migration of moved) {
        assert.ok(original.has(migration.spec.pod), `${migration.spec.pod} ran before the opt-in`);
        const target = migration.status!.targetPod!;
        assert.equal(capacityOfNode(migration.status!.targetNode!), 'spot');
        assert.equal(memberValue(target, 'member'), migration.spec.pod, `${target} holds ${migration.spec.pod}'s data`);
        step(`3. ${migration.spec.pod} (${migration.spec.sourceNode}) moved to ${target} (${migration.status!.targetNode}) with its data`);
      }

      // 4. `kubectl drain` of a spot node that runs a member becomes a migration.
      const pods = json<PodList>(['get', 'pods', '-n', 'assistants', '-l', 'app=agent-memory']);
      const onSpot = pods.items.find(p => p.spec.nodeName && capacityOfNode(p.spec.nodeName) === 'spot');
      assert.ok(onSpot, 'a member runs on a spot node');
      const node = onSpot.spec.nodeName!;
      // drain retries the eviction that Ferry's webhook holds until the member has moved.
      drain = spawn(KUBECTL, ['drain', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=300s', node], {
        stdio: 'ignore',
      });
      const timeline = tab.getByTestId('ferry-migrations');
      const migrationRow = timeline.getByTestId('ferry-migration-row').filter({ hasText: /drain/i }).first();
      await migrationRow.waitFor({ timeout: MOVE_TIMEOUT_MS });
      step(`4. kubectl drain ${node}: the timeline shows '${(await migrationRow.innerText()).replace(/\s+/g, ' ')}'`);
      const left = await eventually(
        async () => json<PodList>(['get', 'pods', '-n', 'assistants', '-l', 'app=agent-memory']),
        list =>
          list.items.length === 3 &&
          list.items.every(p => p.spec.nodeName && p.spec.nodeName !== node && p.status.phase === 'Running'),
        MOVE_TIMEOUT_MS,
      );
      assert.ok(
        left.items.every(p => p.spec.nodeName !== node),
        `a member still runs on the drained node ${node}`,
      );
      step(`4. no member left on ${node}: ${left.items.map(p => `${p.metadata.name}@${p.spec.nodeName}`).join(', ')}`);
      await shot(page, 'playground-drain-migration');

      // 5. Cost and availability come from the SpotPolicy's status.
      const availability = await eventually(
        () => tab.getByTestId('ferry-availability').innerText(),
        text => /\d+(\.\d+)?\s?%/.test(text),
        MOVE_TIMEOUT_MS,
      );
      assert.match(availability, /\d+(\.\d+)?\s?%/, availability);
      const cost = await tab.getByTestId('ferry-cost').innerText();
      assert.match(cost, /\$\s?\d|price/i, cost);
      step(`5. availability '${availability.replace(/\s+/g, ' ').slice(0, 80)}', cost '${cost.replace(/\s+/g, ' ').slice(0, 80)}'`);
      await shot(page, 'playground-after-drain');
    } catch (error) {
      await shot(page, 'playground-failed');
      throw error;
    }
  });
});
