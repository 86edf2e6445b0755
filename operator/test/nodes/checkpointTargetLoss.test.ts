/**
 * A checkpoint move whose target node dies while it restores the member: the
 * images reached spot-b, Ferry's runtime wrapper there began `runc restore`, and
 * at that moment the node goes the way a reclaimed spot instance goes (its kubelet,
 * containerd, agent and the half-restored container killed at once, its link cut).
 *
 * The source was paused from the dump on, so it is the most up-to-date copy there
 * is: the Migration rolls back to it and ends RolledBack in bounded time, saying in
 * its message what was at risk. The same process serves every key on the source
 * node, running (not left paused), and no checkpoint image is left behind there.
 */
import fs from 'node:fs';
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';

jest.setTimeout(900_000);

/**
 * Keys the member holds (DEBUG POPULATE, 100-byte values): about 50 MB, so that
 * the restore lasts long enough for the test to catch it under way.
 */
const KEYS = 300_000;
/**
 * How long the Migration may take to reach a final phase after the target died:
 * a few agent calls that fail and a rollback, not a call's five-minute timeout
 * (a notice would run out while the source stays frozen).
 */
const SETTLE_AFTER_LOSS_MS = 120_000;

let nodes: CheckpointNodes;

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
});

afterAll(async () => {
  await nodes?.stop();
});

describe('a checkpoint move whose target node dies mid-restore', () => {
  it('rolls back to the paused source, which serves every key from the same process, and says what was at risk', async () => {
    const { cluster } = nodes;
    const app = 'cache-lost-target';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);
    const containerId = nodes.containerId(source.name);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    let ended = false;
    const running = sm.run(NAMESPACE, planned.metadata.name).finally(() => {
      ended = true;
    });
    running.catch(() => {});

    const record = await nodes.restoreBegins(
      'spot-b',
      `${NAMESPACE}.${planned.metadata.name}`,
      () => ended,
    );
    const killedAt = Date.now();
    cluster.kill(cluster.node('spot-b'));
    // What the wrapper had written when its node died: a claim alone means the
    // restore was under way.
    const wrapperSaid = fs.readFileSync(record, 'utf8').trim();
    expect(cluster.pidsOf('spot-b')).toEqual([]);

    const done = await running;
    const settledMs = Date.now() - killedAt;
    console.log(
      `target lost mid-restore (its wrapper had written '${wrapperSaid}'): ${done.status?.phase} ${settledMs} ms after the kill (failed in ${done.status?.failedPhase}): ${done.status?.message}`,
    );
    expect(wrapperSaid).toMatch(/^claimed by /);
    expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(
      /^RolledBack: /,
    );
    expect(settledMs).toBeLessThan(SETTLE_AFTER_LOSS_MS);
    // What was at risk, in words: the target's loss cost nothing, as the source held it all.
    expect(done.status?.message).toContain('spot-b');
    expect(done.status?.message).toMatch(/nothing was at risk/);

    // The source serves on: one member, the same process, every key, running.
    const serving = await waitFor('one member, on spot-a', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 && pods[0].node === 'spot-a'
        ? pods[0]
        : undefined;
    });
    expect(serving.uid).toBe(source.uid);
    expect(nodes.runcState('spot-a', containerId)).toBe('running');
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    expect(nodes.cli(serving.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(serving.name, ['dbsize'])).toBe(String(KEYS + 1));
    expect(
      nodes.cli(serving.name, ['set', 'written-after-the-loss', 'yes']),
    ).toBe('OK');
    expect(nodes.imagesLeft('spot-a')).toEqual([]);
  });
});
