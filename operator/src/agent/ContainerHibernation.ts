import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

/**
 * How often a running container's packet counter is read: idle periods are
 * seconds to hours, so a second is fine enough.
 */
const IDLE_TICK_MS = 1_000;
/**
 * How often a hibernated container's held-packet counter is read: this is
 * what a waking client waits on first, before any restore starts.
 */
const HELD_TICK_MS = 50;
/** How often a wake looks for the runtime wrapper's restore. */
const WAKE_POLL_MS = 50;
/** How long a wake may take before the agent says it failed. */
const WAKE_TIMEOUT_MS = 180_000;
/** The nft table that counts and holds a pod's traffic, in the pod's network namespace. */
const TABLE = 'ferry_hibernation';
/**
 * Shared with Ferry's runtime wrapper (operator/runtime/hibernate.go): the
 * records of hibernated containers, the marker of a complete local dump, and
 * the wrapper's outcome of a restore.
 */
const RECORDS_DIR = '.hibernation';
const DUMPED = '.ferry-dumped';
const CONTAINER_RESTORED = '.ferry-container-restored';
const CONTAINER_RESTORE_FAILED = '.ferry-restore-failed';
/**
 * The agent's own state of each watch, beside the images: a restarted agent
 * (a crash, an upgrade of its DaemonSet) takes its watches back from here, and
 * above all the sleeping containers, whose ports it holds and nobody else
 * would ever let through.
 */
const WATCHES_DIR = '.hibernation-watches';
/** The annotations runc's state carries from containerd's CRI. */
const SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';
/** How many open connections a refusal names before it counts the rest. */
const OPEN_CONNECTIONS_SHOWN = 3;
/** ESTABLISHED, as /proc/net/tcp's `st` column writes it. */
const TCP_ESTABLISHED = '01';
const CONTAINER_NAME = 'io.kubernetes.cri.container-name';

/**
 * Where one watched container is: running and counted, being checkpointed,
 * checkpointed with its images kept on this node (its packets held), or being
 * restored because a packet came.
 */
export type AgentHibernationPhase =
  | 'RUNNING'
  | 'HIBERNATING'
  | 'HIBERNATED'
  | 'WAKING';

/** What the agent is asked to watch. */
export interface HibernationRequest {
  /** The container to checkpoint when idle (its id changes at each wake). */
  containerId: string;
  /** The TCP ports whose packets count as traffic, and wake it. */
  ports: number[];
  /** How long it may see no packet on those ports before it is hibernated. */
  idleMs: number;
}

/** What the agent says about one watched container. */
export interface HibernationStatus {
  id: string;
  phase: AgentHibernationPhase;
  containerId: string;
  ports: number[];
  idleMs: number;
  /** Packets counted on the ports since watching began. */
  packets: number;
  /** How long since the last packet, as of this answer. */
  idleForMs: number;
  /** Checkpoints taken, and restores done. */
  hibernations: number;
  restores: number;
  /** The last checkpoint's dump time. */
  dumpMs?: number;
  /** The last wake: from the first held packet seen to the container restored, and the restore alone. */
  wakeMs?: number;
  restoreMs?: number;
  /** Bytes of the images kept on this node while hibernated. */
  imageBytes?: number;
  /** Why the idle container is kept awake, in a sentence (open connections to other services). */
  refusal?: string;
  /** The last failure, in words. */
  error?: string;
}

/** What a hibernation needs of its agent. */
export interface HibernationHost {
  imagesDir: string;
  /** Runs the node's runc (with its root); resolves with stdout. */
  runc(
    args: string[],
    env?: Record<string, string>,
    log?: string,
  ): Promise<string>;
  /** The CRIU configuration a container checkpoint runs with. */
  criuConfiguration(): Promise<string>;
  log(message: string): void;
}

/**
 * One container the agent hibernates when idle and wakes on traffic, in place
 * on this node: the pod and its address stay, only the process goes.
 *
 * Traffic is counted by an nft counter on the container's ports in the pod's
 * network namespace (the sandbox's, which outlives every container of the
 * pod). After `idleMs` without a packet the agent writes a hibernation record
 * for Ferry's runtime wrapper, starts holding the ports' packets (dropped and
 * counted: a client's SYN is retransmitted, never answered with a reset), and
 * checkpoints the container with `runc checkpoint`, which ends it; the
 * kubelet creates it again, and the wrapper makes that a holder with no
 * memory. The first held packet wakes it: the record turns `waking`, the
 * holder is killed, the kubelet creates the container once more and the
 * wrapper restores it from the kept images. Once it is restored the ports are
 * let through and the client's next retransmission is answered.
 */
export class ContainerHibernation {
  private phase: AgentHibernationPhase = 'RUNNING';
  private packets = 0;
  private lastPacketAt = Date.now();
  private hibernations = 0;
  private restores = 0;
  private dumpMs?: number;
  private wakeMs?: number;
  private restoreMs?: number;
  private imageBytes?: number;
  private error?: string;
  private refusal?: string;
  private timer?: NodeJS.Timeout;
  private busy = false;
  private stopped = false;
  private netns = '';
  /** The pod's TCP tables (its sandbox's network namespace, through /proc). */
  private tcpTables: string[] = [];
  private recordPath = '';
  private image = '';
  private sandbox = '';
  private containerName = '';

  constructor(
    readonly id: string,
    private request: HibernationRequest,
    private readonly host: HibernationHost,
  ) {}

  /** Installs the counters and starts watching. */
  async start(): Promise<void> {
    await this.locate(this.request.containerId);
    await this.nft(this.tableRules());
    this.lastPacketAt = Date.now();
    await this.persist();
    this.schedule();
  }

  /**
   * The watches a previous agent on this node left, taken back. A sleeping
   * container stays asleep, its ports still held by the table in its pod's
   * network namespace (which never depended on the agent), and packets held
   * meanwhile wake it at once. One caught mid-wake is woken again: the wake
   * is idempotent. One caught mid-dump is asleep if its dump completed, and
   * else serving, as a failed dump leaves it.
   */
  static async resumeAll(
    host: HibernationHost,
  ): Promise<ContainerHibernation[]> {
    const dir = join(host.imagesDir, WATCHES_DIR);
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const resumed: ContainerHibernation[] = [];
    for (const name of names.filter(n => n.endsWith('.json'))) {
      const saved = await readJson(join(dir, name));
      if (!saved) continue;
      const watch = new ContainerHibernation(
        String(saved.id),
        saved.request as HibernationRequest,
        host,
      );
      try {
        await watch.resume(saved);
        resumed.push(watch);
      } catch (error) {
        host.log(
          `could not take back the watch ${saved.id}: ${
            (error as Error).message
          }`,
        );
      }
    }
    return resumed;
  }

  private async resume(saved: Record<string, unknown>): Promise<void> {
    this.sandbox = String(saved.sandbox);
    this.containerName = String(saved.containerName);
    this.image = String(saved.image ?? '');
    this.hibernations = Number(saved.hibernations ?? 0);
    this.restores = Number(saved.restores ?? 0);
    this.dumpMs = saved.dumpMs as number | undefined;
    this.imageBytes = saved.imageBytes as number | undefined;
    await this.locateSandbox(this.sandbox, this.containerName);
    const dumped =
      this.image !== '' &&
      existsSync(join(this.host.imagesDir, this.image, DUMPED));
    const phase = saved.phase as AgentHibernationPhase;
    if (phase === 'HIBERNATED' || phase === 'WAKING') {
      this.phase = 'HIBERNATED';
      // Its packets have been held all along: the counter says whether one came.
      this.packets = (await this.counters()).traffic;
    } else if (phase === 'HIBERNATING' && dumped) {
      this.hibernations += 1;
      this.phase = 'HIBERNATED';
      this.packets = (await this.counters()).traffic;
    } else {
      if (phase === 'HIBERNATING') {
        await fs.rm(this.recordPath, { force: true });
      }
      await this.nft(this.tableRules());
      this.phase = 'RUNNING';
    }
    this.lastPacketAt = Date.now();
    await this.persist();
    this.host.log(`took back the watch ${this.id}, ${this.phase}`);
    this.schedule();
  }

  /** Writes what a restarted agent needs to take this watch back. */
  private async persist(): Promise<void> {
    const dir = join(this.host.imagesDir, WATCHES_DIR);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeJson(join(dir, `${this.id}.json`), {
      id: this.id,
      request: this.request,
      phase: this.phase,
      image: this.image,
      sandbox: this.sandbox,
      containerName: this.containerName,
      hibernations: this.hibernations,
      restores: this.restores,
      dumpMs: this.dumpMs,
      imageBytes: this.imageBytes,
    });
  }

  /** Takes a new idle period or ports; the container it watches stays the agent's own knowledge. */
  update(request: HibernationRequest): void {
    this.request = { ...request, containerId: this.request.containerId };
  }

  status(): HibernationStatus {
    return {
      id: this.id,
      phase: this.phase,
      containerId: this.request.containerId,
      ports: this.request.ports,
      idleMs: this.request.idleMs,
      packets: this.packets,
      idleForMs: Date.now() - this.lastPacketAt,
      hibernations: this.hibernations,
      restores: this.restores,
      dumpMs: this.dumpMs,
      wakeMs: this.wakeMs,
      restoreMs: this.restoreMs,
      imageBytes: this.imageBytes,
      refusal: this.refusal,
      error: this.error,
    };
  }

  /** Wakes a hibernated container now (its owner opted out, say); resolves once it runs. */
  async wake(): Promise<void> {
    if (this.phase === 'HIBERNATED') await this.exclusive(() => this.restore());
  }

  /** Stops watching a running container and removes the counters. Refused while it sleeps. */
  async stop(): Promise<void> {
    if (this.phase !== 'RUNNING') {
      throw new Error(
        `${this.id} is ${this.phase}; wake it before it stops being watched`,
      );
    }
    this.stopped = true;
    clearTimeout(this.timer);
    await this.nft(`delete table inet ${TABLE}`).catch(() => {});
    await fs.rm(join(this.host.imagesDir, WATCHES_DIR, `${this.id}.json`), {
      force: true,
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.phase === 'HIBERNATED' ? HELD_TICK_MS : IDLE_TICK_MS;
    this.timer = setTimeout(() => {
      this.tick()
        .catch(error => {
          this.error = String(error?.message ?? error);
          this.host.log(`hibernation ${this.id}: ${this.error}`);
        })
        .finally(() => this.schedule());
    }, delay);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    const counters = await this.counters();
    if (counters.traffic !== this.packets) {
      this.packets = counters.traffic;
      this.lastPacketAt = Date.now();
    }
    if (this.phase === 'HIBERNATED' && counters.held > 0) {
      await this.exclusive(() => this.restore());
    } else if (
      this.phase === 'RUNNING' &&
      Date.now() - this.lastPacketAt >= this.request.idleMs
    ) {
      // Looked at each tick while idle: it sleeps as soon as they close.
      this.refusal = await this.openConnectionsRefusal();
      if (!this.refusal) await this.exclusive(() => this.hibernate());
    }
  }

  /**
   * Why the container must stay awake though idle: connections it opened to
   * other services (a replica's link to its primary, a pool of database
   * connections). Checkpointed, it would answer nothing on them; the other
   * side times them out (a primary drops a silent replica, a server its idle
   * clients), and the woken process finds them reset. Connections on its own
   * ports are its clients', and a client's packet wakes it.
   */
  private async openConnectionsRefusal(): Promise<string | undefined> {
    const tables = await Promise.all(
      this.tcpTables.map(path => fs.readFile(path, 'utf8').catch(() => '')),
    );
    const peers = outboundConnections(tables.join('\n'), this.request.ports);
    if (peers.length === 0) return undefined;
    const shown = peers.slice(0, OPEN_CONNECTIONS_SHOWN).join(', ');
    const more =
      peers.length > OPEN_CONNECTIONS_SHOWN
        ? ` and ${peers.length - OPEN_CONNECTIONS_SHOWN} more`
        : '';
    return `it holds open connections to other services (${shown}${more}), which would time out while it sleeps; it hibernates once they are closed`;
  }

  private async exclusive(fn: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await fn();
    } finally {
      this.busy = false;
    }
  }

  /** Finds the pod's network namespace and the wrapper's record path from the container's runc state. */
  private async locate(containerId: string): Promise<void> {
    const state = JSON.parse(await this.host.runc(['state', containerId])) as {
      annotations?: Record<string, string>;
    };
    const sandbox = state.annotations?.[SANDBOX_ID];
    const name = state.annotations?.[CONTAINER_NAME];
    if (!sandbox || !name) {
      throw new Error(
        `container ${containerId} carries no ${SANDBOX_ID} and ${CONTAINER_NAME}: it is not a Kubernetes container`,
      );
    }
    await this.locateSandbox(sandbox, name);
  }

  /** The pod's network namespace (its sandbox's) and the wrapper's record path. */
  private async locateSandbox(sandbox: string, name: string): Promise<void> {
    const pause = JSON.parse(await this.host.runc(['state', sandbox])) as {
      pid: number;
    };
    this.sandbox = sandbox;
    this.containerName = name;
    this.netns = `/proc/${pause.pid}/ns/net`;
    this.tcpTables = [
      `/proc/${pause.pid}/net/tcp`,
      `/proc/${pause.pid}/net/tcp6`,
    ];
    this.recordPath = join(
      this.host.imagesDir,
      RECORDS_DIR,
      `${sandbox}.${name}.json`,
    );
  }

  private async hibernate(): Promise<void> {
    this.phase = 'HIBERNATING';
    this.error = undefined;
    this.image = `${this.id}-${this.hibernations + 1}`;
    await this.persist();
    const dir = join(this.host.imagesDir, this.image);
    const work = `${dir}.work`;
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(work, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.mkdir(work, { recursive: true, mode: 0o700 });
    await fs.mkdir(join(this.host.imagesDir, RECORDS_DIR), {
      recursive: true,
      mode: 0o700,
    });
    // Written before the container ends: the kubelet creates it again at once,
    // and the wrapper must find the record then.
    await writeJson(this.recordPath, {
      image: this.image,
      phase: 'hibernating',
    });
    // Held from before the dump: a packet after the process is gone and before
    // the hold would meet a closed port and be reset.
    await this.nft(
      [
        `reset counter inet ${TABLE} held`,
        `add rule inet ${TABLE} hold ${this.fromClients()} tcp dport { ${this.request.ports.join(
          ', ',
        )} } counter name held drop`,
      ].join('\n'),
    );
    const config = join(work, 'criu.conf');
    await fs.writeFile(config, await this.host.criuConfiguration());
    const started = Date.now();
    try {
      await this.host.runc(
        [
          'checkpoint',
          '--image-path',
          dir,
          '--work-path',
          work,
          this.request.containerId,
        ],
        { CRIU_CONFIG_FILE: config },
        join(work, 'dump.log'),
      );
    } catch (error) {
      // A failed dump leaves the container running: it serves on, and is
      // given a whole idle period before the next try.
      await fs.rm(this.recordPath, { force: true });
      await this.nft(`flush chain inet ${TABLE} hold`).catch(() => {});
      this.phase = 'RUNNING';
      this.lastPacketAt = Date.now();
      await this.persist();
      throw error;
    }
    this.dumpMs = Date.now() - started;
    await fs.writeFile(join(dir, DUMPED), 'local');
    await fs.rm(work, { recursive: true, force: true });
    this.imageBytes = await directoryBytes(dir);
    this.hibernations += 1;
    this.phase = 'HIBERNATED';
    await this.persist();
    this.host.log(
      `hibernated ${this.id} (${this.request.containerId}): dump ${this.dumpMs} ms, ${this.imageBytes} bytes kept`,
    );
  }

  private async restore(): Promise<void> {
    this.phase = 'WAKING';
    await this.persist();
    const heldSince = Date.now();
    const dir = join(this.host.imagesDir, this.image);
    const deadline = heldSince + WAKE_TIMEOUT_MS;
    let restored: { containerId: string; restoreMs?: number } | undefined;
    while (!restored) {
      if (Date.now() > deadline) {
        this.phase = 'HIBERNATED';
        throw new Error(
          `${this.id} was not restored within ${WAKE_TIMEOUT_MS} ms of its first held packet`,
        );
      }
      const failed = await fs
        .readFile(join(dir, CONTAINER_RESTORE_FAILED), 'utf8')
        .catch(() => undefined);
      if (failed !== undefined) {
        // The kubelet's next create finds no record and starts the container
        // fresh: the memory is lost, and the ports must answer again.
        await this.nft(`flush chain inet ${TABLE} hold`).catch(() => {});
        this.phase = 'RUNNING';
        await this.persist();
        throw new Error(`restoring ${this.id} failed: ${failed}`);
      }
      restored = await fs
        .readFile(join(dir, CONTAINER_RESTORED), 'utf8')
        .then(text => JSON.parse(text))
        .catch(() => undefined);
      if (restored) break;
      // The record turns waking (again, if the wrapper wrote its holder over
      // it meanwhile) and the holder is killed, so the kubelet creates anew.
      const record = await readJson(this.recordPath);
      if (record && record.phase !== 'waking') {
        await writeJson(this.recordPath, { ...record, phase: 'waking' });
      }
      if (record?.holder) {
        await this.host
          .runc(['kill', String(record.holder), 'KILL'])
          .catch(() => {});
      }
      await sleep(WAKE_POLL_MS);
    }
    // Only now: the restored process listens, so a retransmitted SYN is answered.
    await this.nft(`flush chain inet ${TABLE} hold`);
    this.wakeMs = Date.now() - heldSince;
    this.restoreMs = restored.restoreMs;
    this.restores += 1;
    this.request = { ...this.request, containerId: restored.containerId };
    this.lastPacketAt = Date.now();
    this.phase = 'RUNNING';
    // The images hold the process's memory, secrets included: gone once used.
    await fs.rm(dir, { recursive: true, force: true });
    this.imageBytes = undefined;
    await this.persist();
    this.host.log(
      `woke ${this.id} as ${restored.containerId}: ${this.wakeMs} ms from the first held packet (restore ${this.restoreMs} ms)`,
    );
  }

  /**
   * Packets from this node itself are not clients: the kubelet's TCP probes
   * come from the node (its address on the pod bridge, or its own), and
   * counted they would keep a store awake for ever, or wake it at every probe.
   * The agent runs in the node's network namespace, so its addresses are the node's.
   */
  private fromClients(): string {
    const own = Object.values(networkInterfaces())
      .flatMap(addresses => addresses ?? [])
      .filter(a => a.family === 'IPv4')
      .map(a => a.address);
    return own.length ? `ip saddr != { ${own.join(', ')} }` : '';
  }

  private tableRules(): string {
    const ports = this.request.ports.join(', ');
    return [
      // Re-created whole, so a restarted agent starts from a known table.
      `table inet ${TABLE} {}`,
      `delete table inet ${TABLE}`,
      `table inet ${TABLE} {`,
      '  counter traffic {}',
      '  counter held {}',
      '  chain count { type filter hook input priority -20; policy accept;',
      `    ${this.fromClients()} tcp dport { ${ports} } counter name traffic`,
      '  }',
      // After the count: held packets are traffic too.
      '  chain hold { type filter hook input priority -19; policy accept; }',
      '}',
    ].join('\n');
  }

  private async counters(): Promise<{ traffic: number; held: number }> {
    const out = await this.nftOut([
      '-j',
      'list',
      'counters',
      'table',
      'inet',
      TABLE,
    ]);
    const counts = { traffic: 0, held: 0 };
    for (const item of JSON.parse(out).nftables ?? []) {
      const counter = item.counter;
      if (counter?.name === 'traffic' || counter?.name === 'held') {
        counts[counter.name as 'traffic' | 'held'] = Number(counter.packets);
      }
    }
    return counts;
  }

  private nft(rules: string): Promise<string> {
    return this.nftOut(['-f', '-'], rules);
  }

  /** Runs nft in the pod's network namespace. */
  private nftOut(args: string[], input = ''): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        'nsenter',
        [`--net=${this.netns}`, '--', 'nft', ...args],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', c => (stdout += c));
      child.stderr.on('data', c => (stderr += c));
      child.on('error', reject);
      // nft exits without reading when it has nothing to read: its stdin's
      // EPIPE is not the failure, the exit status says what was.
      child.stdin.on('error', () => {});
      child.on('close', code =>
        code === 0
          ? resolve(stdout)
          : reject(
              new Error(
                `nft ${args.join(' ')} in ${
                  this.netns
                } exited ${code}: ${stderr.trim()}`,
              ),
            ),
      );
      child.stdin.end(input);
    });
  }
}

/**
 * The peers (`address:port`) of the established connections in a network
 * namespace's TCP tables (/proc/<pid>/net/tcp and tcp6, concatenated) that
 * were opened from it to another service: neither on one of `ports` (those
 * are its clients') nor within the pod (loopback).
 */
export function outboundConnections(tables: string, ports: number[]): string[] {
  const peers = new Set<string>();
  for (const line of tables.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st ...; the header's `st` is not a state.
    if (fields.length < 4 || fields[3] !== TCP_ESTABLISHED) continue;
    const local = procAddress(fields[1]);
    const remote = procAddress(fields[2]);
    if (!local || !remote) continue;
    if (ports.includes(local.port)) continue;
    if (isLoopback(remote.address)) continue;
    peers.add(
      remote.address.includes(':')
        ? `[${remote.address}]:${remote.port}`
        : `${remote.address}:${remote.port}`,
    );
  }
  return [...peers];
}

/**
 * An address of /proc/net/tcp (`0100007F:1F90`: the address in the kernel's
 * byte order, 32 bits at a time, then the port) or tcp6 (32 hex digits);
 * IPv4-mapped IPv6 addresses read as IPv4.
 */
function procAddress(
  field: string,
): { address: string; port: number } | undefined {
  const [hex, port] = field.split(':');
  if (!hex || !port || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const words = hex.match(/.{8}/g) ?? [];
  if (words.length !== 1 && words.length !== 4) return undefined;
  // Each 32-bit word is written as the host (little-endian) reads it.
  const bytes = words.flatMap(word =>
    (word.match(/../g) ?? []).reverse().map(b => parseInt(b, 16)),
  );
  const mapped =
    bytes.length === 16 &&
    bytes.slice(0, 10).every(b => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff;
  const address =
    bytes.length === 4 || mapped
      ? bytes.slice(-4).join('.')
      : Array.from({ length: 8 }, (_, i) =>
          ((bytes[2 * i] << 8) | bytes[2 * i + 1]).toString(16),
        ).join(':');
  return { address, port: parseInt(port, 16) };
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '0:0:0:0:0:0:0:1';
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await fs.writeFile(`${path}.tmp`, JSON.stringify(value), { mode: 0o600 });
  await fs.rename(`${path}.tmp`, path);
}

async function readJson(
  path: string,
): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) return undefined;
  return fs
    .readFile(path, 'utf8')
    .then(text => JSON.parse(text))
    .catch(() => undefined);
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) {
    total += (await fs.stat(join(dir, name))).size;
  }
  return total;
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
