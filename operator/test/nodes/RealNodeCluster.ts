import {
  ChildProcess,
  execFile,
  execFileSync,
  spawn,
} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CoreV1Api, DiscoveryV1Api, V1Node } from '@kubernetes/client-node';
import { nodeLabelsFor } from '../../src/cloud/nodeLabels';
import { apiRequest } from '../../src/kube/client/apiRequest';
import {
  LocalControlPlane,
  LocalControlPlaneOptions,
} from '../kube/LocalControlPlane';
import { nodeBinDir } from './nodeBinaries';

/*
 * The network, all of it inside network namespaces this harness creates: a hub namespace
 * holding the bridge every node's link hangs on (and the relays and CoreDNS), and one
 * namespace per node. The machine's own namespace holds none of these addresses and
 * reaches them only through Unix sockets (relay.ts), so nothing here ever sends a packet
 * to an address outside the namespaces it made.
 */
/** The hub's address on the nodes' bridge: the API server's relay and CoreDNS listen here. */
export const HUB_ADDRESS = '10.200.0.1';
const NODE_PREFIX_LENGTH = 24;
/** Every node and pod address: the nodes on 10.200.0.0/24, node i's pods on 10.200.i.0/24. */
const CLUSTER_CIDR = '10.200.0.0/16';
/** ClusterIPs; only kube-proxy's rules inside the node namespaces ever see them. */
const SERVICE_CIDR = '10.96.0.0/16';
/** The `kubernetes` Service's ClusterIP, which pods' clients check the API server's certificate for. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';
/** The `kube-dns` Service's ClusterIP, every pod's nameserver. */
export const CLUSTER_DNS_IP = '10.96.0.10';
const CLUSTER_DOMAIN = 'cluster.local';
/** The taint AWS Node Termination Handler puts on a node whose spot instance got its notice. */
export const SPOT_NOTICE_TAINT = 'aws-node-termination-handler/spot-itn';
/** How long a node may take to become Ready on a loaded two-core machine. */
const NODE_READY_TIMEOUT_MS = 180_000;
/** How long containerd may take to answer on its socket. */
const CONTAINERD_READY_TIMEOUT_MS = 60_000;
/** How many times a node's containerd is started before the node is given up on. */
const CONTAINERD_STARTS = 2;
/**
 * Node heartbeats: a lease renewed every quarter of this, and the controller manager
 * calling a silent node NotReady after NODE_MONITOR_GRACE, so a reclaimed node shows
 * NotReady in well under a minute rather than the defaults' 50 s and more.
 */
const NODE_LEASE_SECONDS = 20;
const NODE_MONITOR_GRACE = '20s';
const NODE_STATUS_UPDATE_FREQUENCY = '5s';
/** The region every node is in. */
export const REAL_NODE_REGION = 'us-east-1';
/** The v1 cgroup hierarchy whose freezer stops a node's whole process tree at once. */
const FREEZER = '/sys/fs/cgroup/freezer';
/** How long a node's processes get to die after SIGKILL before teardown gives up on them. */
const KILL_TIMEOUT_MS = 20_000;
/** Where every cluster's working directory lives, named so a later run can find leftovers. */
const WORK_PREFIX = 'ferry-nodes-';
/**
 * Paths a kubelet, containerd or the CNI plugins use whatever they are told. Each node
 * mounts a directory of its own over them in a mount namespace of its own, as separate
 * hosts would have them; the empty mount points stay on the machine while any cluster runs.
 */
const SHARED_PATHS = [
  '/run/containerd',
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/var/log/containers',
  '/var/log/pods',
];

/** What one real node is: its cloud labels, as Karpenter and EKS set them. */
export interface RealNodeSpec {
  name: string;
  capacityType: 'spot' | 'on-demand';
  instanceType: string;
  zone: string;
  /** Extra labels, e.g. a workload's node pool. */
  labels?: Record<string, string>;
}

/** Three nodes: two spot in different zones, one on-demand, as a small EKS cluster runs. */
export const DEFAULT_REAL_NODES: RealNodeSpec[] = [
  {
    name: 'spot-a',
    capacityType: 'spot',
    instanceType: 'm5.large',
    zone: 'us-east-1a',
  },
  {
    name: 'spot-b',
    capacityType: 'spot',
    instanceType: 'm5.large',
    zone: 'us-east-1b',
  },
  {
    name: 'on-demand-c',
    capacityType: 'on-demand',
    instanceType: 'm5.large',
    zone: 'us-east-1c',
  },
];

/** How a cluster of real nodes is started. */
export interface RealNodeClusterOptions {
  nodes?: RealNodeSpec[];
  /**
   * OCI image tarballs imported into every node's containerd before its kubelet starts
   * (more can follow with `importImage`). One of them must hold `sandboxImage`.
   */
  images: string[];
  /** The pause image every pod sandbox runs, pinned in containerd; it is never pulled. */
  sandboxImage: string;
  /** The control plane's own options (kwok's fake nodes may run beside the real ones). */
  controlPlane?: LocalControlPlaneOptions;
  /** Where the node binaries are; defaults to the cache of scripts/lib/nodes.sh. */
  nodeBinDir?: string;
  /** The `criu` command line the nodes' runc uses (scripts/lib/criu.sh's FERRY_CRIU). */
  criu?: string;
  /**
   * Ferry's runtime wrapper (scripts/lib/runtime.sh): each node names it as the
   * runtime handler `ferry`, passes it the `ferry.dev/*` pod annotations, and keeps a
   * tmpfs for checkpoint images (`RealNode.imagesDir`) that it and the node agent share.
   */
  ferryRuntime?: string;
  /**
   * The kubelets' longest wait before restarting a container that exited
   * (`crashLoopBackOff.maxContainerRestartPeriod`; default 300 s, and 10 s for
   * the first wait). Hibernation restarts a container twice per sleep, once
   * into a holder and once into the restore, so the second restart waits
   * this long before a woken store can answer.
   */
  maxContainerRestartPeriodSeconds?: number;
}

/** One real node of the cluster. */
export interface RealNode {
  readonly spec: RealNodeSpec;
  readonly name: string;
  /** Its address on the nodes' bridge, inside its own network namespace. */
  readonly ip: string;
  /** The addresses its pods get. */
  readonly podCidr: string;
  /** Its network namespace (`ip netns exec <netns> …`). */
  readonly netns: string;
  /** Its files: containerd's root and state, the kubelet's directory (mounted as /var/lib/kubelet), logs. */
  readonly dir: string;
  /** containerd's socket, for `ctr --address`. */
  readonly containerdSocket: string;
  /** A tmpfs (inside the node's mount namespace) for checkpoint images, with `ferryRuntime`. */
  readonly imagesDir: string;
  /** The runc root containerd's shim keeps the node's Kubernetes containers in. */
  readonly runcRoot: string;
  /** The cgroup (in every v1 hierarchy) holding all its processes and its pods. */
  readonly cgroup: string;
  /** Set once the node was reclaimed or stopped: its processes are gone. */
  killed: boolean;
}

interface Component {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Where this run's output begins in the log: a restart appends to the last one's. */
  logFrom: number;
}

/** What teardown needs, written to disk so that a later run can clean up after a killed one. */
interface Footprint {
  owner: number;
  dir: string;
  netns: string[];
  cgroups: string[];
}

/**
 * A Kubernetes cluster of real nodes on this machine, for tests: the local control plane
 * (LocalControlPlane) and, per node, containerd, runc, the kubelet and kube-proxy in a
 * network and mount namespace of its own, with its own cgroup, pod CIDR and CNI bridge;
 * CoreDNS serves the cluster's names. Nodes are labelled spot or on-demand the way
 * Karpenter and EKS label them, and `reclaim` ends one the way a cloud ends a spot
 * instance. Teardown leaves nothing behind, and a run killed before its teardown is
 * cleaned up by the next start.
 */
export class RealNodeCluster {
  private readonly components: Component[] = [];
  /** Each node's first process, whose namespaces its components enter. */
  private readonly inits = new Map<string, number>();
  private stopped = false;
  private readonly onExit = () => this.teardownSync();

  private constructor(
    readonly controlPlane: LocalControlPlane,
    readonly nodes: RealNode[],
    private readonly binDir: string,
    private readonly footprint: Footprint,
  ) {
    process.once('exit', this.onExit);
  }

  /** Starts the control plane and the nodes; resolves once every node is Ready. */
  static async start(
    options: RealNodeClusterOptions,
  ): Promise<RealNodeCluster> {
    RealNodeCluster.cleanUpAfterKilledRuns();
    raiseMachineLimits();
    const binDir = options.nodeBinDir ?? nodeBinDir();
    const specs = options.nodes ?? DEFAULT_REAL_NODES;
    const id = crypto.randomBytes(3).toString('hex');
    const dir = fs.mkdtempSync(path.join('/tmp', `${WORK_PREFIX}${id}-`));
    const hub = `${WORK_PREFIX}${id}-hub`;
    const nodes: RealNode[] = specs.map((spec, index) => ({
      spec,
      name: spec.name,
      ip: `10.200.0.${10 + index + 1}`,
      podCidr: `10.200.${index + 1}.0/24`,
      netns: `${WORK_PREFIX}${id}-${index + 1}`,
      dir: path.join(dir, spec.name),
      containerdSocket: path.join(dir, spec.name, 'containerd.sock'),
      imagesDir: path.join(dir, spec.name, 'ferry-images'),
      runcRoot: path.join(dir, spec.name, 'runc', 'k8s.io'),
      cgroup: `${WORK_PREFIX}${id}-${spec.name}`,
      killed: false,
    }));
    const footprint: Footprint = {
      owner: process.pid,
      dir,
      netns: [hub, ...nodes.map(node => node.netns)],
      cgroups: nodes.map(node => node.cgroup),
    };
    fs.writeFileSync(
      path.join(dir, 'footprint.json'),
      JSON.stringify(footprint),
    );
    const egressSocket = path.join(dir, 'egress.sock');
    const egressConfig = path.join(dir, 'egress.yaml');
    fs.writeFileSync(egressConfig, egressSelectorYaml(egressSocket));

    let controlPlane: LocalControlPlane | undefined;
    let cluster: RealNodeCluster | undefined;
    try {
      createNetwork(hub, nodes);
      controlPlane = await LocalControlPlane.start({
        ...options.controlPlane,
        advertiseAddress: HUB_ADDRESS,
        servingCertificateIps: [
          KUBERNETES_SERVICE_IP,
          ...(options.controlPlane?.servingCertificateIps ?? []),
        ],
        apiServerFlags: [
          ...(options.controlPlane?.apiServerFlags ?? []),
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          // The API server reaches kubelets and pods through the hub's CONNECT proxy.
          `--egress-selector-config-file=${egressConfig}`,
          '--kubelet-preferred-address-types=InternalIP,Hostname',
          // Webhooks served by pods are dialled at their endpoints, not their ClusterIP,
          // which only the nodes' kube-proxy knows.
          '--enable-aggregator-routing=true',
        ],
        controllerManagerFlags: [
          ...(options.controlPlane?.controllerManagerFlags ?? []),
          `--node-monitor-grace-period=${NODE_MONITOR_GRACE}`,
        ],
      });
      cluster = new RealNodeCluster(controlPlane, nodes, binDir, footprint);
      await cluster.startHub(hub, egressSocket);
      await Promise.all(nodes.map(node => cluster!.startNode(node, options)));
      await cluster.waitForNodesReady(nodes);
    } catch (error) {
      if (cluster) await cluster.stop();
      else {
        await controlPlane?.stop();
        teardownFootprint(footprint);
      }
      throw error;
    }
    return cluster;
  }

  /** A kubeconfig file for kubectl, with cluster-admin rights. */
  get kubeconfigPath(): string {
    return this.controlPlane.kubeconfigPath;
  }

  /** Runs kubectl against this cluster and returns what it printed on stdout. */
  kubectl(args: string[], input?: string): string {
    return this.controlPlane.kubectl(args, input);
  }

  /** The node called `name`. */
  node(name: string): RealNode {
    const node = this.nodes.find(n => n.name === name);
    if (!node) {
      throw new Error(
        `no real node ${name}; the nodes are ${this.nodes
          .map(n => n.name)
          .join(', ')}`,
      );
    }
    return node;
  }

  /** Imports an OCI image tarball into every live node's containerd (namespace k8s.io). */
  async importImage(tarPath: string): Promise<void> {
    if (!fs.existsSync(tarPath)) {
      throw new Error(`no image tarball at ${tarPath}`);
    }
    await Promise.all(
      this.nodes
        .filter(node => !node.killed)
        .map(node => this.ctrImport(node, tarPath)),
    );
  }

  /**
   * Reclaims a node the way a cloud does a spot instance: AWS Node Termination
   * Handler's spot-interruption taint now, then at the deadline the instance is gone:
   * its kubelet, containerd, every container and shim die at once (the node's cgroup is
   * frozen, killed and thawed) and its link is cut, so its pods stop answering.
   * Resolves at the kill, with when the notice and the kill happened.
   */
  async reclaim(
    name: string,
    options: { noticeSeconds: number },
  ): Promise<{ noticedAt: number; killedAt: number }> {
    const node = this.node(name);
    const core = this.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    const current = await core.readNode({ name });
    await apiRequest(
      this.controlPlane.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${name}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          spec: {
            taints: [
              ...(current.spec?.taints ?? []).filter(
                t => t.key !== SPOT_NOTICE_TAINT,
              ),
              {
                key: SPOT_NOTICE_TAINT,
                value: `ferry-test-${Date.now()}`,
                effect: 'NoSchedule',
              },
            ],
          },
        },
      },
    );
    const noticedAt = Date.now();
    await sleep(options.noticeSeconds * 1000);
    this.kill(node);
    return { noticedAt, killedAt: Date.now() };
  }

  /**
   * `file` as the node sees it: its tmpfs mounts (the checkpoint images) are
   * in its own mount namespace, and the host sees the empty directory beneath.
   */
  nodePath(name: string, file: string): string {
    const init = this.inits.get(name);
    if (!init)
      throw new Error(
        `node ${name} has no namespaces (not started, or killed)`,
      );
    return `/proc/${init}/root${file}`;
  }

  /** The processes of a node and its pods (kubelet, containerd, shims, containers) now. */
  pidsOf(name: string): number[] {
    return pidsIn(path.join(FREEZER, this.node(name).cgroup));
  }

  /** Kills a node outright: every process of it and its pods, and its link to the others. */
  kill(node: RealNode): void {
    killCgroupTree(node.cgroup);
    node.killed = true;
    try {
      execFileSync(
        'ip',
        ['-n', this.footprint.netns[0], 'link', 'del', linkName(node)],
        {
          stdio: 'ignore',
        },
      );
    } catch {
      // Already gone.
    }
  }

  /**
   * Cuts a node's link to the others (its veth on the hub's bridge goes down),
   * or restores it: the node and its pods run on, but no packet reaches or
   * leaves it, as when the network between two instances fails.
   */
  setLink(name: string, up: boolean): void {
    const node = this.node(name);
    ip([
      '-n',
      this.footprint.netns[0],
      'link',
      'set',
      linkName(node),
      up ? 'up' : 'down',
    ]);
  }

  /**
   * A path as a node's own processes see it, through its mount namespace
   * (its tmpfs for checkpoint images is mounted there only).
   */
  pathOnNode(name: string, p: string): string {
    return `/proc/${this.inits.get(this.node(name).name)}/root${p}`;
  }

  /**
   * Gives a node's tmpfs for checkpoint images another size (tmpfs's `size`:
   * bytes with k/m/g, or a share of memory like 50%), remounted in the node's
   * mount namespace with what it holds.
   */
  resizeImagesDir(name: string, size: string): void {
    const node = this.node(name);
    execFileSync(
      'nsenter',
      [
        `--target=${this.inits.get(name)}`,
        '--mount',
        '--',
        'mount',
        '-o',
        `remount,size=${size}`,
        node.imagesDir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }

  /**
   * Opens a TCP connection to an address inside the cluster (a pod, a node), through
   * the hub's CONNECT proxy; the machine itself has no route there.
   */
  connect(host: string, port: number): Promise<net.Socket> {
    return connectThroughProxy(this.egressSocket, host, port);
  }

  /**
   * A way into the cluster's network as a pod has it, for a process of its own that
   * must reach pod addresses (the CONNECT proxy is one connection at a time): the
   * hub's network namespace, which routes to every node and pod, and a kubeconfig
   * of `user` in `group` reaching the API server from there.
   */
  hubAccess(
    user: string,
    group = 'system:masters',
  ): { netns: string; kubeconfig: string } {
    return {
      netns: `/run/netns/${this.footprint.netns[0]}`,
      kubeconfig: this.writeKubeconfig(user, user, group),
    };
  }

  /** The hub's CONNECT proxy, for a process of its own that reaches into the cluster. */
  get egressSocket(): string {
    return path.join(this.footprint.dir, 'egress.sock');
  }

  /**
   * The names in `dir` as the node sees it: the node's own mounts (its images
   * tmpfs) live in its mount namespace, where the test's process does not look.
   */
  filesOnNode(name: string, dir: string): string[] {
    const init = this.inits.get(this.node(name).name);
    if (!init) throw new Error(`node ${name} is not running`);
    return execFileSync(
      'nsenter',
      [`--target=${init}`, '--mount', '--', 'ls', '-A', dir],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter(Boolean);
  }

  /** The last lines a node component logged (`<node>/kubelet`, `hub/coredns`, …). */
  logTail(name: string, lines = 30): string {
    const component = this.components.find(c => c.name === name);
    if (!component || !fs.existsSync(component.logFile)) return '';
    return fs
      .readFileSync(component.logFile, 'utf8')
      .split('\n')
      .slice(-lines)
      .join('\n');
  }

  /** Stops the nodes, the hub and the control plane and removes everything they left. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.teardownSync();
    await this.controlPlane.stop();
  }

  private teardownSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    for (const node of this.nodes) {
      killCgroupTree(node.cgroup);
      node.killed = true;
    }
    for (const { child } of this.components) {
      if (child.exitCode === null && !child.signalCode) child.kill('SIGKILL');
    }
    teardownFootprint(this.footprint);
  }

  private async startHub(hub: string, egressSocket: string): Promise<void> {
    const apiPort = Number(new URL(this.controlPlane.server).port);
    const apiSocket = path.join(this.footprint.dir, 'api.sock');
    // The machine's side: the API server's loopback port, offered as a Unix socket.
    await this.startRelay('host/relay', [], {
      forwards: [
        {
          listen: { path: apiSocket },
          connect: { host: '127.0.0.1', port: apiPort },
        },
      ],
    });
    // The hub's side: that socket on the hub's address, and the egress proxy.
    await this.startRelay(
      'hub/relay',
      ['nsenter', `--net=/run/netns/${hub}`, '--'],
      {
        forwards: [
          {
            listen: { host: HUB_ADDRESS, port: apiPort },
            connect: { path: apiSocket },
          },
        ],
        connectProxy: egressSocket,
      },
    );
    const hubKubeconfig = this.writeKubeconfig(
      'hub',
      'ferry-cluster-dns',
      'system:masters',
    );
    const corefile = path.join(this.footprint.dir, 'Corefile');
    // No `forward`: the cluster answers for its own names and nothing else, so no
    // query ever leaves the namespaces.
    fs.writeFileSync(
      corefile,
      `.:53 {
  bind ${HUB_ADDRESS}
  errors
  kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
    kubeconfig ${hubKubeconfig} ferry
    pods insecure
    ttl 5
  }
}
`,
    );
    this.run('hub/coredns', [
      'nsenter',
      `--net=/run/netns/${hub}`,
      '--',
      path.join(this.binDir, 'coredns'),
      '-conf',
      corefile,
    ]);
    const core = this.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedService({
      namespace: 'kube-system',
      body: {
        metadata: { name: 'kube-dns', labels: { 'k8s-app': 'kube-dns' } },
        spec: {
          clusterIP: CLUSTER_DNS_IP,
          ports: [
            { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
            { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
          ],
        },
      },
    });
    // The Service has no selector: its one endpoint is CoreDNS on the hub.
    await this.controlPlane
      .kubeConfig()
      .makeApiClient(DiscoveryV1Api)
      .createNamespacedEndpointSlice({
        namespace: 'kube-system',
        body: {
          metadata: {
            name: 'kube-dns-hub',
            labels: {
              'kubernetes.io/service-name': 'kube-dns',
              'endpointslice.kubernetes.io/managed-by': 'ferry-test',
            },
          },
          addressType: 'IPv4',
          endpoints: [
            { addresses: [HUB_ADDRESS], conditions: { ready: true } },
          ],
          ports: [
            { name: 'dns', port: 53, protocol: 'UDP' },
            { name: 'dns-tcp', port: 53, protocol: 'TCP' },
          ],
        },
      });
  }

  private async startNode(
    node: RealNode,
    options: RealNodeClusterOptions,
  ): Promise<void> {
    const d = node.dir;
    for (const sub of [
      'containerd',
      'runc',
      'cni/net.d',
      'cni/lib',
      'kubelet',
      'pki',
      'log/containers',
      'log/pods',
      'run-containerd',
      'bin',
      'ferry-images',
      'ferry-runtime',
    ]) {
      fs.mkdirSync(path.join(d, sub), { recursive: true });
    }
    createCgroup(node.cgroup);
    // A `criu` on containerd's PATH, for runc's checkpoints; its configuration file
    // (CRIU_CONFIG_FILE) locks the network with nftables, as iptables is not installed.
    const criu = options.criu ?? process.env.FERRY_CRIU;
    if (criu) {
      fs.writeFileSync(
        path.join(d, 'bin/criu'),
        `#!/bin/sh\nexec ${criu} "$@"\n`,
        { mode: 0o755 },
      );
    }
    fs.writeFileSync(path.join(d, 'criu.conf'), 'network-lock nftables\n');
    fs.writeFileSync(
      path.join(d, 'containerd.toml'),
      containerdToml(
        node,
        this.binDir,
        options.sandboxImage,
        options.ferryRuntime,
      ),
    );
    fs.writeFileSync(
      path.join(d, 'cni/net.d/10-ferry.conflist'),
      JSON.stringify(cniConfig(node), null, 2),
    );

    // The node's first process: its mount namespace, with the node's own directories
    // over the paths every kubelet and containerd share, held open by `sleep`.
    for (const shared of SHARED_PATHS)
      fs.mkdirSync(shared, { recursive: true });
    const binds = [
      ['run-containerd', '/run/containerd'],
      ['kubelet', '/var/lib/kubelet'],
      ['cni/lib', '/var/lib/cni'],
      ['log/containers', '/var/log/containers'],
      ['log/pods', '/var/log/pods'],
    ]
      .map(([from, to]) => `mount --bind ${path.join(d, from)} ${to}`)
      .concat(
        // Checkpoint images hold a process's memory: memory only, gone with the node.
        options.ferryRuntime
          ? [`mount -t tmpfs -o mode=0700 ferry-images ${node.imagesDir}`]
          : [],
      )
      .join(' && ');
    const init = this.run(`${node.name}/init`, [
      'nsenter',
      `--net=/run/netns/${node.netns}`,
      '--',
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      `${joinCgroup(
        node.cgroup,
      )} && ${binds} && echo up && exec sleep infinity`,
    ]);
    await waitForOutput(init, 'up', `${node.name}'s namespaces`);
    this.inits.set(node.name, init.child.pid!);
    const enter = (
      name: string,
      argv: string[],
      env: Record<string, string> = {},
    ) =>
      this.run(`${node.name}/${name}`, [
        'nsenter',
        `--target=${init.child.pid}`,
        '--mount',
        '--net',
        '--',
        'env',
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        'sh',
        '-c',
        `${joinCgroup(node.cgroup)} && exec "$@"`,
        'sh',
        ...argv,
      ]);

    const startContainerd = () =>
      enter(
        'containerd',
        [
          path.join(this.binDir, 'containerd'),
          '--config',
          path.join(d, 'containerd.toml'),
        ],
        {
          PATH: `${path.join(d, 'bin')}:${
            this.binDir
          }:/usr/sbin:/usr/bin:/sbin:/bin`,
          CRIU_CONFIG_FILE: path.join(d, 'criu.conf'),
          // Read by Ferry's runtime wrapper, which the shim runs with containerd's environment.
          ...(options.ferryRuntime
            ? {
                FERRY_RUNC: path.join(this.binDir, 'runc'),
                FERRY_IMAGES_DIR: node.imagesDir,
                FERRY_RUNTIME_STATE: path.join(d, 'ferry-runtime'),
              }
            : {}),
        },
      );
    await this.startContainerd(node, startContainerd);
    for (const image of options.images) await this.ctrImport(node, image);

    const kubeconfig = this.writeKubeconfig(
      node.name,
      `system:node:${node.name}`,
      'system:nodes',
    );
    fs.writeFileSync(
      path.join(d, 'kubelet.yaml'),
      kubeletYaml(
        node,
        this.controlPlane,
        options.maxContainerRestartPeriodSeconds,
      ),
    );
    const labels = {
      ...nodeLabelsFor(
        'aws',
        node.spec.capacityType,
        node.spec.instanceType,
        node.spec.zone,
        REAL_NODE_REGION,
      ),
      ...node.spec.labels,
    };
    enter('kubelet', [
      path.join(this.controlPlane.binDir, 'kubelet'),
      `--config=${path.join(d, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeconfig}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.ip}`,
      `--node-labels=${Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}`,
      '--root-dir=/var/lib/kubelet',
      `--cert-dir=${path.join(d, 'pki')}`,
      '--v=1',
    ]);
    const proxyKubeconfig = this.writeKubeconfig(
      `${node.name}-proxy`,
      'system:kube-proxy',
      'system:node-proxier',
    );
    enter('kube-proxy', [
      path.join(this.controlPlane.binDir, 'kube-proxy'),
      `--kubeconfig=${proxyKubeconfig}`,
      '--proxy-mode=nftables',
      `--hostname-override=${node.name}`,
      `--cluster-cidr=${CLUSTER_CIDR}`,
      // Service traffic is masqueraded, so a reply from a pod on the client's own
      // bridge comes back through the node's rules and is un-NATed.
      '--masquerade-all',
      // conntrack's sysctls belong to the machine, not to the node's namespace.
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      '--metrics-bind-address=127.0.0.1:10249',
      '--healthz-bind-address=127.0.0.1:10256',
      '--v=1',
    ]);
  }

  /**
   * Starts a node's containerd and waits until it answers, starting it once more
   * if it does not. A containerd on a loaded CI machine once stopped logging in
   * its CRI plugin's start and never served its socket: its goroutines are dumped
   * into the test's output (SIGUSR1) before the second start, so a stall says where.
   */
  private async startContainerd(
    node: RealNode,
    start: () => Component,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const containerd = start();
      if (await this.containerdAnswers(node)) return;
      const stall = `${node.name}'s containerd did not answer within ${CONTAINERD_READY_TIMEOUT_MS} ms (start ${attempt} of ${CONTAINERD_STARTS})`;
      containerd.child.kill('SIGUSR1');
      await sleep(1_000);
      const log = this.logTail(`${node.name}/containerd`, 400);
      containerd.child.kill('SIGKILL');
      await new Promise(resolve =>
        containerd.child.exitCode !== null || containerd.child.signalCode
          ? resolve(undefined)
          : containerd.child.once('exit', resolve),
      );
      if (attempt === CONTAINERD_STARTS) {
        throw new Error(`${stall}; its log ends:\n${log}`);
      }
      // eslint-disable-next-line no-console
      console.warn(`${stall}; starting it again. Its log ends:\n${log}`);
    }
  }

  /** Whether a node's containerd answers `ctr version` before CONTAINERD_READY_TIMEOUT_MS. */
  private async containerdAnswers(node: RealNode): Promise<boolean> {
    const deadline = Date.now() + CONTAINERD_READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const answered = await new Promise<boolean>(resolve =>
        execFile(
          path.join(this.binDir, 'ctr'),
          ['--address', node.containerdSocket, 'version'],
          { timeout: 10_000 },
          error => resolve(!error),
        ),
      );
      if (answered) return true;
      await sleep(250);
    }
    return false;
  }

  private ctrImport(node: RealNode, tarPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        path.join(this.binDir, 'ctr'),
        [
          '--address',
          node.containerdSocket,
          '--namespace',
          'k8s.io',
          'images',
          'import',
          '--no-unpack=false',
          tarPath,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr!.on('data', chunk => (stderr += chunk));
      child.on('error', reject);
      child.on('exit', code =>
        code === 0
          ? resolve()
          : reject(
              new Error(
                `importing ${tarPath} into ${node.name}'s containerd failed (${code}): ${stderr}`,
              ),
            ),
      );
    });
  }

  private async waitForNodesReady(nodes: RealNode[]): Promise<V1Node[]> {
    const core = this.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    const names = new Set(nodes.map(n => n.name));
    const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
    for (;;) {
      const ready = (await core.listNode()).items.filter(
        node =>
          names.has(node.metadata!.name!) &&
          node.status?.conditions?.some(
            c => c.type === 'Ready' && c.status === 'True',
          ),
      );
      if (ready.length === names.size) return ready;
      for (const component of this.components) {
        if (component.child.exitCode !== null || component.child.signalCode) {
          throw new Error(
            `${component.name} exited (${
              component.child.exitCode ?? component.child.signalCode
            }) while the nodes started; its log ends:\n${this.logTail(
              component.name,
            )}`,
          );
        }
      }
      if (Date.now() > deadline) {
        const missing = [...names].filter(
          n => !ready.some(r => r.metadata!.name === n),
        );
        throw new Error(
          `nodes ${missing.join(
            ', ',
          )} were not Ready within ${NODE_READY_TIMEOUT_MS} ms; ` +
            `${missing[0]}'s kubelet log ends:\n${this.logTail(
              `${missing[0]}/kubelet`,
            )}`,
        );
      }
      await sleep(500);
    }
  }

  /** A kubeconfig for a client certificate of `user` in `group`, reaching the API server on the hub. */
  private writeKubeconfig(file: string, user: string, group: string): string {
    const cert = this.controlPlane.issueClientCertificate(user, group);
    const apiPort = new URL(this.controlPlane.server).port;
    const kubeconfig = path.join(this.footprint.dir, `${file}.kubeconfig`);
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters:
  - name: ferry
    cluster:
      server: https://${HUB_ADDRESS}:${apiPort}
      certificate-authority-data: ${Buffer.from(
        this.controlPlane.caPem,
      ).toString('base64')}
users:
  - name: ferry
    user:
      client-certificate: ${cert.certFile}
      client-key: ${cert.keyFile}
contexts:
  - name: ferry
    context: { cluster: ferry, user: ferry }
current-context: ferry
`,
      { mode: 0o600 },
    );
    return kubeconfig;
  }

  private async startRelay(
    name: string,
    prefix: string[],
    spec: object,
  ): Promise<void> {
    const child = this.run(name, [
      ...prefix,
      process.execPath,
      // relay.ts is plain ES module syntax with types; Node strips them.
      '--disable-warning=MODULE_TYPELESS_PACKAGE_JSON',
      path.join(__dirname, 'relay.ts'),
      JSON.stringify(spec),
    ]);
    await waitForOutput(child, 'ready', name);
  }

  /**
   * Starts a process on a node, in its network and mount namespaces and its cgroup
   * (a node agent, say), and waits until it prints `readyLine`; it dies with the node
   * or the test. Its output goes to the log `<node>/<name>`.
   */
  async startOnNode(
    nodeName: string,
    name: string,
    argv: string[],
    env: Record<string, string>,
    readyLine: string,
    timeoutMs = 120_000,
  ): Promise<ChildProcess> {
    const node = this.node(nodeName);
    const init = this.inits.get(node.name);
    if (!init || node.killed) {
      throw new Error(`node ${node.name} is not running`);
    }
    const component = this.run(`${node.name}/${name}`, [
      'nsenter',
      `--target=${init}`,
      '--mount',
      '--net',
      '--',
      'env',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'sh',
      '-c',
      `${joinCgroup(node.cgroup)} && exec "$@"`,
      'sh',
      ...argv,
    ]);
    await waitForOutput(
      component,
      readyLine,
      `${name} on ${node.name}`,
      timeoutMs,
    );
    return component.child;
  }

  /**
   * Starts a process that dies with the test (setpriv's parent-death signal), its
   * output going straight to a log file: a pipe read by the test would stall every
   * component while the test blocks (kubectl through execFileSync).
   */
  private run(name: string, argv: string[]): Component {
    const logFile = path.join(
      this.footprint.dir,
      `${name.replace('/', '.')}.log`,
    );
    const log = fs.openSync(logFile, 'a');
    const logFrom = fs.fstatSync(log).size;
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...argv], {
      stdio: ['ignore', log, log],
      cwd: this.footprint.dir,
    });
    fs.closeSync(log);
    const component = { name, child, logFile, logFrom };
    this.components.push(component);
    return component;
  }

  /**
   * Removes what runs killed before their teardown left behind: a cluster's work
   * directory names its owner, and an owner that is gone means nobody will clean up.
   */
  static cleanUpAfterKilledRuns(): void {
    for (const entry of fs.readdirSync('/tmp')) {
      if (!entry.startsWith(WORK_PREFIX)) continue;
      const file = path.join('/tmp', entry, 'footprint.json');
      let footprint: Footprint;
      try {
        footprint = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        continue;
      }
      if (isAlive(footprint.owner)) continue;
      for (const cgroup of footprint.cgroups) killCgroupTree(cgroup);
      teardownFootprint(footprint);
    }
  }
}

/**
 * Opens a TCP connection to `host:port` inside a cluster through its hub's CONNECT
 * proxy at the Unix socket `proxy` (RealNodeCluster.egressSocket).
 */
export function connectThroughProxy(
  proxy: string,
  host: string,
  port: number,
): Promise<net.Socket> {
  const socket = net.connect(proxy);
  return new Promise((resolve, reject) => {
    let answer = '';
    const onData = (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!answer.startsWith('HTTP/1.1 200')) {
        socket.destroy();
        reject(new Error(`connecting to ${host}:${port}: ${answer.trim()}`));
        return;
      }
      const rest = Buffer.from(answer.slice(end + 4), 'latin1');
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.once('error', reject);
    // A proxy that hangs up without an answer must fail the dial, not leave it
    // pending for ever (an agent call would wait on it with no timeout of its own).
    socket.once('close', () =>
      reject(new Error(`connecting to ${host}:${port}: the proxy hung up`)),
    );
    socket.on('data', onData);
    socket.write(
      `CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`,
    );
  });
}

/** The veth end in the hub for a node. */
function linkName(node: RealNode): string {
  return `n${node.netns.split('-').pop()}`;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function sysctlIn(netns: string, key: string, value: string): void {
  execFileSync(
    'ip',
    ['netns', 'exec', netns, 'sysctl', '-q', '-w', `${key}=${value}`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
}

/** The hub with its bridge, and each node's namespace with a link to it and routes to every pod. */
function createNetwork(hub: string, nodes: RealNode[]): void {
  ip(['netns', 'add', hub]);
  ip(['-n', hub, 'link', 'set', 'lo', 'up']);
  ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
  ip([
    '-n',
    hub,
    'addr',
    'add',
    `${HUB_ADDRESS}/${NODE_PREFIX_LENGTH}`,
    'dev',
    'br0',
  ]);
  ip(['-n', hub, 'link', 'set', 'br0', 'up']);
  sysctlIn(hub, 'net.ipv4.ip_forward', '1');
  for (const node of nodes) {
    ip(['netns', 'add', node.netns]);
    ip(['-n', node.netns, 'link', 'set', 'lo', 'up']);
    ip([
      '-n',
      hub,
      'link',
      'add',
      linkName(node),
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      node.netns,
    ]);
    ip(['-n', hub, 'link', 'set', linkName(node), 'master', 'br0', 'up']);
    ip([
      '-n',
      node.netns,
      'addr',
      'add',
      `${node.ip}/${NODE_PREFIX_LENGTH}`,
      'dev',
      'eth0',
    ]);
    ip(['-n', node.netns, 'link', 'set', 'eth0', 'up']);
    // Everything not on the node goes to the hub, which knows every pod CIDR and has
    // no route out of the namespaces.
    ip(['-n', node.netns, 'route', 'add', 'default', 'via', HUB_ADDRESS]);
    ip(['-n', hub, 'route', 'add', node.podCidr, 'via', node.ip]);
    sysctlIn(node.netns, 'net.ipv4.ip_forward', '1');
  }
}

/**
 * CRIU's lazy page server needs pipes larger than the default limit (../shared/NOTES.md);
 * root may raise it without CAP_SYS_RESOURCE.
 */
const PIPE_MAX_SIZE = 4 * 1024 * 1024;

/**
 * Every kubelet and containerd takes inotify instances (cAdvisor, certificate
 * watches); with a few clusters up at once the default 128 per user ran out and a
 * kubelet exited at start ("inotify_init: too many open files").
 */
const INOTIFY_MAX_USER_INSTANCES = 1024;

function raiseMachineLimits(): void {
  for (const [file, least] of [
    ['/proc/sys/fs/pipe-max-size', PIPE_MAX_SIZE],
    ['/proc/sys/fs/inotify/max_user_instances', INOTIFY_MAX_USER_INSTANCES],
  ] as const) {
    if (Number(fs.readFileSync(file, 'utf8')) < least) {
      fs.writeFileSync(file, String(least));
    }
  }
}

/** The v1 hierarchies a node's cgroup is made in (every one but the v2 mount). */
function cgroupHierarchies(): string[] {
  return fs
    .readdirSync('/sys/fs/cgroup')
    .filter(h => h !== 'unified')
    .map(h => path.join('/sys/fs/cgroup', h))
    .filter(h => fs.existsSync(path.join(h, 'cgroup.procs')));
}

function createCgroup(cgroup: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = path.join(hierarchy, cgroup);
    fs.mkdirSync(dir, { recursive: true });
    // A new cpuset has no CPUs or memory nodes until given its parent's.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      const parent = path.join(hierarchy, file);
      if (fs.existsSync(parent)) {
        fs.writeFileSync(path.join(dir, file), fs.readFileSync(parent, 'utf8'));
      }
    }
  }
}

/** Shell that moves itself into the node's cgroup in every hierarchy, before it execs. */
function joinCgroup(cgroup: string): string {
  return `for h in ${cgroupHierarchies().join(
    ' ',
  )}; do echo $$ > "$h/${cgroup}/cgroup.procs"; done`;
}

/** Every cgroup directory under `dir`, deepest first. */
function cgroupTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const children = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter(entry => entry.isDirectory())
    .flatMap(entry => cgroupTree(path.join(dir, entry.name)));
  return [...children, dir];
}

function pidsIn(dir: string): number[] {
  return cgroupTree(dir).flatMap(cg => {
    try {
      return fs
        .readFileSync(path.join(cg, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  });
}

/**
 * Kills every process of a node at once: the freezer stops them (no fork escapes, no
 * shim restarts a container), SIGKILL goes to each, and thawing lets them die.
 */
function killCgroupTree(cgroup: string): void {
  const freezer = path.join(FREEZER, cgroup);
  const deadline = Date.now() + KILL_TIMEOUT_MS;
  for (;;) {
    const pids = pidsIn(freezer);
    if (pids.length === 0) return;
    try {
      fs.writeFileSync(path.join(freezer, 'freezer.state'), 'FROZEN');
    } catch {
      // Not frozen: the kill below still reaches every process listed.
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    // Every cgroup of the tree, not only its root: a container paused by runc
    // (a checkpoint's source) is frozen by itself, stays FROZEN when its
    // parent thaws, and its tasks never act on their SIGKILL.
    for (const dir of cgroupTree(freezer)) {
      try {
        fs.writeFileSync(path.join(dir, 'freezer.state'), 'THAWED');
      } catch {
        // Nothing to thaw, or gone meanwhile.
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `processes ${pidsIn(freezer).join(
          ', ',
        )} of cgroup ${cgroup} outlived SIGKILL for ${KILL_TIMEOUT_MS} ms`,
      );
    }
    sleepSync(50);
  }
}

/** Removes a cluster's namespaces, cgroups, and files; its processes must be dead. */
function teardownFootprint(footprint: Footprint): void {
  for (const netns of footprint.netns) {
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // Never made, or already removed.
    }
  }
  for (const cgroup of footprint.cgroups) {
    // runc also makes the node's cgroup in the v2 mount of this hybrid layout.
    for (const hierarchy of [
      ...cgroupHierarchies(),
      '/sys/fs/cgroup/unified',
    ]) {
      for (const dir of cgroupTree(path.join(hierarchy, cgroup))) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // A process still in it: the kill above reports that.
        }
      }
    }
  }
  // Mounts inside a node's mount namespace went with its last process; none are in
  // the machine's, so removing the files removes everything.
  fs.rmSync(footprint.dir, { recursive: true, force: true });
  const othersRunning = fs
    .readdirSync('/tmp')
    .some(entry => entry.startsWith(WORK_PREFIX));
  if (!othersRunning) {
    // The mount points the nodes shared; empty unless something else uses them.
    for (const shared of SHARED_PATHS) {
      try {
        fs.rmdirSync(shared);
      } catch {
        // In use by something else, or not there.
      }
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function egressSelectorYaml(socket: string): string {
  return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
  - name: cluster
    connection:
      proxyProtocol: HTTPConnect
      transport:
        uds:
          udsName: ${socket}
`;
}

function containerdToml(
  node: RealNode,
  binDir: string,
  sandboxImage: string,
  ferryRuntime?: string,
): string {
  const d = node.dir;
  // Ferry's runtime handler, as operator/chart/README.md tells a node to name it: runc's
  // shim with the wrapper as its binary and runc's root, and the pod annotations it reads.
  const ferry = ferryRuntime
    ? `
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ferry]
      runtime_type = "io.containerd.runc.v2"
      pod_annotations = ["ferry.dev/*"]
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.ferry.options]
        BinaryName = "${ferryRuntime}"
        Root = "${d}/runc"
        SystemdCgroup = false`
    : '';
  return `version = 3
root = "${d}/containerd/root"
state = "${d}/containerd/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "${node.containerdSocket}"

[ttrpc]
  address = "${node.containerdSocket}.ttrpc"

[debug]
  address = ""

# NRI's socket defaults to /var/run/nri/nri.sock, one path for every containerd on the
# machine: two nodes starting at once collided on it ("address already in use") and the
# second containerd died. Each node keeps its own.
[plugins."io.containerd.nri.v1.nri"]
  socket_path = "${d}/nri.sock"

[metrics]
  address = ""

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${sandboxImage}"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: lowering a sandbox's oom_score_adj fails.
  restrict_oom_score_adj = true
  # Pods' network namespaces are mounted under the node's own state directory.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${binDir}/runc"
        Root = "${d}/runc"
        SystemdCgroup = false${ferry}
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["${binDir}"]
    conf_dir = "${d}/cni/net.d"
`;
}

function cniConfig(node: RealNode): object {
  return {
    cniVersion: '1.0.0',
    name: `ferry-${node.name}`,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: node.podCidr }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: path.join(node.dir, 'cni/ipam'),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function kubeletYaml(
  node: RealNode,
  controlPlane: LocalControlPlane,
  maxContainerRestartPeriodSeconds?: number,
): string {
  const restarts =
    maxContainerRestartPeriodSeconds === undefined
      ? ''
      : `crashLoopBackOff: { maxContainerRestartPeriod: ${maxContainerRestartPeriodSeconds}s }\n`;
  return `${restarts}apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine runs cgroup v1.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /${node.cgroup}
containerRuntimeEndpoint: unix://${node.containerdSocket}
address: ${node.ip}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${path.join(controlPlane.workDir, 'pki/ca.crt')} }
authorization: { mode: Webhook }
clusterDNS: [${CLUSTER_DNS_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
# Not the machine's resolv.conf: its nameservers are outside the namespaces.
resolvConf: ""
podCIDR: ${node.podCidr}
podLogsDir: /var/log/pods
failSwapOn: false
nodeStatusUpdateFrequency: ${NODE_STATUS_UPDATE_FREQUENCY}
nodeLeaseDurationSeconds: ${NODE_LEASE_SECONDS}
# The disk is shared with everything else on the machine: never evict for it.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`;
}

/** Waits until a component printed `line` on a line of its own in its log. */
async function waitForOutput(
  component: Component,
  line: string,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // This run's output only: a restarted component's log still holds the
    // line its predecessor printed.
    const log = fs
      .readFileSync(component.logFile)
      .subarray(component.logFrom)
      .toString('utf8');
    if (log.split('\n').includes(line)) return;
    const { child } = component;
    if (child.exitCode !== null || child.signalCode) {
      throw new Error(
        `${what} exited (${
          child.exitCode ?? child.signalCode
        }) while starting; its log ends:\n${log
          .split('\n')
          .slice(-30)
          .join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not start within ${timeoutMs} ms`);
    }
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
