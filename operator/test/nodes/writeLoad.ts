/**
 * A steady write load on a member, for the fault tests on real nodes: a Service
 * in front of the app's member and a writer pod on another node that SETs a new
 * key through it every few tens of milliseconds, logging each write the server
 * acknowledged with the time. After a fault, every acknowledged write must be in
 * the member that serves: a write acknowledged by a copy that did not survive
 * (two primaries, or a rollback past an acknowledgement) shows up as lost.
 */
import fs from 'node:fs';
import { NAMESPACE, waitFor } from './checkpointNodes';
import type { RealNodeCluster } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

/** Acknowledged writes the writer makes before a test faults anything, and after. */
export const WRITES_BEFORE_FAULT = 20;
export const WRITES_AFTER_FAULT = 20;
/** How long one write waits for its answer (valkey-cli -t). */
const WRITE_TIMEOUT_S = 2;
/** The writer's pause between writes (busybox sleep). */
const WRITE_INTERVAL_S = 0.02;

/** One acknowledged write: its key's number and when it was acknowledged (epoch ms). */
export interface AckedWrite {
  i: number;
  at: number;
}

/** A writer pod writing to an app's member through its Service. */
export class WriteLoad {
  private constructor(
    private readonly cluster: RealNodeCluster,
    readonly app: string,
    readonly pod: string,
    private readonly bootedAt: number,
  ) {}

  /**
   * Puts a Service named `app` in front of the app's members and starts a
   * writer on `node`; resolves once WRITES_BEFORE_FAULT writes were acknowledged.
   */
  static async start(
    cluster: RealNodeCluster,
    app: string,
    node: string,
  ): Promise<WriteLoad> {
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace: NAMESPACE },
        spec: { selector: { app }, ports: [{ port: 6379 }] },
      }),
    );
    const pod = `writer-${app}`;
    cluster.kubectl(
      ['apply', '-f', '-'],
      writerPod(pod, app, node, nodeTestImages().valkey.name),
    );
    cluster.kubectl([
      'wait',
      '-n',
      NAMESPACE,
      '--for=condition=Ready',
      `pod/${pod}`,
      '--timeout=240s',
    ]);
    // The writer's clock (seconds since boot: containers share the kernel) on the test's.
    const bootedAt =
      Date.now() -
      Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
    const load = new WriteLoad(cluster, app, pod, bootedAt);
    await load.waitForMore(WRITES_BEFORE_FAULT, 0);
    return load;
  }

  /** Every write acknowledged so far, in order. */
  acked(): AckedWrite[] {
    return this.cluster
      .kubectl(['logs', '-n', NAMESPACE, this.pod])
      .split('\n')
      .filter(line => line.startsWith('ack '))
      .map(line => {
        const [, i, up] = line.split(' ');
        return { i: Number(i), at: this.bootedAt + Number(up) * 1000 };
      });
  }

  /** Waits until `count` more writes than `since` were acknowledged. */
  async waitForMore(count: number, since: number): Promise<void> {
    await waitFor(`${count} acknowledged writes to ${this.app}`, () =>
      this.acked().length >= since + count ? true : undefined,
    );
  }

  /**
   * Once the member serves again: waits for WRITES_AFTER_FAULT more
   * acknowledgements, then reads the log before the keys, so every write in
   * the log was acknowledged before the scan began. Resolves with what the
   * writer saw and which of its acknowledged writes the member lacks.
   */
  async check(): Promise<{
    acked: AckedWrite[];
    lost: number[];
    longestWaitMs: (from: number, to: number) => number;
  }> {
    await this.waitForMore(WRITES_AFTER_FAULT, this.acked().length);
    const acked = this.acked();
    const present = new Set(
      this.cluster
        .kubectl([
          'exec',
          '-n',
          NAMESPACE,
          this.pod,
          '--',
          'valkey-cli',
          '-h',
          this.app,
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
    return {
      acked,
      lost: acked.filter(w => !present.has(w.i)).map(w => w.i),
      // The writer's longest stretch without an acknowledgement that overlaps [from, to].
      longestWaitMs: (from, to) =>
        Math.round(
          Math.max(
            0,
            ...acked
              .slice(1)
              .map((w, k) => ({ start: acked[k].at, end: w.at }))
              .filter(gap => gap.end >= from && gap.start <= to)
              .map(gap => gap.end - gap.start),
          ),
        ),
    };
  }

  /** Stops the writer (its Service stays, with the app). */
  stop(): void {
    this.cluster.kubectl([
      'delete',
      'pod',
      '-n',
      NAMESPACE,
      this.pod,
      '--wait=false',
    ]);
  }
}

/**
 * The writer: each SET the member answers OK is logged as `ack <i> <seconds
 * since boot>` (busybox's `date` has no sub-second format).
 */
function writerPod(
  name: string,
  app: string,
  node: string,
  image: string,
): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
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
  if [ "$(valkey-cli -h ${app} -t ${WRITE_TIMEOUT_S} SET w:$i $i 2>/dev/null)" = OK ]; then read up idle < /proc/uptime; echo "ack $i $up"; fi
  sleep ${WRITE_INTERVAL_S}
done`,
          ],
        },
      ],
    },
  });
}
