/**
 * A checkpoint move of 100 MiB under a steady write load, against a spot notice:
 * a one-member Valkey Deployment on spot-a holds 100 MiB, a writer on another node
 * SETs a new key through the member's Service every few tens of milliseconds and
 * logs each write the server acknowledged, with the time. The cloud's notice taints
 * spot-a (RealNodeCluster.reclaim, as AWS Node Termination Handler does) and the
 * move to spot-b is planned at that moment with the notice's deadline, as the
 * disruption controller plans it; at the deadline spot-a dies outright.
 *
 * Then every write the writer saw acknowledged, before, during and after the move
 * and the kill, is in the member on spot-b, which is the same Valkey process. The
 * test reports the freeze the writer saw (its longest stretch without an
 * acknowledgement) beside the one the Migration recorded.
 */
import fs from 'node:fs';
import { CheckpointNodes, NAMESPACE, waitFor } from './checkpointNodes';

jest.setTimeout(1_200_000);

/** 100 MiB of values: 102,400 keys of 1 KiB (DEBUG POPULATE). */
const KEYS = 102_400;
const VALUE_BYTES = 1024;
/** The notice's length: AWS gives two minutes. */
const NOTICE_SECONDS = 120;
/** Acknowledged writes the writer must have made before the notice, and after the kill. */
const WRITES_BEFORE = 20;
const WRITES_AFTER = 20;
const APP = 'cache-notice';

let nodes: CheckpointNodes;

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
});

afterAll(async () => {
  await nodes?.stop();
});

/**
 * A writer pod on `node`: each SET the member answers OK is logged as
 * `ack <i> <seconds since boot>` (the image's busybox `date` has no sub-second
 * format; /proc/uptime is the machine's, as containers share its kernel).
 */
function writerPod(node: string, image: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'writer', namespace: NAMESPACE },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'writer',
          image,
          imagePullPolicy: 'Never',
          command: [
            'sh',
            '-c',
            `i=0
while true; do
  i=$((i+1))
  if [ "$(valkey-cli -h ${APP} -t 2 SET w:$i $i 2>/dev/null)" = OK ]; then read up idle < /proc/uptime; echo "ack $i $up"; fi
  sleep 0.02
done`,
          ],
        },
      ],
    },
  });
}

describe('a checkpoint move of 100 MiB under writes, on a spot notice', () => {
  it('loses no acknowledged write when the source node dies at the deadline', async () => {
    const { cluster } = nodes;
    const source = await nodes.memberWithData(APP, 'spot-a', KEYS, VALUE_BYTES);
    const before = nodes.info(source.name);
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: APP, namespace: NAMESPACE },
        spec: { selector: { app: APP }, ports: [{ port: 6379 }] },
      }),
    );
    const image = cluster.kubectl([
      'get',
      'pod',
      '-n',
      NAMESPACE,
      source.name,
      '-o',
      'jsonpath={.spec.containers[0].image}',
    ]);
    cluster.kubectl(['apply', '-f', '-'], writerPod('on-demand-c', image));
    cluster.kubectl([
      'wait',
      '-n',
      NAMESPACE,
      '--for=condition=Ready',
      'pod/writer',
      '--timeout=240s',
    ]);
    // The writer's clock (seconds since boot) on the test's (epoch ms).
    const bootedAt =
      Date.now() -
      Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
    const acked = () =>
      cluster
        .kubectl(['logs', '-n', NAMESPACE, 'writer'])
        .split('\n')
        .filter(line => line.startsWith('ack '))
        .map(line => {
          const [, i, up] = line.split(' ');
          return { i: Number(i), at: bootedAt + Number(up) * 1000 };
        });
    await waitFor(`${WRITES_BEFORE} acknowledged writes`, () =>
      acked().length >= WRITES_BEFORE ? true : undefined,
    );

    // The notice, and the move planned on it with its deadline.
    const reclaim = cluster.reclaim('spot-a', {
      noticeSeconds: NOTICE_SECONDS,
    });
    reclaim.catch(() => {});
    const noticedAt = Date.now();
    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${APP}-notice`, {
      workloadRef: { kind: 'Deployment', name: APP },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'notice',
      driver: 'checkpoint',
      deadline: new Date(noticedAt + NOTICE_SECONDS * 1000).toISOString(),
    });
    const done = await sm.run(NAMESPACE, planned.metadata.name);
    const movedAt = Date.now();
    const state = done.status?.driverState ?? {};
    if (done.status?.phase !== 'Succeeded') {
      console.log(nodes.nodeLogs('spot-b'));
    }
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    const { killedAt } = await reclaim;
    expect(movedAt).toBeLessThan(killedAt);
    expect(cluster.pidsOf('spot-a')).toEqual([]);

    // Writes go on after the kill, to the member on spot-b.
    const ackedAtKill = acked().length;
    await waitFor(`${WRITES_AFTER} acknowledged writes after the kill`, () =>
      acked().length >= ackedAtKill + WRITES_AFTER ? true : undefined,
    );
    const moved = await waitFor('one member, on spot-b', () => {
      const pods = nodes.podsOf(APP);
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    expect(nodes.info(moved.name).runId).toBe(before.runId);

    // Every write acknowledged so far is there: the log is read before the keys.
    const written = acked();
    const present = new Set(
      cluster
        .kubectl([
          'exec',
          '-n',
          NAMESPACE,
          'writer',
          '--',
          'valkey-cli',
          '-h',
          APP,
          '--scan',
          '--pattern',
          'w:*',
          '--count',
          '1000',
        ])
        .trim()
        .split('\n')
        .map(key => Number(key.slice(2))),
    );
    const lost = written.filter(w => !present.has(w.i));
    expect(
      `${lost.length} of ${written.length} acknowledged writes lost${
        lost.length
          ? ` (${lost
              .slice(0, 20)
              .map(w => w.i)
              .join(', ')}...)`
          : ''
      }`,
    ).toBe(`0 of ${written.length} acknowledged writes lost`);
    expect(
      Number(nodes.cli(moved.name, ['dbsize'])) - present.size,
    ).toBeGreaterThanOrEqual(KEYS + 1);

    // The freeze the writer saw: its longest stretch without an acknowledgement,
    // from the notice until the move ended; and its usual stretch, for comparison.
    const gaps = written
      .slice(1)
      .map((w, k) => ({ from: written[k].at, ms: w.at - written[k].at }));
    const during = gaps.filter(
      g => g.from >= noticedAt - 1000 && g.from <= movedAt,
    );
    const freeze = Math.round(Math.max(...during.map(g => g.ms)));
    const usual = gaps
      .filter(g => g.from < noticedAt)
      .map(g => Math.round(g.ms))
      .sort((a, b) => a - b);
    console.log(
      `checkpoint of ${KEYS} x ${VALUE_BYTES} B under writes on a ${NOTICE_SECONDS} s notice: moved ${
        movedAt - noticedAt
      } ms after the notice, ${Math.round(
        (killedAt - movedAt) / 1000,
      )} s before the deadline; the writer's longest wait for an acknowledgement ${freeze} ms (its median ${
        usual[Math.floor(usual.length / 2)]
      } ms before the notice); the Migration's freeze ${
        done.status?.writePauseMs
      } ms (dump ${state.dumpMs} ms, stream ${state.streamMs} ms), ${
        done.status?.bytesMoved
      } bytes; ${written.length} acknowledged writes (${
        written.length - ackedAtKill
      } after the kill), none lost`,
    );
    expect(freeze).toBeGreaterThan(0);
  });
});
