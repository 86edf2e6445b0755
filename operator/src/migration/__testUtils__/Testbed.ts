/*
 * Network namespaces that play a cluster's nodes, for tests and the benchmark.
 *
 *   root netns (the operator, the clients) ── veth ──┐
 *                                                     br0 in the router netns (10.A.B.1/24)
 *   host netns "a" (10.A.B.11, eth0) ─── veth ───────┤
 *   host netns "b" (10.A.B.12, eth0) ─── veth ───────┘
 *
 * Stable addresses (a Service's address, a pod's address) live in a second
 * subnet 10.A.B+1.0/24: each is a /32 on the host that holds it, and the router
 * has a /32 route to that host. Moving an address is a route change, as a CNI
 * that keeps pod IPs across nodes does, so every packet crosses a real link.
 *
 * A Service is an address in the same subnet that the router translates to one
 * host's address (nft DNAT, as kube-proxy does): a new connection goes to the
 * host the Service points at now, an established one stays where it was until
 * either end closes it.
 */
import { execFile, spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** The router's nft table for Services. */
const SERVICE_TABLE = 'ferry_services';
/** How long the router's batch process may take to confirm a route change. */
const ROUTER_CONFIRM_TIMEOUT_MS = 5_000;

/** Runs a command and returns stdout; throws with stderr on failure. */
export async function sh(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

/** One host (a node) in the testbed. */
export interface TestHost {
  name: string;
  netns: string;
  /** Path for `nsenter --net=`. */
  netnsPath: string;
  address: string;
}

/** Network namespaces, a router and stable addresses; everything removed by destroy(). */
export class Testbed {
  readonly hosts = new Map<string, TestHost>();
  private readonly children = new Set<ChildProcess>();
  /** An nft started ahead of the next rule change, reading its rules from stdin. */
  private spareNft?: { child: ChildProcess; stderr: string[] };
  private readonly floating = new Map<string, string>();
  /** Hosts that carry each stable address, routed to or not. */
  private readonly attached = new Map<string, Set<string>>();
  private readonly routerNetns: string;
  private readonly rootVeth: string;
  private destroyed = false;
  private nextHostIndex = 10;
  private router?: ChildProcess;
  /** Service addresses and the host each points at. */
  private readonly services = new Map<string, string>();
  private natReady = false;
  private routerQueue: Promise<void> = Promise.resolve();

  private constructor(
    readonly prefix: string,
    private readonly net: string,
    private readonly serviceNet: string,
  ) {
    this.routerNetns = `${prefix}r`;
    this.rootVeth = `${prefix}o`;
  }

  /** Creates the router and one namespace per host name. */
  static async create(hostNames: string[]): Promise<Testbed> {
    if (process.getuid?.() !== 0) {
      throw new Error('the testbed needs root (network namespaces)');
    }
    const prefix = `fm${randomBytes(3).toString('hex')}`;
    const [net, serviceNet] = await freeSubnets();
    const bed = new Testbed(prefix, net, serviceNet);
    try {
      await bed.setUpRouter();
      for (const name of hostNames) {
        await bed.addHost(name);
      }
    } catch (error) {
      await bed.destroy();
      throw error;
    }
    return bed;
  }

  /** The router's bridge address (hosts' gateway). */
  get gateway(): string {
    return `${this.net}.1`;
  }

  /** A free address in the stable-address subnet; `index` 1..250. */
  serviceAddress(index: number): string {
    return `${this.serviceNet}.${index}`;
  }

  private async setUpRouter(): Promise<void> {
    const r = this.routerNetns;
    await sh('ip', ['netns', 'add', r]);
    await this.inNetns(r, 'ip', ['link', 'set', 'lo', 'up']);
    // A fixed MAC: a bridge otherwise takes its lowest port's, which changes when a
    // host (a port) goes away, and every neighbour then talks to a stale MAC for
    // seconds — a reclaimed node would stall traffic between the nodes that remain.
    const mac = `02:${[...randomBytes(5)].map(b => b.toString(16).padStart(2, '0')).join(':')}`;
    await this.inNetns(r, 'ip', ['link', 'add', 'br0', 'address', mac, 'type', 'bridge']);
    await this.inNetns(r, 'ip', ['addr', 'add', `${this.net}.1/24`, 'dev', 'br0']);
    await this.inNetns(r, 'ip', ['link', 'set', 'br0', 'up']);
    await this.inNetns(r, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // Without this the router tells hosts to talk to each other directly, which
    // would bypass the routes that move stable addresses.
    await this.inNetns(r, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0']);
    await this.inNetns(r, 'sysctl', ['-qw', 'net.ipv4.conf.br0.send_redirects=0']);
    await sh('ip', ['link', 'add', this.rootVeth, 'type', 'veth', 'peer', 'name', `${this.prefix}p`]);
    await sh('ip', ['link', 'set', `${this.prefix}p`, 'netns', r]);
    await this.inNetns(r, 'ip', ['link', 'set', `${this.prefix}p`, 'master', 'br0', 'up']);
    await sh('ip', ['addr', 'add', `${this.net}.2/24`, 'dev', this.rootVeth]);
    await sh('ip', ['link', 'set', this.rootVeth, 'up']);
    await sh('ip', ['route', 'add', `${this.serviceNet}.0/24`, 'via', `${this.net}.1`]);
  }

  /** Adds a host namespace on the router's bridge. */
  async addHost(name: string): Promise<TestHost> {
    const index = this.nextHostIndex++;
    const netns = `${this.prefix}h${index}`;
    const host: TestHost = {
      name,
      netns,
      netnsPath: `/run/netns/${netns}`,
      address: `${this.net}.${index}`,
    };
    const outside = `${this.prefix}${index}y`;
    await sh('ip', ['netns', 'add', netns]);
    await sh('ip', ['link', 'add', `${this.prefix}${index}x`, 'type', 'veth', 'peer', 'name', outside]);
    await sh('ip', ['link', 'set', `${this.prefix}${index}x`, 'netns', netns]);
    await sh('ip', ['link', 'set', outside, 'netns', this.routerNetns]);
    await this.inNetns(this.routerNetns, 'ip', ['link', 'set', outside, 'master', 'br0', 'up']);
    await this.inNetns(netns, 'ip', ['link', 'set', `${this.prefix}${index}x`, 'name', 'eth0']);
    await this.inNetns(netns, 'ip', ['addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
    await this.inNetns(netns, 'ip', ['link', 'set', 'eth0', 'up']);
    await this.inNetns(netns, 'ip', ['link', 'set', 'lo', 'up']);
    await this.inNetns(netns, 'ip', ['route', 'add', 'default', 'via', this.gateway]);
    this.hosts.set(name, host);
    return host;
  }

  /** The host by name; throws if unknown. */
  host(name: string): TestHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  }

  /** Runs a command inside a namespace, the way CRIU needs it (no extra mount namespace). */
  inNetns(netns: string, command: string, args: string[]): Promise<string> {
    if (command === 'ip') {
      // One process instead of two: address moves sit inside the measured pause.
      return sh('ip', ['-n', netns, ...args]);
    }
    return sh('nsenter', [`--net=/run/netns/${netns}`, command, ...args]);
  }

  /** Puts a stable address on `hostName` (or moves it there). */
  async placeAddress(address: string, hostName: string): Promise<void> {
    const to = this.host(hostName);
    const from = this.floating.get(address);
    // New home first, then the route, then off the old home: in between, packets
    // always reach a host that owns the address and answers (or resets) at once,
    // instead of vanishing into TCP retransmission back-off.
    if (!this.attached.get(address)?.has(hostName)) {
      await this.attachAddress(address, hostName);
    }
    await this.routeVia(address, to.address);
    this.floating.set(address, hostName);
    if (from && from !== hostName && this.hosts.has(from)) {
      await this.inNetns(this.host(from).netns, 'ip', ['addr', 'del', `${address}/32`, 'dev', 'eth0']).catch(() => {});
      this.attached.get(address)?.delete(from);
    }
  }

  /**
   * Changes the router's route for `address` through one long-lived `ip -batch`
   * process: a route change is then a write to a pipe, not a process start,
   * which on a busy machine is the difference between 1 ms and 100 ms inside
   * the measured write pause (a CNI changes routes from a running daemon too).
   */
  private routeVia(address: string, via: string): Promise<void> {
    const change = this.routerQueue.then(async () => {
      const router = this.routerConsole();
      const confirmed = new Promise<void>((resolve, reject) => {
        let seen = '';
        let timer: ReturnType<typeof setTimeout> | undefined = undefined;
        const onData = (chunk: Buffer) => {
          seen += chunk;
          if (seen.split('\n').some(line => line.startsWith(`${address} via ${via} `))) {
            clearTimeout(timer);
            router.stdout!.off('data', onData);
            resolve();
          }
        };
        timer = setTimeout(() => {
          router.stdout!.off('data', onData);
          reject(new Error(`router did not confirm ${address} via ${via}: ${seen}`));
        }, ROUTER_CONFIRM_TIMEOUT_MS);
        router.stdout!.on('data', onData);
      });
      router.stdin!.write(`route replace ${address}/32 via ${via}\nroute get ${address}\n`);
      await confirmed;
    });
    this.routerQueue = change.catch(() => {});
    return change;
  }

  private routerConsole(): ChildProcess {
    if (!this.router || this.router.exitCode !== null) {
      this.router = spawn('ip', ['-n', this.routerNetns, '-force', '-batch', '-'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      this.children.add(this.router);
    }
    return this.router;
  }

  /** Puts a stable address on a host without routing to it (restored sockets bind to it). */
  async attachAddress(address: string, hostName: string): Promise<void> {
    await this.inNetns(this.host(hostName).netns, 'ip', ['addr', 'replace', `${address}/32`, 'dev', 'eth0']);
    if (!this.attached.has(address)) this.attached.set(address, new Set());
    this.attached.get(address)!.add(hostName);
  }

  /**
   * Points a Service address at `hostName`: new connections reach that host,
   * established ones keep their host (conntrack), as behind kube-proxy.
   */
  async forwardService(address: string, hostName: string): Promise<void> {
    const to = this.host(hostName).address;
    const had = this.services.get(address);
    const lines: string[] = [];
    const setUp = !this.natReady;
    if (setUp) {
      lines.push(
        `add table ip ${SERVICE_TABLE}`,
        `add map ip ${SERVICE_TABLE} backends { type ipv4_addr : ipv4_addr; }`,
        `add set ip ${SERVICE_TABLE} gone { type ipv4_addr; }`,
        `add chain ip ${SERVICE_TABLE} service_dnat { type nat hook prerouting priority -100; }`,
        `add rule ip ${SERVICE_TABLE} service_dnat dnat to ip daddr map @backends`,
        // A reclaimed host answers nothing; the router resets connections to it so
        // that clients reconnect at once (through the Service, to wherever it points).
        `add chain ip ${SERVICE_TABLE} reset_gone { type filter hook forward priority 0; }`,
        `add rule ip ${SERVICE_TABLE} reset_gone ip daddr @gone meta l4proto tcp reject with tcp reset`,
      );
    }
    if (had) lines.push(`delete element ip ${SERVICE_TABLE} backends { ${address} }`);
    lines.push(`add element ip ${SERVICE_TABLE} backends { ${address} : ${to} }`);
    await this.nft(lines);
    this.natReady = true;
    this.services.set(address, hostName);
  }

  /** Stops a Service from taking new connections (a fence); established ones stay. */
  async stopService(address: string): Promise<void> {
    if (!this.services.has(address)) return;
    await this.nft([`delete element ip ${SERVICE_TABLE} backends { ${address} }`]);
    this.services.delete(address);
  }

  /** The host a Service points at now. */
  serviceHost(address: string): string | undefined {
    return this.services.get(address);
  }

  private async nft(lines: string[]): Promise<void> {
    const ready = this.spareNft?.child.exitCode === null ? this.spareNft : undefined;
    const { child, stderr } = ready ?? this.startNft();
    this.spareNft = undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (code: number | null) =>
          code === 0 ? resolve() : reject(new Error(`nft in the router: ${stderr.join('')}`));
        if (child.exitCode !== null) done(child.exitCode);
        else child.on('exit', done);
        child.stdin!.end(`${lines.join('\n')}\n`);
      });
    } finally {
      // The next change (a switch's redirect, inside its write pause) finds nft
      // started and waiting, as kube-proxy's rules are one write away, not one
      // fork and two execs (5-60 ms here, with the machine's load).
      if (!this.destroyed) this.spareNft = this.startNft();
    }
  }

  private startNft(): { child: ChildProcess; stderr: string[] } {
    const child = spawn('ip', ['netns', 'exec', this.routerNetns, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const stderr: string[] = [];
    child.stderr!.on('data', d => stderr.push(String(d)));
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return { child, stderr };
  }

  /** Takes a stable address off its host without giving it to another (a fence). */
  async withdrawAddress(address: string): Promise<void> {
    const from = this.floating.get(address);
    if (from && this.hosts.has(from)) {
      await this.inNetns(this.host(from).netns, 'ip', ['addr', 'del', `${address}/32`, 'dev', 'eth0']).catch(() => {});
      this.attached.get(address)?.delete(from);
    }
    await this.inNetns(this.routerNetns, 'ip', ['route', 'del', `${address}/32`]).catch(() => {});
    this.floating.delete(address);
  }

  /** The host a stable address is on now. */
  addressHost(address: string): string | undefined {
    return this.floating.get(address);
  }

  /**
   * Starts a process inside a host, in its own PID namespace as a container's
   * process is; resolves with the process's PID as the root namespace sees it.
   */
  async spawnInHost(
    hostName: string,
    command: string,
    args: string[],
  ): Promise<{ pid: number; child: ChildProcess }> {
    const host = this.host(hostName);
    // setsid: CRIU refuses a tree whose session leader is outside its PID namespace.
    // No --kill-child: it sets a parent-death signal that CRIU restores too, and
    // the restored process would die the moment criu exits.
    const child = spawn(
      'nsenter',
      [`--net=${host.netnsPath}`, 'unshare', '--pid', '--fork', 'setsid', command, ...args],
      // /dev/null, not pipes: CRIU cannot restore a pipe whose other end stays behind.
      { stdio: 'ignore' },
    );
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    const unsharePid = child.pid!;
    for (let i = 0; i < 200; i++) {
      const file = `/proc/${unsharePid}/task/${unsharePid}/children`;
      const kids = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
      if (kids) {
        return { pid: Number(kids.split(/\s+/)[0]), child };
      }
      if (child.exitCode !== null) break;
      await new Promise(r => setTimeout(r, 10));
    }
    throw new Error(`${command} did not start in ${hostName}`);
  }

  /** Starts a long-running helper (no PID namespace), e.g. a node agent. */
  spawnService(hostName: string, command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    const host = this.host(hostName);
    const child = spawn('nsenter', [`--net=${host.netnsPath}`, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Every process in a host's network namespace. */
  async pidsInHost(hostName: string): Promise<number[]> {
    const host = this.hosts.get(hostName);
    if (!host) return [];
    const out = await sh('ip', ['netns', 'pids', host.netns]).catch(() => '');
    return out.split(/\s+/).filter(Boolean).map(Number);
  }

  /** The spot node is reclaimed: every process on it dies and its network is gone. */
  async destroyHost(hostName: string): Promise<void> {
    const host = this.hosts.get(hostName);
    if (!host) return;
    for (const pid of await this.pidsInHost(hostName)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await sh('ip', ['netns', 'del', host.netns]).catch(() => {});
    this.hosts.delete(hostName);
    if (this.natReady && !this.destroyed) {
      await this.nft([`add element ip ${SERVICE_TABLE} gone { ${host.address} }`]).catch(() => {});
    }
    for (const hosts of this.attached.values()) hosts.delete(hostName);
    for (const [address, on] of this.floating) {
      if (on === hostName) this.floating.delete(address);
    }
  }

  /** Removes every namespace, process and route the testbed made. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const name of [...this.hosts.keys()]) {
      await this.destroyHost(name);
    }
    this.router?.stdin?.end();
    this.spareNft = undefined;
    for (const child of this.children) {
      child.kill('SIGKILL');
    }
    await sh('ip', ['route', 'del', `${this.serviceNet}.0/24`]).catch(() => {});
    await sh('ip', ['link', 'del', this.rootVeth]).catch(() => {});
    await sh('ip', ['netns', 'del', this.routerNetns]).catch(() => {});
  }
}

/** Two adjacent /24s that no route on this machine uses yet. */
async function freeSubnets(): Promise<[string, string]> {
  const routes = await sh('ip', ['-4', 'route', 'show', 'table', 'all']);
  const addrs = await sh('ip', ['-4', 'addr', 'show']);
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = 200 + randomBytes(1)[0] % 50;
    const b = (randomBytes(1)[0] % 127) * 2;
    const net = `10.${a}.${b}`;
    const serviceNet = `10.${a}.${b + 1}`;
    if (![net, serviceNet].some(n => routes.includes(`${n}.`) || addrs.includes(`${n}.`))) {
      return [net, serviceNet];
    }
  }
  throw new Error('no free private subnet for the testbed');
}
