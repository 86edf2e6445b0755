/**
 * The checkpoint method on real nodes: a Deployment's Valkey member moves from one
 * kubelet + containerd node to another with its memory. The source node's agent
 * pauses and checkpoints the container with runc and CRIU, the pages stream to the
 * target's agent, and the replacement pod (runtime class `ferry`) is restored by
 * Ferry's runtime wrapper instead of started: the same process (run_id), every
 * key, uptime continuing. A crash of the restored container afterwards restarts it
 * fresh, never from the checkpoint again. A move that fails before the switch
 * leaves the source serving where it was paused.
 */
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';

jest.setTimeout(900_000);

/** Keys the member holds before the move (DEBUG POPULATE, 100-byte values). */
const KEYS = 100_000;
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
});
