import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  promises as fs,
  readdirSync,
  readFileSync,
} from 'node:fs';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import net, { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import {
  ContainerHibernation,
  HibernationRequest,
} from './ContainerHibernation';

/** Longest a dump, a stream or a restore may take before the agent gives up on it. */
export const AGENT_OPERATION_TIMEOUT_MS = 5 * 60_000;
/** Image ids are names of directories; nothing else is accepted. */
const IMAGE_ID = /^[a-z0-9][a-z0-9.-]{0,120}$/;
/** Markers written into an image directory as it passes each stage. */
const DUMPED = '.ferry-dumped';
const RECEIVED = '.ferry-received';
const RESTORED = '.ferry-restored';
/**
 * Written by Ferry's runtime wrapper (operator/runtime) into an image directory
 * when it restored a container from it, or failed to.
 */
const CONTAINER_RESTORED = '.ferry-container-restored';
const CONTAINER_RESTORE_FAILED = '.ferry-restore-failed';
/**
 * While a dump sends its pages to the target's page server, the target's agent
 * is dialled this often; when none of the dials for TARGET_SILENCE_TIMEOUT_MS
 * gets through (the target node or the link to it is down), the page server's
 * connection is reset, so CRIU fails the dump and lets the container go,
 * rather than wait out TCP's retries (15 minutes) with the source paused.
 */
const TARGET_PROBE_MS = 2_000;
const TARGET_SILENCE_TIMEOUT_MS = 15_000;
/** How long a stream of images to the target may go without a byte moving. */
const STREAM_IDLE_TIMEOUT_MS = 30_000;
/** How long a retired container may take to stop, and how often it is looked at meanwhile. */
const RETIRE_TIMEOUT_MS = 30_000;
/** How long a resume waits for a dump of the container still running to end. */
const DUMP_END_WAIT_MS = 60_000;
const RETIRE_POLL_MS = 100;
/** A container id as containerd and CRI-O make them (runc accepts more; the agent does not). */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/**
 * What runc cannot tell CRIU, written into a CRIU configuration file: the pod
 * gets a new address on the target node, so established connections are dumped
 * and restored closed (clients reconnect through the Service).
 */
const CONTAINER_CRIU_OPTIONS = ['tcp-close'];
/** Open files of a process that no checkpoint can carry, with the reason a person reads. */
const UNMOVABLE_FILES: [RegExp, string][] = [
  [
    /^anon_inode:\[io_uring\]$/,
    'an io_uring instance (CRIU cannot dump io_uring)',
  ],
  [
    /^\/dev\/(nvidia|dri|kfd|vfio|infiniband|fuse)/,
    'a device (GPUs, VFIO, FUSE and the like cannot be checkpointed)',
  ],
];
/**
 * CRIU locks established connections while it works so peers retransmit instead
 * of being reset; through libnftables, because nodes need not have iptables.
 */
const NETWORK_LOCK = ['--network-lock', 'nftables'];
/**
 * How often the agent pushes out what CRIU's corked page-server socket holds
 * back (see {@link NodeAgent.checkpoint}).
 */
const CORK_PUSH_INTERVAL_MS = 5;
const ICMP_RATELIMIT = '/proc/sys/net/ipv4/icmp_ratelimit';
/**
 * In the images directory (not an image's, which a retried dump wipes): the
 * ICMP rate limit from before the first of the freezes this agent answers for,
 * and one marker per freeze, so the value is put back once the last one ends,
 * even across an agent restart.
 */
const ICMP_RATELIMIT_SAVED = '.icmp-ratelimit-before-freezes';
const ANSWERING = (id: string) => `.answering-${id}`;
/**
 * In the images directory: when the agent first paused a container for image
 * `id`. A retried dump wipes the image's own directory, but the freeze began at
 * the first pause, and an operator that restarted meanwhile learns it here.
 */
const PAUSED_AT = (id: string) => `.paused-at-${id}`;
/** How long the dump of an image took, kept beside it for whoever asks again. */
const DUMP_MS = '.ferry-dump-ms';
/**
 * The lazy route (post-copy). On the target, this marker holds the source's page
 * server (`<host>:<port>`): the runtime wrapper restores with `--lazy-pages`
 * against the `criu lazy-pages` daemon the agent started, whose work directory
 * (and socket) is LAZY_WORK. On the source, LAZY_COPY_ENDED says how the copy of
 * the pages ended (`ok`, or why not); until then the paused source holds them.
 */
const LAZY = '.ferry-lazy';
const LAZY_WORK = 'lazy-work';
const LAZY_COPY_ENDED = '.ferry-lazy-copy-ended';
/**
 * CRIU's lazy page server grows a helper pipe to about 3.3 MB; above
 * `fs.pipe-max-size` the kernel refuses it without CAP_SYS_RESOURCE and the dump
 * fails with a stale EPERM (../shared/NOTES.md). Root may raise the limit.
 */
const PIPE_MAX_SIZE = 4 * 1024 * 1024;
const PIPE_MAX_SIZE_FILE = '/proc/sys/fs/pipe-max-size';

/** What the node agent needs. */
export interface NodeAgentOptions {
  /** The node this agent runs on (reported, and used in logs). */
  node: string;
  /** The CRIU command line, e.g. a private loader, its --library-path and the criu binary. */
  criu: string[];
  /** Where images live: a tmpfs, so checkpoints never reach a disk. */
  imagesDir: string;
  host?: string;
  port?: number;
  /** Bearer token every request must carry; agents and the operator share it. */
  token: string;
  /** Serves HTTPS when set, so images (which hold the process's secrets) are encrypted in transit. */
  tls?: SecureContextOptions & { ca?: string | Buffer };
  /**
   * PEM files for CRIU's own TLS between the dump and the page server (the
   * memory pages' path); when set, both sides run with `--tls`.
   */
  criuTls?: { caFile: string; certFile: string; keyFile: string };
  /**
   * The node's runc and the root it keeps containers' state in (containerd's
   * runc shim for Kubernetes: `/run/containerd/runc/k8s.io`): containers are
   * checkpointed with `runc checkpoint`, which knows their mounts and
   * namespaces, and restored by Ferry's runtime wrapper on the target node.
   */
  runc?: { command: string[]; root: string };
  /** A CRIU configuration file with the node's own settings (e.g. `network-lock nftables`). */
  criuConfigFile?: string;
  log?: (message: string) => void;
}

/** What the source agent finds about a container before anything is touched. */
export interface ContainerInspection {
  containerId: string;
  /** runc's status: running, paused, created, stopped. */
  status: string;
  /** The container's init process on this node. */
  pid: number;
  /** Why the container cannot be checkpointed; empty when it can. */
  refusals: string[];
  /** The resident memory of its processes: about what its checkpoint images hold. */
  memoryBytes: number;
}

/** Timings and sizes of one checkpoint, as the source agent reports them. */
export interface CheckpointReport {
  id: string;
  dumpMs: number;
  streamMs: number;
  bytes: number;
  /**
   * Lazy route: the images went without the memory pages, which the paused source
   * serves until the target has them all (the image's `lazyCopy` says when);
   * `bytes` counts those pages as the processes' resident memory at the pause.
   */
  lazy?: boolean;
}

/** Outcome of a restore, as the target agent reports it. */
export interface RestoreReport {
  id: string;
  restoreMs: number;
  pid: number;
}

/**
 * Ferry's per-node agent (a privileged DaemonSet on a cluster): dumps a process
 * tree with CRIU, streams the images to the target node's agent, restores there.
 *
 * Every operation is idempotent by image id, so an operator that restarts can
 * ask again: a finished dump is not redone, a received image is not re-sent, a
 * live restored process is reported instead of restored twice.
 */
export class NodeAgent {
  private server?: http.Server;
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Containers watched for idleness, by the id the operator gave. */
  private readonly hibernations = new Map<string, ContainerHibernation>();

  constructor(private readonly options: NodeAgentOptions) {}

  /** Starts listening; resolves with the port. */
  async start(): Promise<number> {
    await fs.mkdir(this.options.imagesDir, { recursive: true, mode: 0o700 });
    await this.raisePipeMaxSize();
    for (const watch of await ContainerHibernation.resumeAll(
      this.hibernationHost(),
    )) {
      this.hibernations.set(watch.id, watch);
    }
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(error =>
        reply(res, 500, { error: String(error?.message ?? error) }),
      );
    };
    this.server = this.options.tls
      ? https.createServer({ ...this.options.tls, requestCert: false }, handler)
      : http.createServer(handler);
    await new Promise<void>(resolve =>
      this.server!.listen(
        this.options.port ?? 0,
        this.options.host ?? '0.0.0.0',
        resolve,
      ),
    );
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening. */
  async stop(): Promise<void> {
    await new Promise(resolve => this.server?.close(resolve));
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    if (!this.authorised(req)) {
      req.resume();
      reply(res, 401, { error: 'missing or wrong bearer token' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter(Boolean);
    const id = parts[2];
    if (parts[0] !== 'v1') {
      reply(res, 404, { error: 'not found' });
      return;
    }
    if (req.method === 'GET' && parts[1] === 'health') {
      reply(res, 200, {
        node: this.options.node,
        criu: await this.criuVersion(),
        imagesFreeBytes: await freeBytes(this.options.imagesDir),
      });
      return;
    }
    if (id !== undefined && !IMAGE_ID.test(id)) {
      req.resume();
      reply(res, 400, { error: `image id '${id}' must match ${IMAGE_ID}` });
      return;
    }
    if (req.method === 'POST' && parts[1] === 'containers' && id && parts[3]) {
      const body = await readJson(req);
      const containerId = String(body.containerId ?? '');
      if (!CONTAINER_ID.test(containerId)) {
        reply(res, 400, {
          error: `container id '${containerId}' must match ${CONTAINER_ID}`,
        });
        return;
      }
      if (parts[3] === 'inspect') {
        reply(res, 200, await this.inspectContainer(containerId));
      } else if (parts[3] === 'resume') {
        reply(res, 200, await this.resumeContainer(containerId));
      } else if (parts[3] === 'retire') {
        reply(res, 200, await this.retireContainer(containerId));
      } else {
        reply(res, 404, { error: 'not found' });
      }
      return;
    }
    if (parts[1] === 'hibernations' && id) {
      await this.handleHibernation(req, res, id, parts[3]);
      return;
    }
    if (req.method === 'POST' && parts[1] === 'checkpoints' && id) {
      const body = await readJson(req);
      if (body.containerId !== undefined) {
        const containerId = String(body.containerId);
        if (!CONTAINER_ID.test(containerId)) {
          reply(res, 400, {
            error: `container id '${containerId}' must match ${CONTAINER_ID}`,
          });
          return;
        }
        const port =
          body.pageServerPort === undefined
            ? undefined
            : Number(body.pageServerPort);
        // The lazy route's page server listens on the address the operator
        // reached this agent at: the node's, which the target can reach too.
        const report = await this.once(`checkpoint:${id}`, () =>
          body.lazy === true
            ? this.checkpointContainerLazily(
                id,
                containerId,
                String(body.targetUrl),
                req.socket.localAddress ?? '',
              )
            : this.checkpointContainer(
                id,
                containerId,
                String(body.targetUrl),
                port,
              ),
        );
        reply(res, 200, report);
        return;
      }
      const pageServerPort =
        body.pageServerPort === undefined
          ? undefined
          : Number(body.pageServerPort);
      const address =
        typeof body.address === 'string' && net.isIP(body.address)
          ? body.address
          : undefined;
      const report = await this.once(`checkpoint:${id}`, () =>
        this.checkpoint(
          id,
          Number(body.pid),
          String(body.targetUrl),
          pageServerPort,
          address,
        ),
      );
      reply(res, 200, report);
      return;
    }
    if (req.method === 'POST' && parts[1] === 'page-servers' && id) {
      req.resume();
      reply(
        res,
        200,
        await this.once(`page-server:${id}`, () => this.startPageServer(id)),
      );
      return;
    }
    if (req.method === 'PUT' && parts[1] === 'images' && id) {
      reply(
        res,
        200,
        await this.receive(
          id,
          req,
          url.searchParams.get('merge') === '1',
          url.searchParams.get('lazy') ?? undefined,
        ),
      );
      return;
    }
    if (req.method === 'GET' && parts[1] === 'images' && id) {
      reply(res, 200, await this.describe(id));
      return;
    }
    if (req.method === 'DELETE' && parts[1] === 'images' && id) {
      await this.stopAnsweringForFrozen(id);
      // A lazy move's target keeps CRIU's lazy-pages daemon until every page
      // arrived; a move given up before that leaves it waiting on a page server
      // that is gone. Its images go, so it goes too.
      stopLazyPagesDaemons(this.dir(id));
      await fs.rm(this.dir(id), { recursive: true, force: true });
      // A dump that failed leaves its work directory (CRIU's log and
      // configuration), which only a successful one removes at once.
      await fs.rm(`${this.dir(id)}.work`, { recursive: true, force: true });
      await fs.rm(join(this.options.imagesDir, PAUSED_AT(id)), { force: true });
      reply(res, 200, { id, deleted: true });
      return;
    }
    if (req.method === 'POST' && parts[1] === 'restores' && id) {
      req.resume();
      reply(res, 200, await this.once(`restore:${id}`, () => this.restore(id)));
      return;
    }
    req.resume();
    reply(res, 404, { error: 'not found' });
  }

  /**
   * Hibernation in place (see {@link ContainerHibernation}): `PUT` watches a
   * container (or changes its idle period), `GET` says where it is, `POST
   * …/wake` wakes it now, `DELETE` stops watching a running one.
   */
  private async handleHibernation(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    action?: string,
  ): Promise<void> {
    const watched = this.hibernations.get(id);
    if (req.method === 'PUT' && !action) {
      const request = hibernationRequest(await readJson(req));
      if (typeof request === 'string') {
        reply(res, 400, { error: request });
        return;
      }
      if (watched) {
        watched.update(request);
        reply(res, 200, watched.status());
        return;
      }
      const hibernation = new ContainerHibernation(
        id,
        request,
        this.hibernationHost(),
      );
      await hibernation.start();
      this.hibernations.set(id, hibernation);
      reply(res, 200, hibernation.status());
      return;
    }
    req.resume();
    if (!watched) {
      reply(res, 404, {
        error: `${id} is not watched on ${this.options.node}`,
      });
    } else if (req.method === 'GET' && !action) {
      reply(res, 200, watched.status());
    } else if (req.method === 'POST' && action === 'wake') {
      await watched.wake();
      reply(res, 200, watched.status());
    } else if (req.method === 'DELETE' && !action) {
      await watched.stop();
      this.hibernations.delete(id);
      reply(res, 200, { id, watched: false });
    } else {
      reply(res, 404, { error: 'not found' });
    }
  }

  private hibernationHost() {
    return {
      imagesDir: this.options.imagesDir,
      runc: (args: string[], env?: Record<string, string>, log?: string) =>
        this.runc(args, env, log),
      criuConfiguration: () => this.criuConfiguration(),
      log: (message: string) => this.log(message),
    };
  }

  /**
   * Dumps `pid`'s tree (once) and gets the images to the target agent. With a
   * page server on the target, memory pages go straight over the link while
   * the dump runs and only the small remaining images follow; without one, the
   * whole directory is dumped here and streamed after, and stays here too, so
   * that a failed move can be restored on this node.
   */
  private async checkpoint(
    id: string,
    pid: number,
    targetUrl: string,
    pageServerPort?: number,
    address?: string,
  ): Promise<CheckpointReport> {
    const dir = this.dir(id);
    // Asked again after the dump (a resumed move), the dump's own time, not none.
    let dumpMs = await recordedDumpMs(dir);
    if (!existsSync(join(dir, DUMPED))) {
      if (!Number.isInteger(pid) || pid <= 1) {
        throw new Error(`pid ${pid} is not a process the agent may dump`);
      }
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const pageServerHost = new URL(targetUrl).hostname;
      // CRIU corks its page-server socket and never uncorks it, so its last command
      // waits out TCP_CORK's 200 ms ceiling before the page server sees it: 200 ms of
      // every freeze (30% of a 100 MiB one). So, without CRIU's TLS (which CRIU only
      // sets up on a socket it opened), the agent opens the socket, hands it to CRIU
      // and pushes its queue every few milliseconds while the dump runs.
      const ownSocket =
        pageServerPort !== undefined && !this.options.criuTls
          ? await connectWithoutReading(pageServerHost, pageServerPort)
          : undefined;
      let pageServer: string[] = [];
      if (ownSocket) {
        pageServer = ['--page-server', '--ps-socket', '0'];
      } else if (pageServerPort !== undefined) {
        pageServer = [
          '--page-server',
          '--address',
          pageServerHost,
          '--port',
          String(pageServerPort),
          ...this.criuTlsArgs(),
        ];
      }
      const started = Date.now();
      if (address) await this.answerForFrozen(id, address);
      // Stop-and-copy: the kernel here has no soft-dirty tracking for pre-dumps and
      // lazy pages need userfaultfd on a pipe, so the freeze starts now.
      const push = ownSocket
        ? setInterval(
            () => ownSocket.setNoDelay(false).setNoDelay(true),
            CORK_PUSH_INTERVAL_MS,
          )
        : undefined;
      try {
        await this.criu(
          [
            'dump',
            '-t',
            String(pid),
            '-D',
            dir,
            '--tcp-established',
            ...NETWORK_LOCK,
            ...pageServer,
            '-o',
            'dump.log',
          ],
          dir,
          ownSocket,
        );
      } catch (error) {
        // CRIU lets the tree run on after a failed dump: it must be reachable again.
        await this.stopAnsweringForFrozen(id);
        throw error;
      } finally {
        clearInterval(push);
        ownSocket?.destroy();
      }
      dumpMs = Date.now() - started;
      await fs.writeFile(join(dir, DUMP_MS), String(dumpMs));
      await fs.writeFile(
        join(dir, DUMPED),
        pageServerPort === undefined ? 'local' : 'page-server',
      );
    }
    // Asked again after a restart, the marker (not the request) says where the pages
    // went: re-sending a page-server dump must not wipe the pages on the target.
    const viaPageServer =
      (await fs.readFile(join(dir, DUMPED), 'utf8')) === 'page-server';
    const started = Date.now();
    const bytes = await this.send(id, targetUrl, viaPageServer);
    return { id, dumpMs, streamMs: Date.now() - started, bytes };
  }

  /**
   * What runc says of a container, and what in it no checkpoint can carry:
   * io_uring instances and devices among its processes' open files. Asked
   * before a move starts, so a move that cannot finish is never begun.
   */
  private async inspectContainer(
    containerId: string,
  ): Promise<ContainerInspection> {
    const state = await this.runcState(containerId);
    const refusals = new Set<string>();
    let memoryBytes = 0;
    for (const pid of await this.containerPids(containerId, state.pid)) {
      memoryBytes += await processResidentBytes(pid);
      const fds = await fs
        .readdir(`/proc/${pid}/fd`)
        .catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await fs
          .readlink(`/proc/${pid}/fd/${fd}`)
          .catch(() => '');
        for (const [pattern, reason] of UNMOVABLE_FILES) {
          if (pattern.test(target))
            refusals.add(`process ${pid} holds ${reason}: ${target}`);
        }
      }
    }
    if (state.status !== 'running' && state.status !== 'paused') {
      refusals.add(`the container is ${state.status}, not running`);
    }
    return {
      containerId,
      status: state.status,
      pid: state.pid,
      refusals: [...refusals],
      memoryBytes,
    };
  }

  /**
   * Checkpoints a container (once) with `runc checkpoint` and gets the images to
   * the target agent. The container is paused first (its cgroup frozen) and
   * left paused after the dump (`--leave-running` on a frozen cgroup keeps it
   * frozen): nothing it does after the dump can be lost, and until the move
   * ends it can be resumed where it stopped (rollback) or retired (success).
   */
  private async checkpointContainer(
    id: string,
    containerId: string,
    targetUrl: string,
    pageServerPort?: number,
  ): Promise<CheckpointReport> {
    const dir = this.dir(id);
    // Asked again after the dump (a resumed move), the dump's own time, not none.
    let dumpMs = await recordedDumpMs(dir);
    if (!existsSync(join(dir, DUMPED))) {
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const work = `${dir}.work`;
      await fs.rm(work, { recursive: true, force: true });
      await fs.mkdir(work, { recursive: true, mode: 0o700 });
      const config = join(work, 'criu.conf');
      await fs.writeFile(config, await this.criuConfiguration());
      const pageServer =
        pageServerPort === undefined
          ? []
          : [
              '--page-server',
              `${new URL(targetUrl).hostname}:${pageServerPort}`,
            ];
      const started = Date.now();
      const pausedAt = join(this.options.imagesDir, PAUSED_AT(id));
      if (!existsSync(pausedAt)) await fs.writeFile(pausedAt, String(started));
      await this.runc(['pause', containerId]).catch(async error => {
        // Paused by an earlier attempt that died before its marker: fine.
        if ((await this.runcState(containerId)).status !== 'paused')
          throw error;
      });
      const watch =
        pageServerPort === undefined
          ? undefined
          : this.watchTarget(id, targetUrl, pageServerPort);
      try {
        await this.runc(
          [
            'checkpoint',
            '--leave-running',
            // A connection still in its handshake when the container is paused
            // (a kubelet's TCP probe, a client dialling in) cannot be dumped, and
            // CRIU fails the whole dump for it unless told to leave it out: its
            // client gets no answer and dials again, as it must for the new
            // address anyway. A runc flag, not a CRIU configuration line: runc
            // sends this option in its request, which overrides the file.
            '--tcp-skip-in-flight',
            '--image-path',
            dir,
            '--work-path',
            work,
            ...pageServer,
            containerId,
          ],
          { CRIU_CONFIG_FILE: config },
          join(work, 'dump.log'),
        );
      } catch (error) {
        // Nothing moved: the container carries on where it stopped.
        await this.runc(['resume', containerId]).catch(() => {});
        if (await watch?.stop()) {
          throw new Error(
            `the target agent at ${targetUrl} did not answer for ${TARGET_SILENCE_TIMEOUT_MS} ms while the dump sent it the pages (its node, or the link to it, is down): the dump was stopped and the container runs on (${
              (error as Error).message
            })`,
          );
        }
        throw error;
      }
      await watch?.stop();
      dumpMs = Date.now() - started;
      await fs.writeFile(join(dir, DUMP_MS), String(dumpMs));
      await fs.writeFile(
        join(dir, DUMPED),
        pageServerPort === undefined ? 'local' : 'page-server',
      );
      await fs.rm(work, { recursive: true, force: true });
    }
    const viaPageServer =
      (await fs.readFile(join(dir, DUMPED), 'utf8')) === 'page-server';
    const started = Date.now();
    const bytes = await this.send(id, targetUrl, viaPageServer);
    return { id, dumpMs, streamMs: Date.now() - started, bytes };
  }

  /**
   * Dials the target's agent every TARGET_PROBE_MS while a dump sends it
   * pages; after TARGET_SILENCE_TIMEOUT_MS without an answer, resets the
   * connection to its page server (an nft rule in this node's network
   * namespace answers the next retransmission with a TCP reset, which CRIU
   * takes as the page server gone). `stop` ends the watch, removes the rule,
   * and says whether it cut.
   */
  private watchTarget(
    id: string,
    targetUrl: string,
    pageServerPort: number,
  ): { stop: () => Promise<boolean> } {
    const target = new URL(targetUrl);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const port = Number(
      target.port || (target.protocol === 'https:' ? 443 : 80),
    );
    const table = `${answerTable(id)}_cut`;
    let answeredAt = Date.now();
    let cut: Promise<void> | undefined;
    const timer = setInterval(() => {
      dial(host, port, TARGET_PROBE_MS).then(
        () => {
          answeredAt = Date.now();
        },
        () => {
          if (cut || Date.now() - answeredAt < TARGET_SILENCE_TIMEOUT_MS)
            return;
          this.log(
            `the target agent at ${targetUrl} has not answered for ${TARGET_SILENCE_TIMEOUT_MS} ms: resetting the dump's page-server connection`,
          );
          const daddr = net.isIPv6(host) ? 'ip6 daddr' : 'ip daddr';
          cut = run(
            'nft',
            ['-f', '-'],
            [
              `table inet ${table} {`,
              '  chain output { type filter hook output priority 0; policy accept;',
              `    ${daddr} ${host} tcp dport ${pageServerPort} reject with tcp reset`,
              '  }',
              '}',
            ].join('\n'),
          ).catch(error =>
            this.log(`could not reset the page-server connection: ${error}`),
          );
        },
      );
    }, TARGET_PROBE_MS);
    return {
      stop: async () => {
        clearInterval(timer);
        if (!cut) return false;
        await cut;
        await run('nft', ['delete', 'table', 'inet', table]).catch(() => {});
        return true;
      },
    };
  }

  /**
   * The lazy route (post-copy): `runc checkpoint --lazy-pages` writes every image
   * but the memory pages, and CRIU then serves those pages from the paused
   * container on a page server of its own until the target's `criu lazy-pages`
   * daemon has fetched them all (on demand as the restored process touches them,
   * the rest in the background). The images go to the target as soon as CRIU says
   * its page server is ready, with where it listens, so the target restores in
   * about the time the images take. The container stays paused after the copy,
   * as after any dump: retired when the move succeeds.
   */
  private async checkpointContainerLazily(
    id: string,
    containerId: string,
    targetUrl: string,
    ownAddress: string,
  ): Promise<CheckpointReport> {
    const dir = this.dir(id);
    // Asked again after the dump (a resumed move), the dump's own time, not none.
    let dumpMs = await recordedDumpMs(dir);
    if (!existsSync(join(dir, DUMPED))) {
      const address = ownAddress.replace(/^::ffff:/, '');
      if (!net.isIP(address)) {
        throw new Error(
          `the lazy route needs the address the target reaches this node at; the request came to '${ownAddress}'`,
        );
      }
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const work = `${dir}.work`;
      await fs.rm(work, { recursive: true, force: true });
      await fs.mkdir(work, { recursive: true, mode: 0o700 });
      const config = join(work, 'criu.conf');
      await fs.writeFile(config, await this.criuConfiguration());
      const port = await freePort();
      const statusFifo = join(work, 'status');
      await promisify(execFile)('mkfifo', ['-m', '0600', statusFifo]);
      // The pages the copy will move: the processes' resident memory, read
      // before the pause (the dump's own count is in images CRIU writes in protobuf).
      const state = await this.runcState(containerId);
      let residentBytes = 0;
      for (const pid of await this.containerPids(containerId, state.pid)) {
        const status = await fs
          .readFile(`/proc/${pid}/status`, 'utf8')
          .catch(() => '');
        residentBytes +=
          Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
      }
      const started = Date.now();
      const pausedAt = join(this.options.imagesDir, PAUSED_AT(id));
      if (!existsSync(pausedAt)) await fs.writeFile(pausedAt, String(started));
      await this.runc(['pause', containerId]).catch(async error => {
        if ((await this.runcState(containerId)).status !== 'paused')
          throw error;
      });
      const { ready, ended } = this.runcLazyCheckpoint(
        [
          'checkpoint',
          '--leave-running',
          '--tcp-skip-in-flight',
          '--lazy-pages',
          '--page-server',
          `${address}:${port}`,
          '--status-fd',
          '3',
          '--image-path',
          dir,
          '--work-path',
          work,
          containerId,
        ],
        { CRIU_CONFIG_FILE: config },
        join(work, 'dump.log'),
        statusFifo,
      );
      // Whatever the copy's end, it is written down for the operator, and the
      // network lock CRIU leaves in the container's namespace after a lazy dump goes.
      const copy = ended.then(
        () => 'ok',
        error => String(error?.message ?? error),
      );
      void this.once(`lazy-copy:${id}`, async () => {
        const outcome = await copy;
        // Said in the log: a lock left behind would drop every packet of a
        // source that runs on after a failed move.
        const lock = await this.dropCriuNetworkLock(containerId).then(
          dropped =>
            `${
              dropped.length ? `removed ${dropped.join(', ')}; ` : ''
            }no CRIU network lock left`,
          error => `the CRIU network lock may be left: ${error}`,
        );
        await fs.writeFile(join(dir, LAZY_COPY_ENDED), outcome).catch(() => {});
        await fs.rm(work, { recursive: true, force: true });
        this.options.log?.(`lazy copy of ${id} ended: ${outcome} (${lock})`);
      });
      try {
        await ready;
      } catch (error) {
        // Nothing moved: the container carries on where it stopped.
        await this.runc(['resume', containerId]).catch(() => {});
        throw error;
      }
      dumpMs = Date.now() - started;
      await fs.writeFile(join(dir, DUMP_MS), String(dumpMs));
      await fs.writeFile(
        join(dir, DUMPED),
        `lazy ${address}:${port} ${residentBytes}`,
      );
    }
    const [, pages, resident] = (
      await fs.readFile(join(dir, DUMPED), 'utf8')
    ).split(' ');
    const started = Date.now();
    const bytes = await this.send(id, targetUrl, false, pages);
    return {
      id,
      dumpMs,
      streamMs: Date.now() - started,
      bytes: bytes + Number(resident),
      lazy: true,
    };
  }

  /**
   * Runs a lazy `runc checkpoint`: `ready` resolves once CRIU's page server is
   * up with every other image written (runc writes a byte to descriptor 3),
   * `ended` once runc exits, after the last page was fetched. Either rejects
   * with what CRIU logged when runc fails.
   */
  private runcLazyCheckpoint(
    args: string[],
    env: Record<string, string>,
    log: string,
    statusFifo: string,
  ): { ready: Promise<void>; ended: Promise<void> } {
    const runc = this.options.runc;
    if (!runc) {
      const error = Promise.reject(
        new Error(
          `the agent on ${this.options.node} was started without --runc-root; it cannot reach containers`,
        ),
      );
      error.catch(() => {});
      return { ready: error, ended: error };
    }
    const bin = join(this.options.imagesDir, '.bin');
    const [command, ...prefix] = runc.command;
    // runc wants a descriptor it can write to, and the one end of a pipe Node
    // gives a child is not: a FIFO, opened by runc for writing as descriptor 3.
    const readEnd = openSync(
      statusFifo,
      constants.O_RDONLY | constants.O_NONBLOCK,
    );
    const writeEnd = openSync(statusFifo, constants.O_WRONLY);
    const child = spawn(command, [...prefix, '--root', runc.root, ...args], {
      stdio: ['ignore', 'ignore', 'pipe', writeEnd],
      env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    closeSync(writeEnd);
    let stderr = '';
    child.stderr!.on('data', c => (stderr += c));
    const failure = async (code: number) => {
      const errors = (await fs.readFile(log, 'utf8').catch(() => ''))
        .split('\n')
        .filter(l => /Error/.test(l) && !/RLIMIT_NOFILE/.test(l));
      return new Error(
        `runc checkpoint --lazy-pages failed (${code}): ${
          errors.slice(-5).join(' | ') ||
          stderr.trim().split('\n').slice(-3).join(' | ')
        }`,
      );
    };
    const ended = new Promise<void>((resolve, reject) => {
      child.on('error', error => reject(error));
      child.on('close', code =>
        code === 0 ? resolve() : failure(code ?? 1).then(reject),
      );
    });
    const status = new net.Socket({ fd: readEnd, readable: true });
    status.on('error', () => {});
    const ready = new Promise<void>((resolve, reject) => {
      status.once('data', () => resolve());
      // runc closes the descriptor without a byte when the dump fails first.
      ended.then(
        () =>
          reject(
            new Error(
              'runc checkpoint --lazy-pages ended before its page server was ready',
            ),
          ),
        reject,
      );
    });
    ready.catch(() => {});
    ended.catch(() => {});
    void ended.catch(() => {}).finally(() => status.destroy());
    return { ready, ended };
  }

  /**
   * Deletes the `inet CRIU-<uuid>` tables a lazy dump leaves in the container's
   * network namespace, and looks again that none is left; resolves with the
   * tables it deleted.
   */
  private async dropCriuNetworkLock(containerId: string): Promise<string[]> {
    const path = await this.networkNamespace(containerId);
    if (!path) return [];
    const netns = `--net=${path}`;
    const criuTables = async () => {
      const { stdout } = await promisify(execFile)('nsenter', [
        netns,
        'nft',
        'list',
        'tables',
      ]);
      return stdout
        .split('\n')
        .map(line => /^table inet (CRIU-[\w-]+)/.exec(line.trim())?.[1])
        .filter((table): table is string => !!table);
    };
    const dropped = await criuTables();
    for (const table of dropped) {
      await run('nsenter', [netns, 'nft', 'delete', 'table', 'inet', table]);
    }
    const left = await criuTables();
    if (left.length) {
      throw new Error(`nft tables ${left.join(', ')} are still there`);
    }
    return dropped.map(table => `inet ${table}`);
  }

  /** Raises `fs.pipe-max-size` to what CRIU's lazy page server needs, if it is lower. */
  private async raisePipeMaxSize(): Promise<void> {
    try {
      const now = Number(await fs.readFile(PIPE_MAX_SIZE_FILE, 'utf8'));
      if (now < PIPE_MAX_SIZE) {
        await fs.writeFile(PIPE_MAX_SIZE_FILE, String(PIPE_MAX_SIZE));
      }
    } catch (error) {
      this.options.log?.(
        `could not raise ${PIPE_MAX_SIZE_FILE} to ${PIPE_MAX_SIZE} (lazy checkpoints will fail): ${error}`,
      );
    }
  }

  /** Lets a paused container run on (a rolled-back move); idempotent. */
  private async resumeContainer(
    containerId: string,
  ): Promise<{ containerId: string; status: string }> {
    await this.dumpsEnded(containerId);
    const state = await this.runcState(containerId);
    if (state.status === 'paused') await this.runc(['resume', containerId]);
    return { containerId, status: (await this.runcState(containerId)).status };
  }

  /**
   * Ends a paused container whose state now lives on another node: SIGKILL,
   * then thawed, so it dies without running another instruction (a frozen
   * task takes no signal). Idempotent; a container already gone is fine.
   */
  private async retireContainer(
    containerId: string,
  ): Promise<{ containerId: string; status: string }> {
    // Until it is stopped: a dump left running by an agent that died (its CRIU
    // carries on) puts the cgroup back to frozen when it ends, perhaps after
    // the first thaw, and a frozen task never acts on its SIGKILL.
    await this.dumpsEnded(containerId);
    const until = Date.now() + RETIRE_TIMEOUT_MS;
    for (;;) {
      const state = await this.runcState(containerId).catch(() => undefined);
      if (!state || state.status === 'stopped') {
        return { containerId, status: 'stopped' };
      }
      if (Date.now() > until) {
        throw new Error(
          `container ${containerId} is still ${state.status} ${RETIRE_TIMEOUT_MS} ms after SIGKILL`,
        );
      }
      await this.runc(['kill', containerId, 'KILL']).catch(() => {});
      if (state.status === 'paused') {
        await this.runc(['resume', containerId]).catch(() => {});
      }
      await new Promise(resolve => setTimeout(resolve, RETIRE_POLL_MS));
    }
  }

  /**
   * Waits (up to DUMP_END_WAIT_MS) until no `runc checkpoint` of the container
   * runs: a dump left by an agent that died (its runc and CRIU run on) puts the
   * container back to paused when it ends, so a container resumed or killed
   * before that would be left frozen with nobody to know. While it dumps, runc
   * may not even answer for the container.
   */
  private async dumpsEnded(containerId: string): Promise<void> {
    const until = Date.now() + DUMP_END_WAIT_MS;
    while (this.dumpsRunning(containerId) && Date.now() < until) {
      await new Promise(resolve => setTimeout(resolve, RETIRE_POLL_MS));
    }
  }

  /** Whether a `runc checkpoint` of the container runs on this node (this agent's or an earlier one's). */
  private dumpsRunning(containerId: string): boolean {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue; // Exited meanwhile.
      }
      if (argv.includes('checkpoint') && argv.includes(containerId))
        return true;
    }
    return false;
  }

  private async criuConfiguration(): Promise<string> {
    const node = this.options.criuConfigFile
      ? await fs.readFile(this.options.criuConfigFile, 'utf8').catch(() => '')
      : '';
    const t = this.options.criuTls;
    const tls = t
      ? [
          'tls',
          `tls-cacert ${t.caFile}`,
          `tls-cert ${t.certFile}`,
          `tls-key ${t.keyFile}`,
        ]
      : [];
    return `${[node.trim(), ...CONTAINER_CRIU_OPTIONS, ...tls]
      .filter(Boolean)
      .join('\n')}\n`;
  }

  /**
   * The container's network namespace, also once its processes are gone (a
   * lazy dump ends them when its last page is sent): the pod's, which its
   * sandbox holds, as named in the container's bundle.
   */
  private async networkNamespace(
    containerId: string,
  ): Promise<string | undefined> {
    const state = JSON.parse(await this.runc(['state', containerId])) as {
      pid?: number;
      bundle?: string;
    };
    if (state.pid && existsSync(`/proc/${state.pid}/ns/net`)) {
      return `/proc/${state.pid}/ns/net`;
    }
    if (!state.bundle) return undefined;
    const config = JSON.parse(
      await fs.readFile(join(state.bundle, 'config.json'), 'utf8'),
    ) as { linux?: { namespaces?: { type: string; path?: string }[] } };
    return config.linux?.namespaces?.find(ns => ns.type === 'network')?.path;
  }

  private async runcState(
    containerId: string,
  ): Promise<{ status: string; pid: number }> {
    const out = await this.runc(['state', containerId]);
    const state = JSON.parse(out) as { status: string; pid: number };
    return { status: state.status, pid: state.pid };
  }

  /** The container's processes: its init and every descendant (its own PID namespace). */
  private async containerPids(
    containerId: string,
    init: number,
  ): Promise<number[]> {
    const out = await this.runc(['ps', '--format', 'json', containerId]).catch(
      () => '[]',
    );
    const pids = (JSON.parse(out || '[]') as number[]).filter(Number.isInteger);
    return pids.length ? pids : [init];
  }

  /**
   * Runs the node's runc with its root; resolves with stdout. CRIU, which runc
   * runs, is found on PATH: a `criu` script in the images directory stands for
   * the agent's CRIU command line.
   */
  private async runc(
    args: string[],
    env: Record<string, string> = {},
    log?: string,
  ): Promise<string> {
    const runc = this.options.runc;
    if (!runc)
      throw new Error(
        `the agent on ${this.options.node} was started without --runc-root; it cannot reach containers`,
      );
    const bin = join(this.options.imagesDir, '.bin');
    if (!existsSync(join(bin, 'criu'))) {
      await fs.mkdir(bin, { recursive: true, mode: 0o700 });
      const command = this.options.criu
        .map(a => `'${a.replace(/'/g, `'\\''`)}'`)
        .join(' ');
      await fs.writeFile(
        join(bin, 'criu'),
        `#!/bin/sh\nexec ${command} "$@"\n`,
        { mode: 0o700 },
      );
    }
    const [command, ...prefix] = runc.command;
    const child = spawn(command, [...prefix, '--root', runc.root, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', c => (stdout += c));
    child.stderr.on('data', c => (stderr += c));
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      AGENT_OPERATION_TIMEOUT_MS,
    );
    const code = await new Promise<number>(resolve => {
      child.on('error', () => resolve(127));
      child.on('close', c => resolve(c ?? 1));
    });
    clearTimeout(timer);
    if (code !== 0) {
      const criuLog = log ? await fs.readFile(log, 'utf8').catch(() => '') : '';
      const errors = criuLog
        .split('\n')
        .filter(l => /Error/.test(l) && !/RLIMIT_NOFILE/.test(l));
      const said =
        errors.slice(-5).join(' | ') ||
        stderr.trim().split('\n').slice(-3).join(' | ');
      throw new Error(
        `runc ${args[0]} ${args[args.length - 1]} failed (${code}): ${said}`,
      );
    }
    return stdout;
  }

  /** Starts CRIU's page server for an incoming dump; resolves with its port once it listens. */
  private async startPageServer(
    id: string,
  ): Promise<{ id: string; port: number }> {
    const dir = this.dir(id);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const port = await freePort();
    // --daemon returns once the server listens; it exits by itself when the dump ends.
    await this.criu(
      [
        'page-server',
        '-D',
        dir,
        '--port',
        String(port),
        '--daemon',
        ...this.criuTlsArgs(),
        '-o',
        'page-server.log',
      ],
      dir,
    );
    return { id, port };
  }

  /** Streams an image directory to another agent as a tar stream (no compression: the link is faster than the CPU). */
  private async send(
    id: string,
    targetUrl: string,
    merge: boolean,
    lazyPages?: string,
  ): Promise<number> {
    const tar = spawn(
      'tar',
      [
        '-C',
        this.dir(id),
        '--exclude',
        RESTORED,
        '--exclude',
        DUMPED,
        '--exclude',
        DUMP_MS,
        '-cf',
        '-',
        '.',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let bytes = 0;
    tar.stdout.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    const target = new URL(`/v1/images/${id}`, targetUrl);
    if (merge) target.searchParams.set('merge', '1');
    if (lazyPages) target.searchParams.set('lazy', lazyPages);
    const response = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const request = (target.protocol === 'https:' ? https : http).request(
          target,
          {
            method: 'PUT',
            headers: {
              authorization: `Bearer ${this.options.token}`,
              'content-type': 'application/x-tar',
            },
            ca: this.options.tls?.ca,
            timeout: STREAM_IDLE_TIMEOUT_MS,
          },
          res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', c => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        request.on('error', reject);
        request.on('timeout', () =>
          request.destroy(
            new Error(
              `the target agent at ${targetUrl} took no bytes for ${STREAM_IDLE_TIMEOUT_MS} ms (its node, or the link to it, is down)`,
            ),
          ),
        );
        tar.stdout.pipe(request);
      },
    );
    if (response.status !== 200) {
      throw new Error(
        `target agent refused the images (${response.status}): ${response.body}`,
      );
    }
    // With a page server most bytes went by the page server's connection; the
    // target counts what it holds, which is what crossed the link.
    return merge ? Number(JSON.parse(response.body).imageBytes) : bytes;
  }

  /** Receives an image directory from another agent. */
  private async receive(
    id: string,
    req: IncomingMessage,
    merge: boolean,
    lazyPages?: string,
  ): Promise<{ id: string; bytes: number; imageBytes: number }> {
    const dir = this.dir(id);
    if (!merge) {
      await fs.rm(dir, { recursive: true, force: true });
    }
    // With a page server the pages are already here; the rest joins them.
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    const tar = spawn('tar', ['-C', dir, '-xf', '-'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    tar.stderr.on('data', c => (stderr += c));
    // A tar that dies early reports through its exit code below; its stdin's
    // EPIPE, unhandled, would end the agent.
    tar.stdin.on('error', () => {});
    req.pipe(tar.stdin);
    const code = await new Promise<number>(resolve =>
      tar.on('close', c => resolve(c ?? 1)),
    );
    if (code !== 0) {
      throw new Error(`unpacking images failed: ${stderr}`);
    }
    if (lazyPages) await this.startLazyPagesDaemon(dir, lazyPages);
    await fs.writeFile(join(dir, RECEIVED), String(bytes));
    return { id, bytes, imageBytes: await directoryBytes(dir) };
  }

  /**
   * Starts CRIU's lazy-pages daemon for images whose pages are still on the
   * source (`<host>:<port>` of its page server): the runtime wrapper's restore
   * hands it the restored process's userfaultfd through its socket in LAZY_WORK,
   * and it fetches the pages, touched ones first, then exits.
   */
  private async startLazyPagesDaemon(
    dir: string,
    pages: string,
  ): Promise<void> {
    const [host, port] = pages.split(':');
    if (!net.isIP(host) || !/^\d+$/.test(port ?? '')) {
      throw new Error(`lazy pages at '${pages}': want <address>:<port>`);
    }
    const work = join(dir, LAZY_WORK);
    await fs.mkdir(work, { recursive: true, mode: 0o700 });
    await this.criu(
      [
        'lazy-pages',
        '--page-server',
        '--address',
        host,
        '--port',
        port,
        '-D',
        dir,
        '-W',
        work,
        '--daemon',
        '-o',
        'lazy-pages.log',
      ],
      work,
    );
    await fs.writeFile(join(dir, LAZY), pages);
  }

  /** Restores the image directory in this agent's network namespace (once). */
  private async restore(id: string): Promise<RestoreReport> {
    const dir = this.dir(id);
    const marker = join(dir, RESTORED);
    if (existsSync(marker)) {
      const pid = Number(await fs.readFile(marker, 'utf8'));
      if (isAlive(pid)) {
        return { id, restoreMs: 0, pid };
      }
    }
    if (!existsSync(join(dir, RECEIVED)) && !existsSync(join(dir, DUMPED))) {
      throw new Error(`no complete images for ${id} on ${this.options.node}`);
    }
    // Restoring here after a failed move: this node must stop answering for the process first.
    await this.stopAnsweringForFrozen(id);
    const pidfile = join(dir, 'restored.pid');
    await fs.rm(pidfile, { force: true });
    const started = Date.now();
    await this.criu(
      [
        'restore',
        '-d',
        '-D',
        dir,
        '--tcp-established',
        ...NETWORK_LOCK,
        '--pidfile',
        pidfile,
        '-o',
        'restore.log',
      ],
      dir,
    );
    const restoreMs = Date.now() - started;
    const pid = Number((await fs.readFile(pidfile, 'utf8')).trim());
    await fs.writeFile(marker, String(pid));
    return { id, restoreMs, pid };
  }

  private async describe(id: string) {
    const dir = this.dir(id);
    const restoredPid = existsSync(join(dir, RESTORED))
      ? Number(await fs.readFile(join(dir, RESTORED), 'utf8'))
      : undefined;
    const dumped = existsSync(join(dir, DUMPED));
    const restored = await fs
      .readFile(join(dir, CONTAINER_RESTORED), 'utf8')
      .then(
        text =>
          JSON.parse(text) as {
            containerId?: string;
            pid?: number;
            restoreMs?: number;
          },
      )
      .catch(() => undefined);
    const restoreError = await fs
      .readFile(join(dir, CONTAINER_RESTORE_FAILED), 'utf8')
      .catch(() => undefined);
    const pausedAt = await fs
      .readFile(join(this.options.imagesDir, PAUSED_AT(id)), 'utf8')
      .then(Number)
      .catch(() => undefined);
    const lazyCopyEnded = await fs
      .readFile(join(dir, LAZY_COPY_ENDED), 'utf8')
      .catch(() => undefined);
    const lazyDump = (
      await fs.readFile(join(dir, DUMPED), 'utf8').catch(() => '')
    ).startsWith('lazy');
    return {
      id,
      dumped,
      pausedAt,
      // A dump this agent is running now (an operator that restarted asks before
      // it starts another page server, which would wipe the pages under way).
      dumping: this.busy.has(`checkpoint:${id}`),
      pagesLocal:
        dumped && (await fs.readFile(join(dir, DUMPED), 'utf8')) === 'local',
      received: existsSync(join(dir, RECEIVED)),
      restoredPid:
        restoredPid && isAlive(restoredPid) ? restoredPid : undefined,
      restoredContainer: restored?.containerId,
      restoreMs: restored?.restoreMs,
      restoreError,
      // The lazy route's copy of the pages from this (source) node: running until it ends.
      lazyCopy: lazyDump
        ? lazyCopyEnded ??
          (this.busy.has(`lazy-copy:${id}`) ? 'running' : 'abandoned')
        : undefined,
    };
  }

  /**
   * While the process is frozen, and after it left, this node answers TCP
   * packets for its address with ICMP host-unreachable instead of dropping them
   * silently (CRIU's network lock drops them). A Linux client whose
   * retransmission meets that answer takes back one step of its timeout
   * back-off (TCP-LD, RFC 6069): it keeps retrying every ~200 ms and reaches
   * the restored process right after the restore, where a silent drop leaves it
   * waiting out a back-off as long as the freeze (measured: up to 1.3 s after a
   * 2.5 s freeze). For an established connection the answer is a soft error;
   * the connection is kept. ICMP rate limiting in this network namespace is off
   * meanwhile (one answer per second per client would not do), and put back by
   * {@link stopAnsweringForFrozen}. Needs `nft`; without it packets are dropped
   * as before.
   */
  private async answerForFrozen(id: string, address: string): Promise<void> {
    const saved = join(this.options.imagesDir, ICMP_RATELIMIT_SAVED);
    const family = net.isIPv6(address)
      ? 'ip6 daddr %s meta l4proto tcp reject with icmpv6 type addr-unreachable'
      : 'ip daddr %s meta l4proto tcp reject with icmp type host-unreachable';
    const rules = [
      `table inet ${answerTable(id)} {`,
      // Before CRIU's own lock table (priority 0), which would drop the packet first.
      '  chain input { type filter hook input priority -10; policy accept;',
      `    ${family.replace('%s', address)}`,
      '  }',
      '}',
    ].join('\n');
    const applied = await run('nft', ['-f', '-'], rules).catch(
      (error: Error) => error,
    );
    if (applied instanceof Error) {
      this.log(
        `not answering for ${address} during the freeze: ${applied.message}`,
      );
      return;
    }
    if (!existsSync(saved)) {
      await fs.writeFile(
        saved,
        (await fs.readFile(ICMP_RATELIMIT, 'utf8')).trim(),
      );
    }
    await fs.writeFile(join(this.options.imagesDir, ANSWERING(id)), address);
    await fs.writeFile(ICMP_RATELIMIT, '0');
  }

  /** Stops {@link answerForFrozen}'s answers; the last one to stop puts the ICMP rate limit back. Idempotent. */
  private async stopAnsweringForFrozen(id: string): Promise<void> {
    await run('nft', ['delete', 'table', 'inet', answerTable(id)]).catch(
      () => {},
    );
    await fs.rm(join(this.options.imagesDir, ANSWERING(id)), { force: true });
    const saved = join(this.options.imagesDir, ICMP_RATELIMIT_SAVED);
    const stillAnswering = (await fs.readdir(this.options.imagesDir)).some(
      name => name.startsWith(ANSWERING('')),
    );
    if (existsSync(saved) && !stillAnswering) {
      await fs.writeFile(ICMP_RATELIMIT, await fs.readFile(saved, 'utf8'));
      await fs.rm(saved, { force: true });
    }
  }

  private log(message: string): void {
    (this.options.log ?? (() => {}))(`${this.options.node}: ${message}`);
  }

  private criuTlsArgs(): string[] {
    const t = this.options.criuTls;
    return t
      ? [
          '--tls',
          '--tls-cacert',
          t.caFile,
          '--tls-cert',
          t.certFile,
          '--tls-key',
          t.keyFile,
        ]
      : [];
  }

  private dir(id: string): string {
    return join(this.options.imagesDir, id);
  }

  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    // A retried request joins the operation already running instead of racing it.
    const running = this.busy.get(key) as Promise<T> | undefined;
    if (running) return running;
    const started = fn().finally(() => this.busy.delete(key));
    this.busy.set(key, started);
    return started;
  }

  /**
   * Runs CRIU. `stdin` becomes its standard input: a page-server socket for
   * `--ps-socket 0`, as standard input because only descriptors 0-2 are handed
   * over in blocking mode, which is what CRIU expects of its sockets.
   */
  private async criu(
    args: string[],
    dir: string,
    stdin?: net.Socket,
  ): Promise<void> {
    const [command, ...prefix] = this.options.criu;
    const child = spawn(command, [...prefix, ...args], {
      stdio: [stdin ?? 'ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', c => (stderr += c));
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      AGENT_OPERATION_TIMEOUT_MS,
    );
    const code = await new Promise<number>(resolve =>
      child.on('close', c => resolve(c ?? 1)),
    );
    clearTimeout(timer);
    if (code !== 0) {
      const log = await fs
        .readFile(join(dir, `${args[0]}.log`), 'utf8')
        .catch(() => '');
      const errors = log
        .split('\n')
        .filter(l => /Error/.test(l) && !/RLIMIT_NOFILE/.test(l));
      throw new Error(
        `criu ${args[0]} failed (${code}): ${
          errors.slice(-5).join(' | ') || stderr
        }`,
      );
    }
  }

  private async criuVersion(): Promise<string> {
    const [command, ...prefix] = this.options.criu;
    return new Promise(resolve => {
      const child = spawn(command, [...prefix, '--version'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.on('data', c => (out += c));
      child.on('close', () => resolve(out.trim().split('\n')[0] ?? ''));
      child.on('error', () => resolve(''));
    });
  }

  private authorised(req: IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    const expected = Buffer.from(`Bearer ${this.options.token}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** A hibernation request from its JSON body, or what is wrong with it. */
export function hibernationRequest(
  body: Record<string, unknown>,
): HibernationRequest | string {
  const containerId = String(body.containerId ?? '');
  if (!CONTAINER_ID.test(containerId)) {
    return `container id '${containerId}' must match ${CONTAINER_ID}`;
  }
  const ports = body.ports;
  if (
    !Array.isArray(ports) ||
    ports.length === 0 ||
    !ports.every(p => Number.isInteger(p) && p > 0 && p < 65536)
  ) {
    return `ports must be a non-empty list of TCP ports, got ${JSON.stringify(
      ports,
    )}`;
  }
  const idleMs = Number(body.idleMs);
  if (!Number.isInteger(idleMs) || idleMs < 1_000) {
    return `idleMs must be a whole number of milliseconds, at least 1000, got ${JSON.stringify(
      body.idleMs,
    )}`;
  }
  return { containerId, ports: ports as number[], idleMs };
}

/** The nft table that answers for a frozen process's address: one per image id. */
function answerTable(id: string): string {
  return `ferry_${id.replace(/[^a-z0-9]/g, '_')}`;
}

/** Opens a TCP connection and closes it; rejects when none is made within `timeoutMs`. */
function dial(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(
      () => socket.destroy(new Error('no connection')),
      timeoutMs,
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once('error', error => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Runs a command with `input` on stdin; rejects with its stderr when it fails or is missing. */
function run(command: string, args: string[], input = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', c => (stderr += c));
    child.on('error', reject);
    child.on('close', code =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} exited ${code}: ${stderr.trim()}`)),
    );
    // A command that exits without reading (nft deleting a table that is not
    // there) leaves its stdin's write to fail with EPIPE: its exit code says
    // what went wrong, and the error unhandled would end the agent.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** The recorded length of the dump in `dir`, or 0 when there is none. */
async function recordedDumpMs(dir: string): Promise<number> {
  return Number(await fs.readFile(join(dir, DUMP_MS), 'utf8').catch(() => '0'));
}

/**
 * A TCP connection this process never reads from: CRIU, which gets it as a
 * file descriptor, does all the talking on it.
 */
function connectWithoutReading(
  host: string,
  port: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.pause();
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      // Errors after the hand-over are CRIU's to see; keep them from crashing the agent.
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

/** A TCP port free right now (the page server binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Bytes an unprivileged writer may still put in the filesystem holding `dir`; undefined when it cannot be read. */
async function freeBytes(dir: string): Promise<number | undefined> {
  return fs
    .statfs(dir)
    .then(stats => stats.bavail * stats.bsize)
    .catch(() => undefined);
}

/** A process's resident memory (VmRSS), 0 when it is gone. */
async function processResidentBytes(pid: number): Promise<number> {
  const status = await fs
    .readFile(`/proc/${pid}/status`, 'utf8')
    .catch(() => '');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : 0;
}

/** Total size of the files in a directory (one level: image directories are flat). */
async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) {
    total += (await fs.stat(join(dir, name))).size;
  }
  return total;
}

/**
 * Kills the `criu lazy-pages` daemons serving the image directory `dir` (its
 * `-D`), found by their command lines: CRIU's --daemon gives no pid file for them.
 */
export function stopLazyPagesDaemons(dir: string): number[] {
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone since the listing
    }
    const images = argv.indexOf('-D');
    if (!argv.includes('lazy-pages') || images < 0 || argv[images + 1] !== dir) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed.push(Number(entry));
    } catch {
      // exited by itself meanwhile: its copy ended
    }
  }
  return killed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(
  req: IncomingMessage,
): Promise<Record<string, unknown>> {
  let text = '';
  req.setEncoding('utf8');
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}
