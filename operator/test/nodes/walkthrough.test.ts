/**
 * The walkthrough of Loophole Labs' post "The Stateful Spot Instance"
 * (../shared/seeds/001_824efb488b32eefe.txt) on real containers, run as the post's own
 * commands run: Ferry installed by `helm install` of operator/chart from its own images,
 * the post's Deployment opted in with `ferry.dev/*` annotations instead of Architect's,
 * the client pod with anti-affinity, `kubectl expose`, three writes through
 * `kubectl exec valkey-client -- valkey-cli -h valkey`, `kubectl drain` of Valkey's node,
 * `kubectl rollout status`, and the three reads returning what was written.
 *
 * Then a StatefulSet of three under steady writes: a spot notice on one member's node,
 * the node killed at its deadline, and no acknowledged write lost.
 *
 * Parameterised by migration method: WALKTHROUGH_METHODS lists the methods that move a
 * Valkey pod between real nodes today.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { ferryImages } from '../../src/images/build';
import { imageSpec } from '../../src/images/images';
import { helmBinary } from '../kube/helmBinary';
import {
  DEFAULT_REAL_NODES,
  RealNodeCluster,
  RealNodeSpec,
} from './RealNodeCluster';

// Images (cold: Debian packages and bundles), three nodes, a chart and two moves on two
// loaded cores.
jest.setTimeout(1_200_000);

/**
 * The default three nodes and a fourth spot node in the on-demand node's zone: a
 * StatefulSet of three fills the three, one member a node, and a member whose
 * node is reclaimed needs a spot pool of its own to go to (on EKS, the node
 * Karpenter launches).
 */
const NODES: RealNodeSpec[] = [
  ...DEFAULT_REAL_NODES,
  {
    name: 'spot-d',
    capacityType: 'spot',
    instanceType: 'm5.xlarge',
    zone: 'us-east-1c',
  },
];

/** The methods the walkthrough runs with; `checkpoint` joins once it moves real pods. */
const WALKTHROUGH_METHODS = ['valkey'] as const;
/** What a method needs in the pod template beyond the annotations (e.g. a RuntimeClass). */
const METHOD_POD_SPEC: Record<string, Record<string, unknown>> = {
  valkey: {},
};
const CHART = path.resolve(__dirname, '../../chart');
const NAMESPACE = 'ferry-system';
/** How long the reclaimed node's notice lasts before it is killed, as AWS gives two minutes. */
const NOTICE_SECONDS = 90;
/** How long past the deadline the test looks for the moved member, to say where it is. */
const MOVE_SLACK_SECONDS = 60;

/** The post's Deployment, with Ferry's annotations where Architect's were. */
function postDeployment(method: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: valkey
  labels:
    app: valkey
spec:
  replicas: 1
  selector:
    matchLabels:
      app: valkey
  template:
    metadata:
      labels:
        app: valkey
      annotations:
        ferry.dev/spot: enabled
        ferry.dev/permanent-ratio: "0"
        ferry.dev/migration: ${method}
    spec:
${Object.entries(METHOD_POD_SPEC[method] ?? {})
  .map(([key, value]) => `      ${key}: ${JSON.stringify(value)}\n`)
  .join('')}      containers:
        - name: valkey
          image: valkey/valkey:9
          ports:
            - containerPort: 6379
          resources:
            requests:
              memory: 128Mi
              cpu: 250m
            limits:
              memory: 256Mi
              cpu: 500m
`;
}

/** The post's client pod, anti-affine to Valkey so it never lands on the drained node. */
const CLIENT_POD = `apiVersion: v1
kind: Pod
metadata:
  name: valkey-client
spec:
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - labelSelector:
            matchLabels:
              app: valkey
          topologyKey: kubernetes.io/hostname
  containers:
    - name: client
      image: valkey/valkey:9
      command: ["sleep", "infinity"]
`;

describe.each(WALKTHROUGH_METHODS)('the walkthrough with %s', method => {
  let cluster: RealNodeCluster;

  /** Runs a script of the post's commands in bash, with kubectl on PATH as a reader has it. */
  function sh(script: string): string {
    return execFileSync('bash', ['-euo', 'pipefail', '-c', script], {
      encoding: 'utf8',
      env: {
        ...process.env,
        KUBECONFIG: cluster.kubeconfigPath,
        PATH: `${cluster.controlPlane.binDir}:${process.env.PATH}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
  }

  /** What Ferry did, for a failure message: its Migrations and its operator's last lines. */
  function diagnosis(): string {
    return (
      `\nmigrations:\n${sh(
        'kubectl get migrations.ferry.dev -A -o yaml || true',
      )}` +
      `\noperator:\n${sh(
        `kubectl logs -n ${NAMESPACE} -l app.kubernetes.io/name=ferry --tail=40 --prefix || true`,
      )}`
    );
  }

  beforeAll(async () => {
    const images = await ferryImages([
      'pause',
      'valkey-9.1',
      'operator',
      'agent',
    ]);
    cluster = await RealNodeCluster.start({
      nodes: NODES,
      images: Object.values(images),
      sandboxImage: imageSpec('pause').references[0],
      controlPlane: { kwok: false },
    });
    execFileSync(
      helmBinary(),
      [
        'install',
        'ferry',
        CHART,
        '--namespace',
        NAMESPACE,
        '--create-namespace',
        '--wait',
        '--timeout',
        '600s',
        '--kubeconfig',
        cluster.kubeconfigPath,
      ],
      {
        env: {
          ...process.env,
          HELM_CACHE_HOME: path.join(
            cluster.controlPlane.workDir,
            'helm/cache',
          ),
          HELM_CONFIG_HOME: path.join(
            cluster.controlPlane.workDir,
            'helm/config',
          ),
          HELM_DATA_HOME: path.join(cluster.controlPlane.workDir, 'helm/data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("keeps Valkey's in-memory data through a drain of its node, as the post shows", () => {
    sh(`kubectl apply -f - <<'EOF'\n${postDeployment(method)}EOF`);
    sh(`kubectl apply -f - <<'EOF'\n${CLIENT_POD}EOF`);
    sh(`kubectl expose deployment valkey --port=6379
kubectl rollout status deployment valkey --timeout=300s
kubectl wait --for=condition=Ready pod/valkey-client --timeout=300s`);
    const before = sh(
      `kubectl get pod -l app=valkey -o jsonpath='{.items[0].metadata.name} {.items[0].spec.nodeName}'`,
    ).split(' ');

    // The post's alias, for the writes and the reads; retried until the Service is
    // programmed on the client's node.
    const alias = `shopt -s expand_aliases
alias valkey-cli="kubectl exec valkey-client -- valkey-cli -h valkey"
for i in $(seq 60); do valkey-cli PING >/dev/null 2>&1 && break; sleep 1; done
`;
    const writes = sh(`${alias}
valkey-cli HSET session:u9f3a user_id 4821 \\
  role admin last_seen "2026-05-28T14:03:00Z"
valkey-cli LPUSH jobs:email "send-welcome:4821" "send-invoice:4819"
valkey-cli SET agent:ctx:4821 "user prefers weekly summaries, timezone UTC+1"`);
    expect(writes.trim().split('\n')).toEqual(['3', '2', 'OK']);

    sh(`kubectl drain --ignore-daemonsets --delete-emptydir-data \\
  "$(kubectl get pod -l app=valkey -o jsonpath='{.items[0].spec.nodeName}')" --timeout=600s
kubectl rollout status deployment valkey --timeout=600s`);
    const after = sh(
      `kubectl get pod -l app=valkey --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name} {.items[0].spec.nodeName}'`,
    ).split(' ');
    expect(after[1]).not.toBe(before[1]);

    const reads = sh(`${alias}
valkey-cli HGETALL session:u9f3a
echo ---
valkey-cli LRANGE jobs:email 0 -1
echo ---
valkey-cli GET agent:ctx:4821`);
    const expected = [
      [
        'user_id',
        '4821',
        'role',
        'admin',
        'last_seen',
        '2026-05-28T14:03:00Z',
      ].join('\n'),
      ['send-invoice:4819', 'send-welcome:4821'].join('\n'),
      'user prefers weekly summaries, timezone UTC+1',
    ];
    if (
      JSON.stringify(reads.trim().split('\n---\n')) !== JSON.stringify(expected)
    ) {
      throw new Error(
        `after the drain valkey-cli read:\n${reads}${diagnosis()}`,
      );
    }
    // Moved by Ferry, with the method asked for.
    const migrations = JSON.parse(
      sh(`kubectl get migrations.ferry.dev -o json`),
    ).items;
    expect(
      migrations.map((m: { spec: { driver: string } }) => m.spec.driver),
    ).toContain(method);
    sh(`kubectl uncordon ${before[1]}`);
  });

  it('loses no acknowledged write of a StatefulSet member whose spot node is reclaimed at its deadline', async () => {
    sh(`kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: cache
spec:
  clusterIP: None
  selector:
    app: cache
  ports:
    - port: 6379
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: cache
  annotations:
    ferry.dev/spot: enabled
    ferry.dev/permanent-ratio: "0"
    ferry.dev/migration: ${method}
spec:
  replicas: 3
  serviceName: cache
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: valkey
          image: valkey/valkey:9
          ports:
            - containerPort: 6379
          readinessProbe:
            tcpSocket: { port: 6379 }
            periodSeconds: 2
EOF
kubectl rollout status statefulset cache --timeout=300s`);
    const members = sh(
      `kubectl get pod -l app=cache -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\\n"}{end}'`,
    )
      .trim()
      .split('\n')
      .map(line => line.split(' '));
    const [member, node] = members.find(
      ([, n]) => cluster.node(n).spec.capacityType === 'spot',
    )!;
    // A writer on another node: each SET that answers OK is an acknowledged write.
    const writerNode = cluster.nodes.find(n => n.name !== node)!.name;
    sh(`kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  nodeSelector:
    kubernetes.io/hostname: ${writerNode}
  containers:
    - name: writer
      image: valkey/valkey:9
      command:
        - sh
        - -c
        - |
          i=0
          while true; do
            i=$((i+1))
            if [ "$(valkey-cli -h ${member}.cache -t 2 SET w:$i $i 2>/dev/null)" = OK ]; then echo "ack $i"; fi
            sleep 0.1
          done
EOF
kubectl wait --for=condition=Ready pod/writer --timeout=300s`);
    const acked = () =>
      sh('kubectl logs writer')
        .split('\n')
        .filter(line => line.startsWith('ack '))
        .map(line => Number(line.slice(4)));
    for (let i = 0; i < 60 && acked().length < 20; i++) {
      await sleep(1000);
    }
    expect(acked().length).toBeGreaterThanOrEqual(20);

    // The notice, and the node killed at its deadline, while Ferry moves the member.
    const reclaim = cluster.reclaim(node, { noticeSeconds: NOTICE_SECONDS });
    // Awaited below, after the wait for the move; handled now so that a failure is not
    // reported as unhandled meanwhile.
    reclaim.catch(() => {});
    let movedAt: number | undefined;
    let where = '';
    const until = Date.now() + (NOTICE_SECONDS + MOVE_SLACK_SECONDS) * 1000;
    while (movedAt === undefined && Date.now() < until) {
      await sleep(1000);
      where = sh(
        `kubectl get pod ${member} -o jsonpath='{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}'`,
      );
      const [at, ready] = where.split(' ');
      if (at !== node && ready === 'True') movedAt = Date.now();
    }
    const { killedAt } = await reclaim;
    if (movedAt === undefined || movedAt > killedAt) {
      throw new Error(
        `${member} was not Ready off ${node} before its deadline (now: ${where})${diagnosis()}`,
      );
    }
    expect(cluster.pidsOf(node)).toEqual([]);

    // Writes go on after the kill, to the member on its new node.
    const ackedAtKill = acked().length;
    for (let i = 0; i < 120 && acked().length < ackedAtKill + 20; i++) {
      await sleep(1000);
    }
    // Every write acknowledged so far is there: the log is read before the keys.
    const written = acked();
    expect(written.length).toBeGreaterThanOrEqual(ackedAtKill + 20);
    const present = new Set(
      sh(
        `kubectl exec writer -- valkey-cli -h ${member}.cache --scan --pattern 'w:*' --count 1000`,
      )
        .trim()
        .split('\n')
        .map(key => Number(key.slice(2))),
    );
    const lost = written.filter(i => !present.has(i));
    if (lost.length > 0) {
      throw new Error(
        `${lost.length} of ${written.length} acknowledged writes are missing (${lost
          .slice(0, 20)
          .join(', ')}...)${diagnosis()}`,
      );
    }
    process.stdout.write(
      `walkthrough StatefulSet: ${member} Ready on ${
        where.split(' ')[0]
      } ${Math.round((killedAt - movedAt) / 1000)} s before ${node}'s deadline; ${
        written.length
      } acknowledged writes (${
        written.length - ackedAtKill
      } after the kill), none lost\n`,
    );
    sh('kubectl delete pod writer --wait=true');
  });
});
