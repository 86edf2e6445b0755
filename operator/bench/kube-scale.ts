/**
 * `npm run bench -- kube-scale`: the operator, as its own process (src/main.ts,
 * the chart's entry point), on a real control plane holding a large cluster of
 * kwok nodes and pods (operator/test/kube/LocalControlPlane.ts).
 *
 * The cluster: `--nodes` kwok nodes (80 % spot, 20 % on-demand, every instance
 * type in every zone), `--workloads` opted-in StatefulSets of `--members`
 * members each on spot nodes, and plain pods up to `--pods` in all. Pods are
 * created bound to their node (no scheduler: kwok plays every kubelet and marks
 * them Running). Then, one after the other:
 *
 * 1. Start-up: the operator process from spawn to `/readyz` 200 (its caches
 *    synced over every node and pod).
 * 2. Webhook: pods of an opted-in StatefulSet created at `--rate` a second for
 *    `--seconds` from a separate process; the placement webhook's time per review
 *    (p99 from the operator's own histogram, interpolated within its bucket).
 * 3. Reclaim: `--reclaim` spot nodes that hold members, across pools, get an AWS
 *    Node Termination Handler taint at once; taint to Migration p99, the Migration
 *    seen through a watch.
 * 4. Relist: etcd compacted to its current revision, then the full list of nodes
 *    and pods a reflector makes after `410 Gone`.
 *
 * Throughout: the operator's peak RSS (VmHWM), and the API requests it makes (the
 * API server's audit log, for its service account alone) and how many got 429.
 * Writes bench/results/kube-scale.json (`nodes`, `pods`, `readyMs`,
 * `peakRssMiB`, `taintToMigrationP99Ms`, `webhookP99Ms`, `apiRequestsPerSec`,
 * `relistMs`, and the rest). Options: `--nodes`, `--pods`, `--workloads`,
 * `--members`, `--reclaim` (at most `--workloads` for each tainted node to be a
 * different workload's first move), `--rate`, `--seconds`, and `--profile DIR`
 * for the operator's CPU profile (`node --cpu-prof`) and a heap snapshot.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Migration } from '../src/api/v1alpha1';
import { FERRY_API_VERSION } from '../src/api/v1alpha1';
import { MUTATE_PODS_PATH } from '../src/kube/admission/AdmissionWebhookServer';
import { apiRequest } from '../src/kube/client/apiRequest';
import { Reflector } from '../src/kube/informers/Reflector';
import { MIGRATIONS } from '../src/kube/client/resources';
import {
  FAKE_INSTANCE_TYPES,
  FAKE_ZONES,
  FakeInstanceType,
  FakeNodeSpec,
  fakeNode,
} from '../test/kube/fakeNodes';
import { installFerryCrds } from '../test/kube/ferryCrds';
import { LocalControlPlane } from '../test/kube/LocalControlPlane';
import {
  numberOption,
  parseBenchArgs,
  pathOption,
  round,
  writeResults,
} from './lib/benchSupport';

/** The targets of the issue. */
const TARGETS = {
  readyMs: 60_000,
  peakRssMiB: 1024,
  taintToMigrationP99Ms: 1_000,
  webhookP99Ms: 10,
};
const NAMESPACE = 'bench-scale';
const FILLER_NAMESPACE = 'bench-filler';
const OPERATOR_NAMESPACE = 'ferry-system';
const OPERATOR_ACCOUNT = 'ferry-operator';
const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_ACCOUNT}`;
/** Requests to the API server at once while the cluster is filled. */
const FILL_CONCURRENCY = 48;
const MAIN = path.resolve(__dirname, '../src/main.ts');
const NTH_TAINT = 'aws-node-termination-handler/spot-itn';

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, everyMs));
  }
}

function say(line: string): void {
  process.stdout.write(`kube-scale: ${line}\n`);
}

/** Many writes to the API server over keep-alive connections, a bounded number at once. */
class BulkWriter {
  private readonly agent: https.Agent;

  constructor(
    private readonly server: string,
    private readonly token: string,
    ca: string,
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: FILL_CONCURRENCY,
      ca,
    });
  }

  private send(
    method: string,
    urlPath: string,
    body: unknown,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(this.server + urlPath),
        {
          method,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.token}`,
            'content-type': 'application/json',
          },
        },
        res => {
          let text = '';
          res.on('data', chunk => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  /** POSTs every object, retrying 429s and connection resets; returns the created objects. */
  async createAll(
    items: { path: string; body: unknown }[],
  ): Promise<unknown[]> {
    const created: unknown[] = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        for (let attempt = 1; ; attempt++) {
          try {
            const { status, text } = await this.send(
              'POST',
              items[i].path,
              items[i].body,
            );
            if (status === 201 || status === 200) {
              created[i] = JSON.parse(text);
              break;
            }
            if (status !== 429 && status < 500) {
              throw new Error(`${items[i].path}: ${status} ${text}`);
            }
          } catch (error) {
            if (attempt >= 10) throw error;
          }
          await new Promise(resolve => setTimeout(resolve, 200 * attempt));
        }
      }
    };
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker));
    return created;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The fleet: spot and on-demand nodes over every pool (instance type x zone). */
function fleetOf(nodes: number): FakeNodeSpec[] {
  const types = Object.keys(FAKE_INSTANCE_TYPES) as FakeInstanceType[];
  const fleet: FakeNodeSpec[] = [];
  for (let i = 0; i < nodes; i++) {
    const spot = i % 5 !== 4;
    fleet.push({
      name: `${spot ? 'spot' : 'od'}-${i}`,
      capacityType: spot ? 'spot' : 'on-demand',
      instanceType: types[i % types.length],
      zone: FAKE_ZONES[Math.floor(i / types.length) % FAKE_ZONES.length],
    });
  }
  return fleet;
}

function podBody(
  name: string,
  labels: Record<string, string>,
  node: string | undefined,
  owner?: { name: string; uid: string },
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels,
      ownerReferences: owner && [
        {
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          name: owner.name,
          uid: owner.uid,
          controller: true,
        },
      ],
    },
    spec: {
      nodeName: node,
      containers: [
        {
          name: 'valkey',
          image: 'valkey/valkey:8',
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
        },
      ],
    },
  };
}

function statefulSetBody(name: string, replicas: number) {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
        },
      },
    },
  };
}

function spotPolicyBody(name: string) {
  return {
    apiVersion: FERRY_API_VERSION,
    kind: 'SpotPolicy',
    metadata: { name },
    spec: {
      workloadRef: { kind: 'StatefulSet', name },
      enabled: true,
      migration: 'reschedule',
    },
  };
}

/** The p-quantile of a Prometheus histogram, interpolated linearly within its bucket. */
function histogramQuantile(
  metricsText: string,
  metric: string,
  q: number,
): number {
  const buckets: [number, number][] = [];
  for (const line of metricsText.split('\n')) {
    const m = line.match(
      new RegExp(`^${metric}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)`),
    );
    if (!m) continue;
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    const existing = buckets.find(([bound]) => bound === le);
    if (existing) existing[1] += Number(m[2]);
    else buckets.push([le, Number(m[2])]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lower;
      return lower + ((bound - lower) * (rank - below)) / (count - below || 1);
    }
    lower = bound;
    below = count;
  }
  return lower;
}

/** The operator as the chart runs it: src/main.ts in a process of its own. */
class OperatorProcess {
  output = '';
  readonly child: ChildProcess;

  constructor(
    kubeconfig: string,
    configFile: string,
    private readonly profileDir?: string,
  ) {
    // With a profile directory: a CPU profile of the whole run (written when the
    // process exits) and a heap snapshot on SIGUSR2 (`heapSnapshot`).
    const profiling = profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          '--heapsnapshot-signal=SIGUSR2',
          `--diagnostic-dir=${profileDir}`,
        ]
      : [];
    this.child = spawn(
      process.execPath,
      [...profiling, '--import', 'tsx', MAIN, `--config=${configFile}`],
      {
        cwd: path.resolve(__dirname, '..'),
        env: {
          ...process.env,
          KUBECONFIG: kubeconfig,
          POD_NAME: 'ferry-operator-bench',
          POD_NAMESPACE: OPERATOR_NAMESPACE,
          FERRY_BIND_ADDRESS: '127.0.0.1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stdout!.on('data', chunk => (this.output += chunk));
    this.child.stderr!.on('data', chunk => (this.output += chunk));
  }

  /** The most memory the process has held (VmHWM), in MiB. */
  peakRssMiB(): number {
    const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) / 1024;
  }

  /** Writes a heap snapshot into the profile directory; resolves once it is written. */
  async heapSnapshot(): Promise<void> {
    if (!this.profileDir) return;
    const count = () =>
      fs.readdirSync(this.profileDir!).filter(f => f.endsWith('.heapsnapshot'))
        .length;
    const before = count();
    this.child.kill('SIGUSR2');
    // The file appears when the snapshot starts; its size settles when it ends.
    await until('the heap snapshot', async () => count() > before, 120_000);
    let size = -1;
    await until(
      'the heap snapshot to be written',
      async () => {
        const file = fs
          .readdirSync(this.profileDir!)
          .filter(f => f.endsWith('.heapsnapshot'))
          .map(f => fs.statSync(path.join(this.profileDir!, f)).size);
        const now = file.reduce((a, b) => a + b, 0);
        const settled = now === size;
        size = now;
        return settled;
      },
      300_000,
      2_000,
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise(resolve => this.child.on('exit', resolve));
    this.child.kill('SIGTERM');
    // A CPU profile is written at exit, which takes a while for a long run.
    const timer = setTimeout(
      () => this.child.kill('SIGKILL'),
      this.profileDir ? 120_000 : 10_000,
    );
    await exited;
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

/** The operator's audit events: requests and 429 answers, by second. */
function readAudit(file: string): { at: number; code: number }[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(line => JSON.parse(line))
    .filter(e => e.user?.username === OPERATOR_USER)
    .map(e => ({
      at: Date.parse(e.requestReceivedTimestamp),
      code: e.responseStatus?.code ?? 0,
    }));
}

/** A kubeconfig for the operator's own service account, bound to cluster-admin. */
async function operatorKubeconfig(
  cluster: LocalControlPlane,
  kc: KubeConfig,
  dir: string,
): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({
    namespace: OPERATOR_NAMESPACE,
    body: { metadata: { name: OPERATOR_ACCOUNT } },
  });
  await apiRequest(
    kc,
    'POST',
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    {
      body: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'ferry-operator-bench' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'cluster-admin',
        },
        subjects: [
          {
            kind: 'ServiceAccount',
            name: OPERATOR_ACCOUNT,
            namespace: OPERATOR_NAMESPACE,
          },
        ],
      },
    },
  );
  const token = (
    await core.createNamespacedServiceAccountToken({
      namespace: OPERATOR_NAMESPACE,
      name: OPERATOR_ACCOUNT,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    })
  ).status!.token;
  const file = path.join(dir, 'operator.kubeconfig');
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'bench',
          cluster: {
            server: cluster.server,
            'certificate-authority-data': Buffer.from(cluster.caPem).toString(
              'base64',
            ),
          },
        },
      ],
      users: [{ name: 'operator', user: { token } }],
      contexts: [
        { name: 'bench', context: { cluster: 'bench', user: 'operator' } },
      ],
      'current-context': 'bench',
    }),
  );
  return file;
}

/** Creates pods of one opted-in StatefulSet at `rate` a second from another process. */
const POD_LOAD_SCRIPT = `
const https = require('node:https');
const agent = new https.Agent({ keepAlive: true, maxSockets: 128, ca: process.env.LOAD_CA });
const rate = Number(process.env.LOAD_RATE), total = Number(process.env.LOAD_TOTAL);
const owner = JSON.parse(process.env.LOAD_OWNER);
const url = new URL(process.env.LOAD_SERVER + '/api/v1/namespaces/' + process.env.LOAD_NAMESPACE + '/pods');
let created = 0, failures = 0, throttled = 0;
function create(i) {
  return new Promise(resolve => {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'Pod',
      metadata: { name: owner.name + '-' + i, labels: { app: owner.name },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: owner.name, uid: owner.uid, controller: true }] },
      spec: { schedulingGates: [{ name: 'ferry.dev/bench' }],
        containers: [{ name: 'valkey', image: 'valkey/valkey:8', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] } });
    const req = https.request(url, { method: 'POST', agent, headers: {
      authorization: 'Bearer ' + process.env.LOAD_TOKEN, 'content-type': 'application/json' } }, res => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 201) created++; else if (res.statusCode === 429) throttled++; else failures++; resolve(); });
    });
    req.on('error', () => { failures++; resolve(); });
    req.end(body);
  });
}
(async () => {
  const started = Date.now(); const inFlight = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise(r => setTimeout(r, wait));
    inFlight.push(create(i));
  }
  await Promise.all(inFlight);
  process.stdout.write(JSON.stringify({ created, failures, throttled, elapsedS: (Date.now() - started) / 1000 }));
  agent.destroy();
})();
`;

async function main() {
  const args = parseBenchArgs(process.argv.slice(2));
  const nodes = numberOption(args, 'nodes', 5_000);
  const pods = numberOption(args, 'pods', 50_000);
  const workloads = numberOption(args, 'workloads', 1_250);
  const members = numberOption(args, 'members', 4);
  const reclaim = numberOption(args, 'reclaim', 350);
  const rate = numberOption(args, 'rate', 500);
  const seconds = numberOption(args, 'seconds', 4);
  // `--profile DIR`: the operator's CPU profile and a heap snapshot at its peak go there.
  const profileDir = pathOption(args, 'profile');
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-kube-scale-'));
  const auditLog = path.join(workDir, 'audit.log');
  const auditPolicy = path.join(workDir, 'audit-policy.yaml');
  // Only the operator's requests are recorded: the count is its load on the API server.
  fs.writeFileSync(
    auditPolicy,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      '  - level: Metadata',
      `    users: ["${OPERATOR_USER}"]`,
      '  - level: None',
      '',
    ].join('\n'),
  );

  const started = Date.now();
  const cluster = await LocalControlPlane.start({
    controllerManager: false,
    scheduler: false,
    apiServerFlags: [
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${auditLog}`,
      '--audit-log-maxsize=0',
      '--audit-log-format=json',
    ],
  });
  say(`control plane ready in ${Date.now() - started} ms`);
  const kc = cluster.kubeConfig();
  const writer = new BulkWriter(
    cluster.server,
    kc.getCurrentUser()?.token ?? '',
    cluster.caPem,
  );
  let operator: OperatorProcess | undefined;
  try {
    await installFerryCrds(kc);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [NAMESPACE, FILLER_NAMESPACE, OPERATOR_NAMESPACE]) {
      await core.createNamespace({ body: { metadata: { name } } });
      // No controller manager (it would fight kwok over 50,000 pods): the
      // admission of a pod still wants its namespace's default account.
      await core.createNamespacedServiceAccount({
        namespace: name,
        body: { metadata: { name: 'default' } },
      });
    }

    // Nodes.
    let t = Date.now();
    const fleet = fleetOf(nodes);
    await writer.createAll(
      fleet.map(spec => ({ path: '/api/v1/nodes', body: fakeNode(spec) })),
    );
    say(`${nodes} nodes created in ${Date.now() - t} ms`);
    const spot = fleet.filter(n => n.capacityType === 'spot');

    // Opted-in StatefulSets, their SpotPolicies, and their members on spot nodes.
    t = Date.now();
    const sets = (await writer.createAll(
      Array.from({ length: workloads }, (_, w) => ({
        path: `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets`,
        body: statefulSetBody(`cache-${w}`, members),
      })),
    )) as { metadata: { name: string; uid: string } }[];
    await writer.createAll(
      sets.map(s => ({
        path: `/apis/ferry.dev/v1alpha1/namespaces/${NAMESPACE}/spotpolicies`,
        body: spotPolicyBody(s.metadata.name),
      })),
    );
    const memberPods: { path: string; body: unknown }[] = [];
    const memberNode = new Map<string, string>();
    sets.forEach((s, w) => {
      for (let m = 0; m < members; m++) {
        // Members of one workload on different nodes, in different pools.
        const node = spot[(w + m * workloads) % spot.length].name;
        const name = `${s.metadata.name}-${m}`;
        memberNode.set(name, node);
        memberPods.push({
          path: `/api/v1/namespaces/${NAMESPACE}/pods`,
          body: podBody(name, { app: s.metadata.name }, node, s.metadata),
        });
      }
    });
    await writer.createAll(memberPods);
    const fillers = Math.max(0, pods - memberPods.length);
    await writer.createAll(
      Array.from({ length: fillers }, (_, i) => ({
        path: `/api/v1/namespaces/${FILLER_NAMESPACE}/pods`,
        body: podBody(
          `filler-${i}`,
          { app: 'filler' },
          fleet[i % fleet.length].name,
        ),
      })),
    );
    say(
      `${workloads} workloads (${
        memberPods.length
      } members) and ${fillers} other pods created in ${Date.now() - t} ms`,
    );
    t = Date.now();
    await until(
      'kwok to run every pod',
      async () => {
        const list = await apiRequest<{ items: unknown[] }>(
          kc,
          'GET',
          `/api/v1/pods?fieldSelector=status.phase!=Running&limit=1`,
        );
        return list.items.length === 0;
      },
      1_800_000,
      5_000,
    );
    say(`every pod Running after ${Date.now() - t} ms more`);

    // The webhook's StatefulSet, and the operator's configuration.
    const loadSet = (await writer.createAll([
      {
        path: `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets`,
        body: statefulSetBody('webhook-load', 3),
      },
    ])) as { metadata: { name: string; uid: string } }[];
    await writer.createAll([
      {
        path: `/apis/ferry.dev/v1alpha1/namespaces/${NAMESPACE}/spotpolicies`,
        body: spotPolicyBody('webhook-load'),
      },
    ]);
    const certDir = path.join(workDir, 'tls');
    fs.mkdirSync(certDir);
    const serving = cluster.issueServingCertificate('ferry-webhook-bench');
    fs.writeFileSync(path.join(certDir, 'tls.crt'), serving.cert);
    fs.writeFileSync(path.join(certDir, 'tls.key'), serving.key);
    const [metricsPort, webhookPort] = [await freePort(), await freePort()];
    const configFile = path.join(workDir, 'config.yaml');
    fs.writeFileSync(
      configFile,
      [
        'leaderElection:',
        '  leaseName: ferry-bench-leader',
        'webhook:',
        `  port: ${webhookPort}`,
        `  certDir: ${certDir}`,
        'metrics:',
        `  port: ${metricsPort}`,
        '',
      ].join('\n'),
    );
    const kubeconfig = await operatorKubeconfig(cluster, kc, workDir);

    // 1. Start-up to ready.
    const spawnedAt = Date.now();
    operator = new OperatorProcess(kubeconfig, configFile, profileDir);
    const running = operator;
    await until(
      'the operator to be ready',
      async () => {
        if (running.child.exitCode !== null) {
          throw new Error(`the operator exited:\n${running.output}`);
        }
        return fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
          r => r.status === 200,
          () => false,
        );
      },
      600_000,
      100,
    );
    const readyMs = Date.now() - spawnedAt;
    say(
      `operator ready in ${readyMs} ms (RSS peak so far ${round(
        operator.peakRssMiB(),
        0,
      )} MiB)`,
    );

    // 2. Webhook at `rate` pod creations a second.
    await apiRequest(
      kc,
      'POST',
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      {
        body: {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name: 'ferry-bench' },
          webhooks: [
            {
              name: 'pods.placement.ferry.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Ignore',
              timeoutSeconds: 2,
              clientConfig: {
                url: `https://127.0.0.1:${webhookPort}${MUTATE_PODS_PATH}`,
                caBundle: Buffer.from(cluster.caPem).toString('base64'),
              },
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': NAMESPACE },
              },
              rules: [
                {
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods'],
                  operations: ['CREATE'],
                },
              ],
            },
          ],
        },
      },
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['-e', POD_LOAD_SCRIPT],
      {
        env: {
          ...process.env,
          LOAD_SERVER: cluster.server,
          LOAD_CA: cluster.caPem,
          LOAD_TOKEN: kc.getCurrentUser()?.token ?? '',
          LOAD_RATE: String(rate),
          LOAD_TOTAL: String(rate * seconds),
          LOAD_NAMESPACE: NAMESPACE,
          LOAD_OWNER: JSON.stringify(loadSet[0].metadata),
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const load = JSON.parse(stdout) as {
      created: number;
      failures: number;
      throttled: number;
      elapsedS: number;
    };
    const metricsText = await (
      await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    ).text();
    const webhookP99Ms =
      histogramQuantile(
        metricsText,
        'ferry_webhook_review_duration_seconds',
        0.99,
      ) * 1000;
    const webhookP50Ms =
      histogramQuantile(
        metricsText,
        'ferry_webhook_review_duration_seconds',
        0.5,
      ) * 1000;
    say(
      `webhook: ${load.created} pods at ${round(
        load.created / load.elapsedS,
        0,
      )}/s (${load.throttled} throttled, ${
        load.failures
      } failed): review p50 ${round(webhookP50Ms, 2)} ms, p99 ${round(
        webhookP99Ms,
        2,
      )} ms`,
    );

    // 3. Reclaim: nodes holding members, across pools, tainted at once.
    const seenAt = new Map<string, number>();
    const watch = new Reflector<Migration>({
      kubeConfig: kc,
      type: MIGRATIONS,
      namespace: NAMESPACE,
      onChange: event => {
        if (event.type === 'ADDED' && !seenAt.has(event.object.spec.pod)) {
          seenAt.set(event.object.spec.pod, Date.now());
        }
      },
    });
    await watch.start();
    const byNode = new Map<string, string[]>();
    for (const [pod, node] of memberNode) {
      byNode.set(node, [...(byNode.get(node) ?? []), pod]);
    }
    // The nodes of every workload's first member, then its second, ...: each
    // tainted node is a different workload's first move while there are enough.
    const tainted: string[] = [];
    for (let m = 0; m < members && tainted.length < reclaim; m++) {
      for (const s of sets) {
        const node = memberNode.get(`${s.metadata.name}-${m}`)!;
        if (!tainted.includes(node)) tainted.push(node);
        if (tainted.length >= reclaim) break;
      }
    }
    const taintedAt = new Map<string, number>();
    await Promise.all(
      tainted.map(async node => {
        await apiRequest(kc, 'PATCH', `/api/v1/nodes/${node}`, {
          contentType: 'application/merge-patch+json',
          body: {
            spec: {
              taints: [
                { key: NTH_TAINT, value: 'bench', effect: 'NoSchedule' },
              ],
            },
          },
        });
        taintedAt.set(node, Date.now());
      }),
    );
    const firstMigration = (node: string) =>
      Math.min(...byNode.get(node)!.map(pod => seenAt.get(pod) ?? Infinity));
    const deadline = Date.now() + 120_000;
    while (
      tainted.some(node => !Number.isFinite(firstMigration(node))) &&
      Date.now() < deadline
    ) {
      await new Promise(resolve => setTimeout(resolve, 50));
    }
    watch.stop();
    const latencies = tainted
      .filter(node => Number.isFinite(firstMigration(node)))
      .map(node => Math.max(0, firstMigration(node) - taintedAt.get(node)!));
    const pools = new Set(
      tainted.map(node => {
        const spec = fleet.find(n => n.name === node)!;
        return `${spec.instanceType}/${spec.zone}`;
      }),
    );
    say(
      `reclaim: ${latencies.length} of ${tainted.length} tainted nodes (${
        pools.size
      } pools) got a Migration; taint to Migration p50 ${round(
        quantile(latencies, 0.5),
        0,
      )} ms, p99 ${round(quantile(latencies, 0.99), 0)} ms`,
    );

    // 4. A full relist after an etcd compaction.
    const rangeAnswer = (await (
      await fetch(`${cluster.etcdUrl}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
      })
    ).json()) as { header: { revision: string } };
    const revision = rangeAnswer.header.revision;
    await fetch(`${cluster.etcdUrl}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({ revision, physical: true }),
    });
    t = Date.now();
    const [nodeList, podList] = await Promise.all([
      apiRequest<{ items: unknown[] }>(kc, 'GET', '/api/v1/nodes'),
      apiRequest<{ items: unknown[] }>(kc, 'GET', '/api/v1/pods'),
    ]);
    const relistMs = Date.now() - t;
    const stillReady =
      (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200;
    say(
      `relist after compaction to revision ${revision}: ${nodeList.items.length} nodes and ${podList.items.length} pods in ${relistMs} ms; operator ready after it: ${stillReady}`,
    );

    const peakRssMiB = operator.peakRssMiB();
    if (profileDir) {
      await operator.heapSnapshot();
      say(`heap snapshot and CPU profile in ${profileDir}`);
    }
    const runSeconds = (Date.now() - spawnedAt) / 1000;
    await operator.stop();
    const audit = readAudit(auditLog);
    const afterReady = audit.filter(e => e.at >= spawnedAt + readyMs);
    const results = {
      nodes,
      pods: podList.items.length,
      workloads,
      members: memberPods.length,
      readyMs,
      peakRssMiB: round(peakRssMiB, 0),
      taintToMigrationP99Ms: round(quantile(latencies, 0.99), 1),
      taintToMigrationP50Ms: round(quantile(latencies, 0.5), 1),
      reclaimedNodes: tainted.length,
      reclaimPools: pools.size,
      migrationsPlanned: latencies.length,
      webhookP99Ms: round(webhookP99Ms, 3),
      webhookP50Ms: round(webhookP50Ms, 3),
      webhookPodsPerSecond: round(load.created / load.elapsedS, 1),
      webhookPodCreatesThrottled: load.throttled,
      apiRequestsPerSec: round(audit.length / runSeconds, 1),
      apiRequestsPerSecAfterReady: round(
        afterReady.length / Math.max(1, runSeconds - readyMs / 1000),
        1,
      ),
      apiRequestsStartup: audit.length - afterReady.length,
      api429s: audit.filter(e => e.code === 429).length,
      relistMs,
      operatorReadyAfterCompaction: stillReady,
      loadAverage: os.loadavg().map(l => round(l, 2)),
      targets: TARGETS,
    };
    say(`wrote ${writeResults('kube-scale', results)}`);
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } catch (error) {
    if (operator)
      process.stderr.write(`operator output:\n${operator.output}\n`);
    throw error;
  } finally {
    await operator?.stop();
    writer.close();
    await cluster.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch(error => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
