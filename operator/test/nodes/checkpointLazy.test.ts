/**
 * The checkpoint method's lazy route (post-copy) on real nodes: the source's agent
 * dumps the container without its memory pages (`runc checkpoint --lazy-pages`),
 * the target restores from those images at once through Ferry's runtime wrapper
 * (`runc restore --lazy-pages` against the target agent's `criu lazy-pages`
 * daemon) and serves, fetching each page from the paused source as it is touched
 * and the rest in the background; the source is retired once every page is
 * across. The same process continues with every byte of its memory (DEBUG DIGEST).
 */
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';

jest.setTimeout(900_000);

/** 100 MiB: 102,400 keys of 1 KiB (DEBUG POPULATE). */
const KEYS = 102_400;
const VALUE_BYTES = 1024;
/** A notice as AWS gives it: the lazy route plans its copy against it. */
const NOTICE_MS = 120_000;
let nodes: CheckpointNodes;

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
});

afterAll(async () => {
  await nodes?.stop();
});

describe('the lazy route of checkpoint moves between real nodes', () => {
  it('serves from the target before the memory is across, and ends with all of it', async () => {
    const source = await nodes.memberWithData(
      'cache-lazy',
      'spot-a',
      KEYS,
      VALUE_BYTES,
    );
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);
    const containerId = nodes.containerId(source.name);

    const { sm } = nodes.machine(new InMemoryMigrationStore(), 'lazy');
    const planned = await sm.plan(NAMESPACE, 'cache-lazy-ckpt', {
      workloadRef: { kind: 'Deployment', name: 'cache-lazy' },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'notice',
      driver: 'checkpoint',
      deadline: new Date(Date.now() + NOTICE_MS).toISOString(),
    });
    const done = await sm.run(NAMESPACE, planned.metadata.name);
    if (done.status?.phase !== 'Succeeded') {
      console.log(nodes.nodeLogs('spot-a'));
      console.log(nodes.nodeLogs('spot-b'));
    }
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    const state = done.status?.driverState ?? {};
    console.log(
      `lazy checkpoint move of ${KEYS} x ${VALUE_BYTES} B: freeze ${done.status?.writePauseMs} ms (dump ${state.dumpMs} ms, images ${state.streamMs} ms, restore ${state.restoreMs} ms), pages across ${state.lazyCopyMs} ms after the target served, ${done.status?.bytesMoved} bytes`,
    );
    expect(state.route).toBe('lazy');
    expect(Number(state.lazyCopyMs)).toBeGreaterThanOrEqual(0);
    expect(done.status?.bytesMoved).toBeGreaterThan(KEYS * VALUE_BYTES);

    const moved = await waitFor('one member, on spot-b', () => {
      const pods = nodes.podsOf('cache-lazy');
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    const after = nodes.info(moved.name);
    expect(after.runId).toBe(before.runId);
    expect(nodes.cli(moved.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(moved.name, ['get', 'written-before-the-move'])).toBe(
      'yes',
    );
    // The source was retired once its pages were across, and nothing is left.
    expect(nodes.runcState('spot-a', containerId)).toBe('gone');
    for (const node of ['spot-a', 'spot-b']) {
      expect(nodes.imagesLeft(node)).toEqual([]);
    }
    expect(nodes.cluster.logTail('spot-a/ferry-agent', 200)).toMatch(
      /lazy copy of \S+ ended: ok/,
    );
  });
});
