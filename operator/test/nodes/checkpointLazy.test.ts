/**
 * The checkpoint method's lazy route (post-copy) on real nodes: the source's agent
 * dumps the container without its memory pages (`runc checkpoint --lazy-pages`),
 * the target restores from those images at once through Ferry's runtime wrapper
 * (`runc restore --lazy-pages` against the target agent's `criu lazy-pages`
 * daemon) and serves, fetching each page from the paused source as it is touched
 * and the rest in the background; the source is retired once every page is
 * across. The same process continues with every byte of its memory (DEBUG DIGEST).
 *
 * Its price: until the last page is across, the paused source holds memory the
 * replacement serves without. When the source node dies mid-copy, the
 * replacement (whose missing pages would read as zeros) is deleted, and the
 * Migration fails saying that the writes it acknowledged went with it.
 */
import { LAZY_COPY_MIN_LEAD_MS } from '../../src/kube/runtimes/checkpoint/KubeCheckpointDriver';
import { NamespacePods } from '../../src/kube/runtimes/valkey/KubeValkeyMembers';
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';

jest.setTimeout(900_000);

/** 100 MiB: 102,400 keys of 1 KiB (DEBUG POPULATE). */
const KEYS = 102_400;
const VALUE_BYTES = 1024;
/** How long a move may take to end once its source died mid-copy: its deadline's wait and a rollback. */
const SETTLE_AFTER_LOSS_MS = 120_000;
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
    // No nft table of CRIU's network lock is left in the source pod's network
    // namespace: the agent deletes any a lazy dump leaves there and looks
    // again (through the sandbox's namespace, as the dump ends the process).
    const copyEnded = /lazy copy of \S+ ended: .*/.exec(
      nodes.cluster.logTail('spot-a/ferry-agent', 200),
    )?.[0];
    console.log(`spot-a's agent: ${copyEnded}`);
    expect(copyEnded).toMatch(
      /ended: ok \((removed inet CRIU-[\w-]+; )?no CRIU network lock left\)/,
    );
  });

  it('deletes the replacement and fails, saying what was lost, when the source node dies mid-copy', async () => {
    const { cluster } = nodes;
    const app = 'cache-lazy-lost-source';
    // 300 MiB, so that the copy outlasts the test's look at the switch.
    const source = await nodes.memberWithData(
      app,
      'spot-a',
      3 * KEYS,
      VALUE_BYTES,
    );
    const store = new InMemoryMigrationStore();
    const { sm } = nodes.machine(store, 'lazy');
    // The shortest notice the lazy route takes: the copy's wait ends at the deadline.
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'on-demand-c',
      reason: 'notice',
      driver: 'checkpoint',
      deadline: new Date(
        Date.now() + LAZY_COPY_MIN_LEAD_MS + 15_000,
      ).toISOString(),
    });
    let ended = false;
    const running = sm.run(NAMESPACE, planned.metadata.name).finally(() => {
      ended = true;
    });
    running.catch(() => {});

    // The moment the ReplicaSet adopts the replacement (the hand-off's switch),
    // clients are sent to it, and its pages are still coming from spot-a.
    const pods = new NamespacePods(
      cluster.controlPlane.kubeConfig(),
      NAMESPACE,
    );
    await waitFor(
      'the replacement adopted, serving',
      async () => {
        if (ended) return true;
        const replacement = (await store.get(NAMESPACE, planned.metadata.name))
          ?.status?.targetPod;
        const pod = replacement ? await pods.get(replacement) : undefined;
        return pod?.metadata?.ownerReferences?.some(ref => ref.controller)
          ? true
          : undefined;
      },
      undefined,
      20,
    );
    if (ended) {
      const early = await running;
      throw new Error(
        `the move ended before the replacement served: ${early.status?.phase}: ${early.status?.message}`,
      );
    }
    const killedAt = Date.now();
    cluster.kill(cluster.node('spot-a'));

    let settleTimer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      running,
      new Promise<never>((_, reject) => {
        settleTimer = setTimeout(async () => {
          const now = await store.get(NAMESPACE, planned.metadata.name);
          reject(
            new Error(
              `the move did not end within ${SETTLE_AFTER_LOSS_MS} ms of the kill: ${
                now?.status?.phase
              }: ${now?.status?.message}\n${nodes.nodeLogs('on-demand-c')}`,
            ),
          );
        }, SETTLE_AFTER_LOSS_MS);
      }),
    ]).finally(() => clearTimeout(settleTimer));
    const settledMs = Date.now() - killedAt;
    console.log(
      `source lost mid lazy copy: ${done.status?.phase} ${settledMs} ms after the kill (failed in ${done.status?.failedPhase}): ${done.status?.message}`,
    );
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.failedPhase).toBe('SwitchingOver');
    // What was lost, and what to do, in words.
    expect(done.status?.message).toMatch(
      /lazy copy of \S+ memory from spot-a did not end \(the agent of spot-a stopped answering, and the deadline passed\)/,
    );
    expect(done.status?.message).toMatch(
      /so it was deleted, and with it every write it acknowledged/,
    );
    expect(done.status?.message).toMatch(
      /the paused source, the only other copy, is lost with its node/,
    );
    expect(done.status?.message).toMatch(
      /delete it if spot-a is not coming back/,
    );
    // No member serves memory it never received, and no image outlives the move.
    expect(nodes.podsOf(app).filter(pod => pod.node === 'on-demand-c')).toEqual(
      [],
    );
    expect(nodes.imagesLeft('on-demand-c')).toEqual([]);
  });
});
