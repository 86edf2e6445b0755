import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { CheckpointReport, ContainerInspection, RestoreReport } from './NodeAgent';
import type { HibernationRequest, HibernationStatus } from './ContainerHibernation';

/**
 * How long the operator waits for an agent call that does a container's work
 * (a dump and stream of a large process, a restore, a resume that waits for a
 * dump to end) while the agent still answers its health checks.
 */
export const AGENT_CALL_TIMEOUT_MS = 5 * 60_000;
/**
 * How long the operator waits for any other call (a look at an image, a
 * page server's start, a deletion): a node that died after the connection was
 * made never answers, and only this ends the wait.
 */
export const AGENT_QUICK_CALL_TIMEOUT_MS = 30_000;
/**
 * While a long call runs, the agent's health is asked on a connection of its
 * own this often; a node that gives no answer for AGENT_SILENCE_TIMEOUT_MS is
 * taken for gone, and the long call ends then rather than at its timeout.
 */
export const AGENT_LIVENESS_PROBE_MS = 5_000;
export const AGENT_SILENCE_TIMEOUT_MS = 20_000;
/**
 * How long a connection to an agent may take. A reclaimed node drops packets
 * rather than refusing them, and waiting out TCP's SYN retries (two minutes)
 * would eat a whole AWS notice.
 */
export const AGENT_CONNECT_TIMEOUT_MS = 2_000;

/** The client's waits (the constants above); tests shorten them. */
export interface AgentTimeouts {
  callMs: number;
  quickCallMs: number;
  livenessProbeMs: number;
  silenceMs: number;
  connectMs: number;
}

export const AGENT_TIMEOUTS: AgentTimeouts = {
  callMs: AGENT_CALL_TIMEOUT_MS,
  quickCallMs: AGENT_QUICK_CALL_TIMEOUT_MS,
  livenessProbeMs: AGENT_LIVENESS_PROBE_MS,
  silenceMs: AGENT_SILENCE_TIMEOUT_MS,
  connectMs: AGENT_CONNECT_TIMEOUT_MS,
};

/** What an agent says about one image id. */
export interface ImageState {
  id: string;
  dumped: boolean;
  /** Whether the agent is dumping (or sending) these images right now. */
  dumping?: boolean;
  /** When (epoch ms, the node's clock) the agent paused the container for these images. */
  pausedAt?: number;
  /** Whether the dump's memory pages are on this node (false when they went to a page server). */
  pagesLocal?: boolean;
  received: boolean;
  restoredPid?: number;
  /** The container Ferry's runtime wrapper restored from these images on this node. */
  restoredContainer?: string;
  restoreMs?: number;
  /** Why the runtime wrapper's restore from these images failed. */
  restoreError?: string;
  /**
   * The lazy route, on the source: the copy of the memory pages to the target is
   * `running`, ended `ok`, was `abandoned` (its agent restarted), or failed (why).
   */
  lazyCopy?: string;
}

/** The agent could not be reached at all (node gone, agent down). */
export class AgentUnreachableError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`node agent at ${url} is unreachable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'AgentUnreachableError';
  }
}

/** The operator's client of one node agent. */
export class NodeAgentClient {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly ca?: string | Buffer,
    /** Name the agent's certificate carries, when the URL holds an IP address. */
    private readonly servername?: string,
    /** How to reach the agent's address when this process has no route to it (a proxy). */
    private readonly connect?: (host: string, port: number) => Promise<net.Socket>,
    private readonly timeouts: AgentTimeouts = AGENT_TIMEOUTS,
  ) {}

  /** Agent and CRIU version, and the room left in its image directory. */
  health(): Promise<{ node: string; criu: string; imagesFreeBytes?: number }> {
    return this.call('GET', '/v1/health');
  }

  /**
   * Dumps `pid` (once) and gets the images to `targetUrl`'s agent: through the
   * page server on `pageServerPort` while dumping, or by streaming after.
   */
  checkpoint(
    id: string,
    pid: number,
    targetUrl: string,
    pageServerPort?: number,
    /** The address the process serves on: the source answers clients' packets for it during the freeze. */
    address?: string,
  ): Promise<CheckpointReport> {
    return this.call('POST', `/v1/checkpoints/${id}`, { pid, targetUrl, pageServerPort, address }, 'long');
  }

  /** What runc says of a container on this node, and why it could not be checkpointed. */
  inspectContainer(id: string, containerId: string): Promise<ContainerInspection> {
    return this.call('POST', `/v1/containers/${id}/inspect`, { containerId });
  }

  /**
   * Pauses and checkpoints a container (once, `runc checkpoint`), leaving it
   * paused, and gets the images to `targetUrl`'s agent.
   */
  checkpointContainer(
    id: string,
    containerId: string,
    targetUrl: string,
    pageServerPort?: number,
    lazy?: boolean,
  ): Promise<CheckpointReport> {
    return this.call('POST', `/v1/checkpoints/${id}`, { containerId, targetUrl, pageServerPort, lazy }, 'long');
  }

  /** Lets a container paused by a checkpoint run on (rollback). */
  resumeContainer(id: string, containerId: string): Promise<{ containerId: string; status: string }> {
    return this.call('POST', `/v1/containers/${id}/resume`, { containerId }, 'long');
  }

  /** Kills a paused container whose state has moved, without letting it run again. */
  retireContainer(id: string, containerId: string): Promise<{ containerId: string; status: string }> {
    return this.call('POST', `/v1/containers/${id}/retire`, { containerId }, 'long');
  }

  /** Starts a page server for an incoming dump; resolves with its port. */
  startPageServer(id: string): Promise<{ id: string; port: number }> {
    return this.call('POST', `/v1/page-servers/${id}`);
  }

  /** Restores the images (once) on this agent's node. */
  restore(id: string): Promise<RestoreReport> {
    return this.call('POST', `/v1/restores/${id}`, undefined, 'long');
  }

  /** What this agent holds for an image id. */
  image(id: string): Promise<ImageState> {
    return this.call('GET', `/v1/images/${id}`);
  }

  /** Watches a container for idleness, to hibernate it in place and wake it on traffic (or updates the watch). */
  watchForHibernation(id: string, request: HibernationRequest): Promise<HibernationStatus> {
    return this.call('PUT', `/v1/hibernations/${id}`, request);
  }

  /** Where a watched container is; rejects with a 404 when the agent does not watch it. */
  hibernation(id: string): Promise<HibernationStatus> {
    return this.call('GET', `/v1/hibernations/${id}`);
  }

  /** Wakes a hibernated container now; resolves once it runs. */
  wake(id: string): Promise<HibernationStatus> {
    return this.call('POST', `/v1/hibernations/${id}/wake`, undefined, 'long');
  }

  /** Stops watching a running container (its counters go); refused while it sleeps. */
  stopWatching(id: string): Promise<{ id: string; watched: false }> {
    return this.call('DELETE', `/v1/hibernations/${id}`);
  }

  /** Deletes the images: they hold the process's memory, secrets included. */
  deleteImages(id: string): Promise<void> {
    return this.call('DELETE', `/v1/images/${id}`);
  }

  private call<T>(method: string, path: string, body?: unknown, length: 'quick' | 'long' = 'quick'): Promise<T> {
    const { callMs, quickCallMs, livenessProbeMs, silenceMs } = this.timeouts;
    if (length === 'quick') return this.request(method, path, body, quickCallMs);
    // A long call stays silent until its work is done: the agent's health,
    // asked beside it, tells a node that is gone from one that works.
    const call = this.request<T>(method, path, body, callMs);
    return new Promise<T>((resolve, reject) => {
      let answeredAt = Date.now();
      const probe = setInterval(() => {
        this.request('GET', '/v1/health', undefined, livenessProbeMs).then(
          () => {
            answeredAt = Date.now();
          },
          error => {
            if (Date.now() - answeredAt < silenceMs) return;
            clearInterval(probe);
            call.abort(new Error(`no answer to its health checks for ${silenceMs} ms while ${method} ${path} ran (${error.message})`));
          },
        );
      }, livenessProbeMs);
      call.then(resolve, reject).finally(() => clearInterval(probe));
    });
  }

  private request<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> & { abort: (error: Error) => void } {
    const url = new URL(path, this.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let abort: (error: Error) => void = () => {};
    const response = new Promise<T>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method,
          ca: this.ca,
          servername: this.servername,
          // A fresh connection per call: a kept-alive socket to a reclaimed node
          // would swallow the request and skip the connect timeout below.
          // With `connect`, no agent at all: an agent would dial by itself.
          agent: this.connect && url.protocol === 'http:' ? undefined : false,
          ...(this.connect && url.protocol === 'http:'
            ? {
                createConnection: (_options: unknown, done: (error: Error | null, socket: net.Socket) => void) => {
                  this.connect!(url.hostname, Number(url.port)).then(
                    socket => done(null, socket),
                    error => done(error, undefined as unknown as net.Socket),
                  );
                  return undefined;
                },
              }
            : {}),
          timeout: timeoutMs,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        res => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', c => (text += c));
          res.on('end', () => {
            const parsed = text ? JSON.parse(text) : {};
            if (res.statusCode === 200) resolve(parsed as T);
            else reject(new Error(`${method} ${path} on ${this.url}: ${res.statusCode} ${parsed.error ?? text}`));
          });
        },
      );
      request.on('socket', socket => {
        if (!socket.connecting) return;
        const { connectMs } = this.timeouts;
        const timer = setTimeout(() => request.destroy(new Error(`no connection within ${connectMs} ms`)), connectMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', error => reject(new AgentUnreachableError(this.url, error)));
      abort = error => request.destroy(error);
      request.end(payload);
    });
    return Object.assign(response, { abort: (error: Error) => abort(error) });
  }
}
