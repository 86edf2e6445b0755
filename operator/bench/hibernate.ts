/**
 * `npm run bench -- hibernate [--sizes 10,100,1024] [--samples 5]`: hibernation
 * on real nodes (test/nodes' harness: a control plane, three kubelet +
 * containerd nodes, Ferry's runtime wrapper and node agents). For each dataset
 * size a lone Valkey opted in with the shortest idle period (5 s) is filled
 * with DEBUG POPULATE (1 KiB values), then, `samples` times over, left to
 * sleep and woken by one GET from a client pod on another node.
 *
 * wakeMs is the client's time to first byte for that GET, measured in the
 * client pod by busybox `time` (10 ms steps): name lookup, the held SYN and
 * its retransmissions, the reply. releasedMiB is the store process's resident
 * memory before its first sleep (Valkey's used_memory_rss), all of which is
 * gone while it sleeps; the holder left in its place takes a few MiB of its
 * own. Writes bench/results/hibernate.json as
 * `{ runs: [{ datasetMiB, wakeMs: { p50, p99, max }, releasedMiB, … }] }`.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { HibernationStatus } from '../src/agent/ContainerHibernation';
import { HibernationController } from '../src/kube/hibernation/HibernationController';
import { KubeHibernationCluster } from '../src/kube/hibernation/HibernationCluster';
import { criuCommand } from '../src/migration/__testUtils__/agents';
import { RealNodeAgents } from '../test/nodes/nodeAgents';
import { RealNodeCluster } from '../test/nodes/RealNodeCluster';
import { nodeTestImages } from '../test/nodes/nodeTestImages';
import { parseBenchArgs, repoRoot, writeResults } from './lib/benchSupport';

const NAMESPACE = 'default';
/** The shortest idle period the annotation takes: samples come faster. */
const HIBERNATE_AFTER = '5s';
const VALUE_BYTES = 1024;
const MIB = 1024 * 1024;
/** How long one sleep or one wake may take on a loaded machine before the run gives up. */
const PHASE_TIMEOUT_MS = 600_000;
const POLL_MS = 200;

interface Sample {
  firstByteMs: number;
  agentWakeMs: number;
  restoreMs: number;
  dumpMs: number;
  imageMiB: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[
    Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  ];
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
  };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
}

async function main() {
  const args = parseBenchArgs(process.argv.slice(2));
  const sizes = (args.options.get('sizes') ?? '10,100,1024')
    .split(',')
    .map(Number);
  const samples = Number(args.options.get('samples') ?? 5);
  if (sizes.some(s => !(s > 0)) || !(samples > 0)) {
    throw new Error(
      '--sizes takes MiB such as 10,100,1024 and --samples a positive count',
    );
  }
  const images = nodeTestImages();
  const ferryRuntime = execFileSync(
    'bash',
    ['-c', 'source scripts/lib/runtime.sh && ferry_runtime'],
    {
      cwd: repoRoot(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  ).trim();
  const cluster = await RealNodeCluster.start({
    images: [images.pause.tar, images.valkey.tar],
    sandboxImage: images.pause.name,
    controlPlane: { kwok: false },
    ferryRuntime,
    criu: criuCommand(),
    maxContainerRestartPeriodSeconds: 1,
  });
  const stop = new AbortController();
  try {
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'ferry' },
        handler: 'ferry',
      }),
    );
    const agents = new RealNodeAgents(cluster);
    await agents.start(cluster.nodes.map(n => n.name));
    const controller = new HibernationController({
      cluster: new KubeHibernationCluster(cluster.controlPlane.kubeConfig()),
      agents,
    });
    void controller.run(stop.signal);
    // The client on on-demand-c, the stores on the spot nodes.
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client', namespace: NAMESPACE },
        spec: {
          nodeName: 'on-demand-c',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'client',
              image: images.valkey.name,
              imagePullPolicy: 'Never',
              command: ['sleep', 'infinity'],
            },
          ],
        },
      }),
    );
    cluster.kubectl([
      'wait',
      '--for=condition=Ready',
      'pod/client',
      '-n',
      NAMESPACE,
      '--timeout=300s',
    ]);
    const exec = (script: string) =>
      cluster
        .kubectl(['exec', '-n', NAMESPACE, 'client', '--', 'sh', '-c', script])
        .trim();

    const runs = [];
    for (const datasetMiB of sizes) {
      const name = `store-${datasetMiB}`;
      const limitMiB = datasetMiB * 3 + 256;
      cluster.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, namespace: NAMESPACE },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: name } },
            template: {
              metadata: {
                labels: { app: name },
                annotations: { 'ferry.dev/hibernate-after': HIBERNATE_AFTER },
              },
              spec: {
                runtimeClassName: 'ferry',
                terminationGracePeriodSeconds: 1,
                nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
                containers: [
                  {
                    name: 'valkey',
                    image: images.valkey.name,
                    imagePullPolicy: 'Never',
                    args: [
                      'valkey-server',
                      '--save',
                      '',
                      '--appendonly',
                      'no',
                      '--enable-debug-command',
                      'yes',
                    ],
                    ports: [{ containerPort: 6379 }],
                    resources: {
                      requests: { memory: '128Mi', cpu: '250m' },
                      limits: { memory: `${limitMiB}Mi`, cpu: '1' },
                    },
                  },
                ],
              },
            },
          },
        }),
      );
      cluster.kubectl([
        'expose',
        'deployment',
        name,
        '-n',
        NAMESPACE,
        '--port=6379',
      ]);
      const keys = Math.round((datasetMiB * MIB) / VALUE_BYTES);
      await until('the store filled', async () =>
        exec(
          `valkey-cli -h ${name} DEBUG POPULATE ${keys} key ${VALUE_BYTES}`,
        ) === 'OK'
          ? true
          : undefined,
      );
      const rss = Number(
        /used_memory_rss:(\d+)/.exec(
          exec(`valkey-cli -h ${name} INFO memory`),
        )![1],
      );
      const pod = JSON.parse(
        cluster.kubectl([
          'get',
          'pods',
          '-n',
          NAMESPACE,
          '-l',
          `app=${name}`,
          '-o',
          'json',
        ]),
      ).items[0];
      const agent = await agents.agentFor(pod.spec.nodeName);
      const status = () => agent.hibernation(`hib-${pod.metadata.uid}`);
      // A sleep before the fill (the fill woke it) counts as none of the samples.
      const base = await until(`${name} awake and watched`, async () => {
        const s = await status();
        return s.phase === 'RUNNING' ? s.hibernations : undefined;
      });
      const taken: Sample[] = [];
      for (let i = 0; i < samples; i++) {
        const asleep: HibernationStatus = await until(
          `${name} asleep (${i + 1})`,
          async () => {
            const s = await status();
            return s.phase === 'HIBERNATED' && s.hibernations === base + i + 1
              ? s
              : undefined;
          },
        );
        const out = exec(`time valkey-cli -h ${name} GET key:1 2>&1`);
        const real = /real\s+(\d+)m\s*([\d.]+)s/.exec(out);
        if (!real || !out.startsWith('value:1'))
          throw new Error(
            `the GET after sleep ${i + 1} said ${JSON.stringify(out)}`,
          );
        const woken = await until(`${name} awake (${i + 1})`, async () => {
          const s = await status();
          return s.phase === 'RUNNING' && s.restores === base + i + 1
            ? s
            : undefined;
        });
        const sample = {
          firstByteMs: Math.round(
            (Number(real[1]) * 60 + Number(real[2])) * 1000,
          ),
          agentWakeMs: woken.wakeMs ?? NaN,
          restoreMs: woken.restoreMs ?? NaN,
          dumpMs: asleep.dumpMs ?? NaN,
          imageMiB: Math.round((asleep.imageBytes ?? 0) / MIB),
        };
        taken.push(sample);
        process.stdout.write(
          `${datasetMiB} MiB, sleep ${i + 1}: ${JSON.stringify(sample)}\n`,
        );
      }
      runs.push({
        datasetMiB,
        wakeMs: summary(taken.map(s => s.firstByteMs)),
        releasedMiB: Math.round(rss / MIB),
        agentWakeMs: summary(taken.map(s => s.agentWakeMs)),
        restoreMs: summary(taken.map(s => s.restoreMs)),
        dumpMs: summary(taken.map(s => s.dumpMs)),
        imageMiB: taken[0].imageMiB,
        samples: taken.length,
        load: loadavg().map(l => Math.round(l * 10) / 10),
      });
      cluster.kubectl([
        'delete',
        'deployment',
        name,
        '-n',
        NAMESPACE,
        '--wait=false',
      ]);
    }
    const file = writeResults('hibernate', {
      note:
        'wakeMs: time to first byte of a GET from a client pod on another node, measured in that pod (busybox time, 10 ms steps); ' +
        'p99 of a handful of samples is their maximum. agentWakeMs: first held packet seen to container restored. ' +
        'releasedMiB: the store process resident memory before it slept, gone while it sleeps.',
      runs,
    });
    process.stdout.write(
      `${JSON.stringify(runs, null, 2)}\nwritten to ${path.relative(
        repoRoot(),
        file,
      )}\n`,
    );
  } finally {
    stop.abort();
    await cluster.stop();
  }
}

main().then(
  () => process.exit(0),
  error => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  },
);
