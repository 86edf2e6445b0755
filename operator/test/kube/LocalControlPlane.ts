import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { controlPlaneBinDir } from './controlPlaneBinaries';
import { until } from './until';

/** Everything binds here: the tests talk to nothing but this machine's loopback. */
const LOOPBACK = '127.0.0.1';
/** How long one component may take to become ready on a busy two-core machine. */
const READY_TIMEOUT_MS = 90_000;
/** How long a component has to exit after SIGTERM before it gets SIGKILL. */
const STOP_GRACE_MS = 5_000;
/**
 * Virtual addresses the API server hands out. Services get loopback ClusterIPs and
 * kwok gives pods loopback IPs, so that a test which does dial one reaches this
 * machine and nothing else.
 */
const SERVICE_CIDR = '127.64.0.0/16';
const POD_CIDR = '127.128.0.1/16';
const SETPRIV = '/usr/bin/setpriv';
/** How fake nodes and pods behave: kwok's own "fast" stages, with node Leases. */
const KWOK_STAGES = path.resolve(
  __dirname,
  '../../../e2e-tests/controlplane/kwok-stages.yaml',
);
const NODE_LEASE_SECONDS = 40;
/** kwok manages the nodes carrying this annotation, and only those. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** How a cluster is started. */
export interface LocalControlPlaneOptions {
  /** Where the binaries are; defaults to the cache of scripts/lib/controlplane.sh. */
  binDir?: string;
  /** Keep the working directory (logs, etcd data) after `stop()`. */
  keepWorkDir?: boolean;
  /** Start kube-controller-manager (service accounts, ReplicaSets, garbage collection, …). */
  controllerManager?: boolean;
  /** Start kube-scheduler. */
  scheduler?: boolean;
  /** Start kwok, which plays the kubelet of every node annotated with KWOK_NODE_ANNOTATION. */
  kwok?: boolean;
  /** More kube-apiserver flags, e.g. `--watch-cache=false`. */
  apiServerFlags?: string[];
  /** More kube-controller-manager flags, e.g. `--node-monitor-grace-period=20s`. */
  controllerManagerFlags?: string[];
  /**
   * The address the API server publishes in the `kubernetes` Service's endpoints, when
   * pods reach it through a relay on another address than loopback (real nodes).
   */
  advertiseAddress?: string;
  /** More IP addresses the API server's serving certificate is valid for. */
  servingCertificateIps?: string[];
}

interface Component {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** What it was started with, to start it again. */
  args: string[];
}

/**
 * A real Kubernetes control plane on loopback, for tests: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and kwok, each a child process of the
 * test, with a throwaway CA, serving certificate and service-account key.
 */
export class LocalControlPlane {
  private readonly components: Component[] = [];
  private stopped = false;
  private readonly onExit = () => this.killNow();

  private constructor(
    /** Directory with the certificates, the kubeconfig, the logs and etcd's data. */
    readonly workDir: string,
    readonly binDir: string,
    /** `https://127.0.0.1:<port>` */
    readonly server: string,
    /** A kubeconfig file for kubectl, with cluster-admin rights. */
    readonly kubeconfigPath: string,
    /** etcd's client URL, `http://127.0.0.1:<port>`. */
    readonly etcdUrl: string,
    /** The cluster CA's certificate (PEM), which signs the API server's and webhooks' certificates. */
    readonly caPem: string,
    private readonly adminToken: string,
    private readonly keepWorkDir: boolean,
  ) {
    process.once('exit', this.onExit);
  }

  /** Starts a cluster and resolves once every component it runs is ready. */
  static async start(
    options: LocalControlPlaneOptions = {},
  ): Promise<LocalControlPlane> {
    const binDir = options.binDir ?? controlPlaneBinDir();
    const workDir = fs.mkdtempSync(
      path.join(os.tmpdir(), 'ferry-controlplane-'),
    );
    const [etcdClient, etcdPeer, apiserver, kcm, scheduler, kwok] =
      await freePorts(6);
    const pki = writePki(workDir, [
      ...(options.advertiseAddress ? [options.advertiseAddress] : []),
      ...(options.servingCertificateIps ?? []),
    ]);
    const adminToken = crypto.randomBytes(24).toString('hex');
    fs.writeFileSync(
      path.join(workDir, 'tokens.csv'),
      `${adminToken},ferry-test-admin,ferry-test-admin,"system:masters"\n`,
      { mode: 0o600 },
    );
    const server = `https://${LOOPBACK}:${apiserver}`;
    const kubeconfigPath = path.join(workDir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfigPath,
      kubeconfigYaml(server, pki.caFile, adminToken),
      { mode: 0o600 },
    );

    const etcdUrl = `http://${LOOPBACK}:${etcdClient}`;
    const cluster = new LocalControlPlane(
      workDir,
      binDir,
      server,
      kubeconfigPath,
      etcdUrl,
      fs.readFileSync(pki.caFile, 'utf8'),
      adminToken,
      options.keepWorkDir ?? false,
    );
    try {
      cluster.run('etcd', [
        '--name=ferry-test',
        `--data-dir=${path.join(workDir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://${LOOPBACK}:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://${LOOPBACK}:${etcdPeer}`,
        `--initial-cluster=ferry-test=http://${LOOPBACK}:${etcdPeer}`,
        // A throwaway store: durability costs fsyncs that a shared disk makes slow.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]);
      await cluster.waitFor('etcd', () =>
        probe(`${etcdUrl}/health`, {}).then(body => body.includes('true')),
      );

      cluster.run('kube-apiserver', [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${LOOPBACK}`,
        `--advertise-address=${options.advertiseAddress ?? LOOPBACK}`,
        `--secure-port=${apiserver}`,
        `--cert-dir=${path.join(workDir, 'apiserver-certs')}`,
        `--tls-cert-file=${pki.servingCertFile}`,
        `--tls-private-key-file=${pki.servingKeyFile}`,
        `--client-ca-file=${pki.caFile}`,
        // What the API server shows a kubelet (logs, exec, port-forward); kwok ignores it.
        `--kubelet-client-certificate=${pki.kubeletClientCertFile}`,
        `--kubelet-client-key=${pki.kubeletClientKeyFile}`,
        `--token-auth-file=${path.join(workDir, 'tokens.csv')}`,
        '--authorization-mode=Node,RBAC',
        `--service-account-issuer=https://kubernetes.default.svc`,
        `--service-account-key-file=${pki.serviceAccountPublicKeyFile}`,
        `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--allow-privileged=true',
        '--profiling=false',
        ...(options.apiServerFlags ?? []),
      ]);
      await cluster.waitFor('kube-apiserver', () =>
        cluster.probeApi('/readyz'),
      );

      if (options.controllerManager ?? true) {
        cluster.run('kube-controller-manager', [
          `--kubeconfig=${kubeconfigPath}`,
          `--bind-address=${LOOPBACK}`,
          `--secure-port=${kcm}`,
          '--leader-elect=false',
          `--service-account-private-key-file=${pki.serviceAccountKeyFile}`,
          `--root-ca-file=${pki.caFile}`,
          '--use-service-account-credentials=false',
          '--profiling=false',
          ...(options.controllerManagerFlags ?? []),
        ]);
        await cluster.waitFor('kube-controller-manager', () =>
          probe(`https://${LOOPBACK}:${kcm}/healthz`, { insecure: true }).then(
            body => body === 'ok',
          ),
        );
      }
      if (options.scheduler ?? true) {
        cluster.run('kube-scheduler', [
          `--kubeconfig=${kubeconfigPath}`,
          `--bind-address=${LOOPBACK}`,
          `--secure-port=${scheduler}`,
          '--leader-elect=false',
          '--profiling=false',
        ]);
        await cluster.waitFor('kube-scheduler', () =>
          probe(`https://${LOOPBACK}:${scheduler}/healthz`, {
            insecure: true,
          }).then(body => body === 'ok'),
        );
      }
      if (options.kwok ?? true) {
        cluster.run('kwok', [
          `--kubeconfig=${kubeconfigPath}`,
          '--manage-all-nodes=false',
          `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
          `--cidr=${POD_CIDR}`,
          `--node-ip=${LOOPBACK}`,
          `--server-address=${LOOPBACK}:${kwok}`,
          `--config=${KWOK_STAGES}`,
          // Nodes renew Leases as kubelets do, so the node lifecycle controller keeps them Ready.
          `--node-lease-duration-seconds=${NODE_LEASE_SECONDS}`,
        ]);
        await cluster.waitFor('kwok', () =>
          probe(`http://${LOOPBACK}:${kwok}/healthz`, {}).then(
            body => body === 'ok',
          ),
        );
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** A client configuration with cluster-admin rights. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'ferry-test',
          server: this.server,
          caData: Buffer.from(this.caPem).toString('base64'),
        },
      ],
      users: [{ name: 'ferry-test-admin', token: this.adminToken }],
      contexts: [
        { name: 'ferry-test', cluster: 'ferry-test', user: 'ferry-test-admin' },
      ],
      currentContext: 'ferry-test',
    });
    return kc;
  }

  /** Runs kubectl against this cluster and returns what it printed on stdout. */
  kubectl(args: string[], input?: string): string {
    return execFileSync(path.join(this.binDir, 'kubectl'), args, {
      input,
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: this.kubeconfigPath },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /**
   * A serving certificate for 127.0.0.1 signed by the cluster's CA, for servers the
   * API server calls (admission webhooks); `ca` is the bundle to configure.
   */
  issueServingCertificate(name: string): {
    cert: string;
    key: string;
    ca: string;
  } {
    const dir = path.join(this.workDir, 'pki');
    signServingCertificate(dir, name);
    return {
      cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8'),
      key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'),
      ca: this.caPem,
    };
  }

  /**
   * A client certificate signed by the cluster's CA, for a user `name` in `group`
   * (`system:node:<node>` in `system:nodes` for a kubelet); returns the files' paths.
   */
  issueClientCertificate(
    name: string,
    group: string,
  ): { certFile: string; keyFile: string } {
    const dir = path.join(this.workDir, 'pki');
    const file = name.replace(/[^a-zA-Z0-9.-]/g, '_');
    signClientCertificate(dir, file, name, group);
    return {
      certFile: path.join(dir, `${file}.crt`),
      keyFile: path.join(dir, `${file}.key`),
    };
  }

  /**
   * Compacts etcd's history up to now, so that a watch from any older
   * resourceVersion is refused with 410 Gone (with `--watch-cache=false`; the
   * API server's watch cache keeps its own, shorter history).
   */
  async compactEtcd(): Promise<number> {
    const post = async (endpoint: string, body: object) => {
      const response = await fetch(`${this.etcdUrl}${endpoint}`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        throw new Error(
          `etcd ${endpoint}: ${response.status} ${await response.text()}`,
        );
      }
      return response.json();
    };
    const range = await post('/v3/kv/range', {
      key: Buffer.from('/').toString('base64'),
      limit: 1,
    });
    const revision = Number(range.header.revision);
    await post('/v3/kv/compaction', {
      revision: String(revision),
      physical: true,
    });
    return revision;
  }

  /** The last lines a component logged; for failure messages. */
  logTail(name: string, lines = 30): string {
    const component = this.components.find(c => c.name === name);
    if (!component) return '';
    const text = fs.readFileSync(component.logFile, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  }

  /**
   * Kills the API server (SIGKILL, as a crashed or replaced one goes) and starts
   * it again with the same flags; resolves once it is ready. The store (etcd)
   * and every client stay: they see it gone for the time it takes to start.
   */
  async restartApiServer(): Promise<{ downMs: number }> {
    const old = this.components.find(c => c.name === 'kube-apiserver')!;
    const killedAt = Date.now();
    const exited = new Promise(resolve => old.child.once('exit', resolve));
    old.child.kill('SIGKILL');
    await exited;
    this.components.splice(this.components.indexOf(old), 1);
    this.run('kube-apiserver', old.args);
    await this.waitFor('kube-apiserver', () => this.probeApi('/readyz'));
    return { downMs: Date.now() - killedAt };
  }

  /** Stops every component (the last started first) and removes the working directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    for (const component of [...this.components].reverse()) {
      await stopChild(component.child);
    }
    if (!this.keepWorkDir) {
      fs.rmSync(this.workDir, { recursive: true, force: true });
    }
  }

  private run(name: string, args: string[]): void {
    const logFile = path.join(this.workDir, `${name}.log`);
    const log = fs.openSync(logFile, 'a');
    const binary = path.join(this.binDir, name);
    // setpriv (util-linux) makes the kernel kill the component if the test process
    // dies without cleaning up (a SIGKILLed Jest worker), so nothing is left behind.
    const child = fs.existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args], {
          stdio: ['ignore', log, log],
          cwd: this.workDir,
        })
      : spawn(binary, args, { stdio: ['ignore', log, log], cwd: this.workDir });
    fs.closeSync(log);
    this.components.push({ name, child, logFile, args });
  }

  private async waitFor(
    name: string,
    ready: () => Promise<boolean>,
  ): Promise<void> {
    const component = this.components.find(c => c.name === name)!;
    await until(
      `${name} to be ready`,
      async () => {
        if (component.child.exitCode !== null || component.child.signalCode) {
          throw new Error(
            `${name} exited (${
              component.child.exitCode ?? component.child.signalCode
            }) while starting; ` + `its log ends:\n${this.logTail(name)}`,
          );
        }
        return ready().catch(() => false);
      },
      {
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 200,
        detail: () => `its log ends:\n${this.logTail(name)}`,
      },
    );
  }

  private probeApi(pathname: string): Promise<boolean> {
    return probe(`${this.server}${pathname}`, {
      ca: this.caPem,
      token: this.adminToken,
    }).then(body => body === 'ok');
  }

  /** The 'exit' event allows no waiting: kill outright so nothing outlives the test. */
  private killNow(): void {
    for (const { child } of this.components) {
      if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
    }
  }
}

interface Pki {
  caFile: string;
  kubeletClientCertFile: string;
  kubeletClientKeyFile: string;
  servingCertFile: string;
  servingKeyFile: string;
  serviceAccountKeyFile: string;
  serviceAccountPublicKeyFile: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

const EC_KEY = [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
];

/**
 * `<name>.crt` and `<name>.key` in `dir`: a serving certificate for loopback (and
 * `extraIps`), signed by `dir`'s CA.
 */
function signServingCertificate(
  dir: string,
  name: string,
  extraIps: string[] = [],
): void {
  openssl(dir, [
    'req',
    ...EC_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]);
  fs.writeFileSync(
    path.join(dir, `${name}.ext`),
    [
      `subjectAltName=IP:${[LOOPBACK, ...extraIps].join(
        ',IP:',
      )},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc`,
      'extendedKeyUsage=serverAuth',
      'keyUsage=critical,digitalSignature,keyEncipherment',
    ].join('\n'),
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

/** `<file>.crt` and `<file>.key` in `dir`: a client certificate for user `cn` in group `group`. */
function signClientCertificate(
  dir: string,
  file: string,
  cn: string,
  group: string,
): void {
  openssl(dir, [
    'req',
    ...EC_KEY,
    '-keyout',
    `${file}.key`,
    '-out',
    `${file}.csr`,
    '-subj',
    `/O=${group}/CN=${cn}`,
  ]);
  fs.writeFileSync(
    path.join(dir, `${file}.ext`),
    [
      'extendedKeyUsage=clientAuth',
      'keyUsage=critical,digitalSignature,keyEncipherment',
    ].join('\n'),
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${file}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${file}.crt`,
    '-days',
    '2',
    '-extfile',
    `${file}.ext`,
  ]);
}

/**
 * A throwaway CA, a serving certificate for loopback (and `extraIps`), the API
 * server's client certificate for kubelets, and a service-account key.
 */
function writePki(workDir: string, extraIps: string[]): Pki {
  const dir = path.join(workDir, 'pki');
  fs.mkdirSync(dir, { mode: 0o700 });
  const file = (name: string) => path.join(dir, name);
  openssl(dir, [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=ferry-test-ca',
  ]);
  signServingCertificate(dir, 'apiserver', extraIps);
  signClientCertificate(
    dir,
    'apiserver-kubelet-client',
    'kube-apiserver-kubelet-client',
    'system:masters',
  );

  const serviceAccount = crypto.generateKeyPairSync('ec', {
    namedCurve: 'P-256',
  });
  fs.writeFileSync(
    file('sa.key'),
    serviceAccount.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  fs.writeFileSync(
    file('sa.pub'),
    serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }),
  );
  return {
    caFile: file('ca.crt'),
    kubeletClientCertFile: file('apiserver-kubelet-client.crt'),
    kubeletClientKeyFile: file('apiserver-kubelet-client.key'),
    servingCertFile: file('apiserver.crt'),
    servingKeyFile: file('apiserver.key'),
    serviceAccountKeyFile: file('sa.key'),
    serviceAccountPublicKeyFile: file('sa.pub'),
  };
}

function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: ferry-test
    cluster:
      server: ${server}
      certificate-authority: ${caFile}
users:
  - name: ferry-test-admin
    user:
      token: ${token}
contexts:
  - name: ferry-test
    context:
      cluster: ferry-test
      user: ferry-test-admin
current-context: ferry-test
`;
}

/** Ports free on loopback right now; each is bound once and released. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, LOOPBACK, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map(s => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map(s => new Promise(r => s.close(r))));
  return ports;
}

/** GETs a health endpoint and resolves with its body (rejects on any non-2xx). */
function probe(
  url: string,
  options: { ca?: string; token?: string; insecure?: boolean },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      timeout: 2_000,
      headers: options.token
        ? { authorization: `Bearer ${options.token}` }
        : undefined,
      ca: options.ca,
      rejectUnauthorized: !options.insecure,
    };
    const request = (target.protocol === 'https:' ? https : http).request(
      target,
      requestOptions,
      response => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', chunk => (body += chunk));
        response.on('end', () =>
          (response.statusCode ?? 500) < 300
            ? resolve(body.trim())
            : reject(new Error(`${url}: ${response.statusCode} ${body}`)),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${url}: timeout`)));
    request.on('error', reject);
    request.end();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode) return Promise.resolve();
  return new Promise(resolve => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
