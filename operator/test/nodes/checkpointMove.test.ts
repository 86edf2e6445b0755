/**
 * The checkpoint method on real nodes: a Deployment's Valkey member moves from one
 * kubelet + containerd node to another with its memory. The source node's agent
 * pauses and checkpoints the container with runc and CRIU, the pages stream to the
 * target's agent, and the replacement pod (runtime class `ferry`) is restored by
 * Ferry's runtime wrapper instead of started: the same process (run_id), every
 * key, uptime continuing. A crash of the restored container afterwards restarts it
 * fresh, never from the checkpoint again. A move that fails before the switch
 * leaves the source serving where it was paused.
 *
 * Faults, each under a steady write load (writeLoad.ts) that must lose no
 * acknowledged write: the target's agent killed mid-restore, the target's image
 * directory full, and the link to the target cut during the transfer, restored
 * after a few seconds or not at all.
 */
import fs from 'node:fs';
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';
import { WriteLoad } from './writeLoad';

jest.setTimeout(900_000);

/** Keys the member holds before the move (DEBUG POPULATE, 100-byte values). */
const KEYS = 100_000;
/** How long the link to the target stays cut in the transfer: a network blip, shorter than a node's grace. */
const LINK_CUT_MS = 5_000;
/**
 * How long a move whose target is cut off for good may take to roll back: in
 * the transfer, the source agent's bound on the target's silence (15 s) and
 * TCP's next retransmission; in the switch, its wait for the target's agent
 * (15 s); then the rollback.
 */
const LINK_LOSS_SETTLE_MS = 90_000;
/** The writer runs on the node that no case moves to or from. */
const WRITER_NODE = 'on-demand-c';
let nodes: CheckpointNodes;

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
});

afterAll(async () => {
  await nodes?.stop();
});

describe('checkpoint moves between real nodes', () => {
  it('moves a Deployment member with its memory: the same process continues on the target, restored once', async () => {
    const { cluster } = nodes;
    const source = await nodes.memberWithData('cache', 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, 'cache-ckpt', {
      workloadRef: { kind: 'Deployment', name: 'cache' },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const done = await sm.run(NAMESPACE, planned.metadata.name);
    if (done.status?.phase !== 'Succeeded') {
      console.log(nodes.nodeLogs('spot-b'));
    }
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    const state = done.status?.driverState ?? {};
    // The figures of this move, for whoever reads the test's output.
    console.log(
      `checkpoint move of ${KEYS} keys: freeze ${done.status?.writePauseMs} ms (dump ${state.dumpMs} ms, stream ${state.streamMs} ms), ${done.status?.bytesMoved} bytes`,
    );
    expect(done.status?.bytesMoved).toBeGreaterThan(KEYS * 100);
    expect(done.status?.writePauseMs).toBeGreaterThan(0);

    // The ReplicaSet adopted the restored member and removed the old one.
    const moved = await waitFor('one member, on spot-b', () => {
      const pods = nodes.podsOf('cache');
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    const owner = cluster.kubectl([
      'get',
      'pod',
      moved.name,
      '-o',
      'jsonpath={.metadata.ownerReferences[0].kind}',
    ]);
    expect(owner).toBe('ReplicaSet');
    const after = nodes.info(moved.name);
    expect(after.runId).toBe(before.runId);
    expect(after.uptime).toBeGreaterThanOrEqual(before.uptime);
    expect(nodes.cli(moved.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(moved.name, ['get', 'written-before-the-move'])).toBe(
      'yes',
    );
    // Checkpoint images hold the process's memory: none is left on either node.
    for (const node of ['spot-a', 'spot-b']) {
      expect(nodes.imagesLeft(node)).toEqual([]);
    }

    // Restored once: a crash restarts the container fresh, never from the checkpoint.
    nodes.cli(moved.name, ['set', 'written-after-the-move', 'yes']);
    expect(() => nodes.cli(moved.name, ['debug', 'segfault'])).toThrow();
    await waitFor('the restarted container', () => {
      const restarts = cluster.kubectl([
        'get',
        'pod',
        moved.name,
        '-o',
        'jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}',
      ]);
      return restarts === '1 true' ? true : undefined;
    });
    const restarted = nodes.info(moved.name);
    expect(restarted.runId).not.toBe(before.runId);
    expect(nodes.cli(moved.name, ['dbsize'])).toBe('0');
  });

  it('survives the source agent killed mid-dump: the member serves every key from the same process, nothing left paused', async () => {
    const source = await nodes.memberWithData(
      'cache-agent-crash',
      'spot-a',
      KEYS,
    );
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);
    const containerId = nodes.containerId(source.name);
    const runcState = () => nodes.runcState('spot-a', containerId);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, 'cache-agent-crash-ckpt', {
      workloadRef: { kind: 'Deployment', name: 'cache-agent-crash' },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const running = sm.run(NAMESPACE, planned.metadata.name);
    // The agent dies as soon as it has paused the container for its dump.
    await waitFor(
      'the source paused for the dump',
      () => (runcState() === 'paused' ? true : undefined),
      120_000,
    );
    nodes.agents.kill('spot-a');
    await nodes.agents.restart('spot-a');
    const done = await running;
    console.log(
      `after the source agent's crash: ${done.status?.phase}: ${
        done.status?.message ?? ''
      }`,
    );
    expect(done.status?.phase).toMatch(/^(Succeeded|RolledBack)$/);

    const serving = await waitFor('one member serving', () => {
      const pods = nodes.podsOf('cache-agent-crash');
      return pods.length === 1 ? pods[0] : undefined;
    });
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    expect(nodes.cli(serving.name, ['debug', 'digest'])).toBe(digest);
    // Moved: the paused source was retired; rolled back: it runs on.
    expect(runcState()).toBe(serving.node === 'spot-a' ? 'running' : 'gone');
  });
  it('rolls back when the source agent stays down through every retry: once it is back, the source runs on, not left paused', async () => {
    const app = 'cache-agent-down';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);
    const containerId = nodes.containerId(source.name);
    const runcState = () => nodes.runcState('spot-a', containerId);

    const { sm, store } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const running = sm.run(NAMESPACE, planned.metadata.name);
    running.catch(() => {});
    await waitFor(
      'the source paused for the dump',
      () => (runcState() === 'paused' ? true : undefined),
      120_000,
      10,
    );
    // Down until the transfer has used up its attempts and the rollback began,
    // which needs this agent to resume the paused container.
    nodes.agents.kill('spot-a');
    await waitFor('the rollback', async () =>
      (await store.get(NAMESPACE, planned.metadata.name))?.status?.phase ===
      'RollingBack'
        ? true
        : undefined,
    );
    await nodes.agents.restart('spot-a');
    const done = await running;
    expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(
      /^RolledBack: [\s\S]*nothing was at risk/,
    );

    const [serving] = nodes.podsOf(app);
    expect(serving.uid).toBe(source.uid);
    expect(runcState()).toBe('running');
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    expect(nodes.cli(serving.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.imagesLeft('spot-a')).toEqual([]);
  });

  it('finishes a move whose target agent dies mid-restore and comes back, under writes: no acknowledged write lost', async () => {
    const app = 'cache-target-agent';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const containerId = nodes.containerId(source.name);
    const load = await WriteLoad.start(nodes.cluster, app, WRITER_NODE);

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
    // The wrapper claims the images just before its runc restore: the agent
    // dies then, and its DaemonSet starts it again.
    await nodes.restoreBegins(
      'spot-b',
      `${NAMESPACE}.${planned.metadata.name}`,
      () => ended,
    );
    const startedAt = Date.now();
    nodes.agents.kill('spot-b');
    await nodes.agents.restart('spot-b');
    const backAt = Date.now();
    const done = await running;
    console.log(
      `target agent killed mid-restore, back ${backAt - startedAt} ms later: ${
        done.status?.phase
      } ${Date.now() - startedAt} ms after the kill: ${
        done.status?.message ?? ''
      }`,
    );
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    const moved = await waitFor('one member, on spot-b', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    expect(nodes.info(moved.name).runId).toBe(before.runId);
    expect(nodes.runcState('spot-a', containerId)).toBe('gone');
    await expectEveryWriteKept(load, startedAt);
    for (const node of ['spot-a', 'spot-b']) {
      expect(nodes.imagesLeft(node)).toEqual([]);
    }
  });

  it('refuses a move to a node whose image directory is full before it pauses the source, which serves on under writes', async () => {
    const app = 'cache-full-target';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const containerId = nodes.containerId(source.name);
    const load = await WriteLoad.start(nodes.cluster, app, WRITER_NODE);
    // spot-b's image tmpfs: a few MiB, all of it taken.
    const { cluster } = nodes;
    const filler = cluster.pathOnNode(
      'spot-b',
      `${cluster.node('spot-b').imagesDir}/.filler`,
    );
    cluster.resizeImagesDir('spot-b', '4m');
    try {
      fs.writeFileSync(filler, Buffer.alloc(4 * 2 ** 20));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    }
    try {
      const { sm } = nodes.machine();
      const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
        workloadRef: { kind: 'Deployment', name: app },
        pod: source.name,
        sourceNode: 'spot-a',
        targetNode: 'spot-b',
        reason: 'drain',
        driver: 'checkpoint',
      });
      const startedAt = Date.now();
      let paused = false;
      const watching = setInterval(() => {
        paused ||= nodes.runcState('spot-a', containerId) === 'paused';
      }, 50);
      const done = await sm
        .run(NAMESPACE, planned.metadata.name)
        .finally(() => clearInterval(watching));
      console.log(
        `target image directory full: ${done.status?.phase} in ${
          Date.now() - startedAt
        } ms: ${done.status?.message ?? ''}`,
      );
      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
        /^RolledBack: .*image directory of the target node spot-b has 0 MiB free.*more room/,
      );
      expect(paused).toBe(false);
      const [serving] = nodes.podsOf(app);
      expect(serving.uid).toBe(source.uid);
      expect(nodes.runcState('spot-a', containerId)).toBe('running');
      expect(nodes.info(serving.name).runId).toBe(before.runId);
      await expectEveryWriteKept(load, startedAt);
    } finally {
      fs.rmSync(filler, { force: true });
      cluster.resizeImagesDir('spot-b', '50%');
    }
  });

  it('survives the link to the target cut during the transfer and restored: one member serves, no acknowledged write lost', async () => {
    const app = 'cache-link-cut';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const containerId = nodes.containerId(source.name);
    const load = await WriteLoad.start(nodes.cluster, app, WRITER_NODE);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const running = sm.run(NAMESPACE, planned.metadata.name);
    running.catch(() => {});
    await waitFor(
      'the source paused for the dump',
      () =>
        nodes.runcState('spot-a', containerId) === 'paused' ? true : undefined,
      120_000,
      10,
    );
    const startedAt = Date.now();
    nodes.cluster.setLink('spot-b', false);
    await new Promise(resolve => setTimeout(resolve, LINK_CUT_MS));
    nodes.cluster.setLink('spot-b', true);
    const done = await running;
    console.log(
      `link to the target cut for ${LINK_CUT_MS} ms in the transfer: ${
        done.status?.phase
      } ${Date.now() - startedAt} ms after the cut (failed in ${
        done.status?.failedPhase ?? 'none'
      }): ${done.status?.message ?? ''}`,
    );
    expect(done.status?.phase).toMatch(/^(Succeeded|RolledBack)$/);
    const serving = await waitFor('one member serving', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 ? pods[0] : undefined;
    });
    expect(serving.node).toBe(
      done.status?.phase === 'Succeeded' ? 'spot-b' : 'spot-a',
    );
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    // Moved: the paused source was retired; rolled back: it runs on.
    expect(nodes.runcState('spot-a', containerId)).toBe(
      serving.node === 'spot-a' ? 'running' : 'gone',
    );
    await expectEveryWriteKept(load, startedAt);
  });
  it('rolls back in bounded time when the link to the target is cut during the transfer for good: the source serves on, no acknowledged write lost', async () => {
    const app = 'cache-link-lost';
    const { cluster } = nodes;
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const containerId = nodes.containerId(source.name);
    const load = await WriteLoad.start(cluster, app, WRITER_NODE);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    const running = sm.run(NAMESPACE, planned.metadata.name);
    running.catch(() => {});
    await waitFor(
      'the source paused for the dump',
      () =>
        nodes.runcState('spot-a', containerId) === 'paused' ? true : undefined,
      120_000,
      10,
    );
    const cutAt = Date.now();
    cluster.setLink('spot-b', false);
    try {
      const done = await running;
      const settledMs = Date.now() - cutAt;
      console.log(
        `link to the target cut for good in the transfer: ${
          done.status?.phase
        } ${settledMs} ms after the cut (failed in ${
          done.status?.failedPhase ?? 'none'
        }): ${done.status?.message ?? ''}`,
      );
      expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(
        /^RolledBack: [\s\S]*spot-b[\s\S]*nothing was at risk/,
      );
      expect(settledMs).toBeLessThan(LINK_LOSS_SETTLE_MS);
      const [serving] = nodes.podsOf(app);
      expect(serving.uid).toBe(source.uid);
      expect(nodes.runcState('spot-a', containerId)).toBe('running');
      expect(nodes.info(serving.name).runId).toBe(before.runId);
      await expectEveryWriteKept(load, cutAt);
      expect(nodes.imagesLeft('spot-a')).toEqual([]);
    } finally {
      cluster.setLink('spot-b', true);
      cluster.kubectl([
        'wait',
        '--for=condition=Ready',
        'node/spot-b',
        '--timeout=180s',
      ]);
    }
  });
});

/**
 * Every write the writer saw acknowledged is in the member that serves now,
 * and writes go on; logs the writer's longest wait since `faultAt`.
 */
async function expectEveryWriteKept(
  load: WriteLoad,
  faultAt: number,
): Promise<void> {
  const { acked, lost, longestWaitMs } = await load.check();
  console.log(
    `${load.app}: ${acked.length} acknowledged writes, ${
      lost.length
    } lost; the writer's longest wait from the fault on ${longestWaitMs(
      faultAt - 1000,
      Date.now(),
    )} ms`,
  );
  expect(
    `${lost.length} of ${acked.length} acknowledged writes lost ${lost
      .slice(0, 20)
      .join(', ')}`,
  ).toBe(`0 of ${acked.length} acknowledged writes lost `);
  load.stop();
}
