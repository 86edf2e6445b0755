import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { CheckpointReport, ContainerInspection, RestoreReport } from './NodeAgent';
import type { HibernationRequest, HibernationStatus } from './ContainerHibernation';

/** How long the operator waits for one agent call (a dump and stream of a large process included). */
export const AGENT_CALL_TIMEOUT_MS = 5 * 60_000;
/**
 * How long a connection to an agent may take. A reclaimed node drops packets
 * rather than refusing them, and waiting out TCP's SYN retries (two minutes)
 * would eat a whole AWS notice.
 */
export const AGENT_CONNECT_TIMEOUT_MS = 2_000;

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
  ) {}

  /** Agent and CRIU version. */
  health(): Promise<{ node: string; criu: string }> {
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
    return this.call('POST', `/v1/checkpoints/${id}`, { pid, targetUrl, pageServerPort, address });
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
    return this.call('POST', `/v1/checkpoints/${id}`, { containerId, targetUrl, pageServerPort, lazy });
  }

  /** Lets a container paused by a checkpoint run on (rollback). */
  resumeContainer(id: string, containerId: string): Promise<{ containerId: string; status: string }> {
    return this.call('POST', `/v1/containers/${id}/resume`, { containerId });
  }

  /** Kills a paused container whose state has moved, without letting it run again. */
  retireContainer(id: string, containerId: string): Promise<{ containerId: string; status: string }> {
    return this.call('POST', `/v1/containers/${id}/retire`, { containerId });
  }

  /** Starts a page server for an incoming dump; resolves with its port. */
  startPageServer(id: string): Promise<{ id: string; port: number }> {
    return this.call('POST', `/v1/page-servers/${id}`);
  }

  /** Restores the images (once) on this agent's node. */
  restore(id: string): Promise<RestoreReport> {
    return this.call('POST', `/v1/restores/${id}`);
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
    return this.call('POST', `/v1/hibernations/${id}/wake`);
  }

  /** Stops watching a running container (its counters go); refused while it sleeps. */
  stopWatching(id: string): Promise<{ id: string; watched: false }> {
    return this.call('DELETE', `/v1/hibernations/${id}`);
  }

  /** Deletes the images: they hold the process's memory, secrets included. */
  deleteImages(id: string): Promise<void> {
    return this.call('DELETE', `/v1/images/${id}`);
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
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
          timeout: AGENT_CALL_TIMEOUT_MS,
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
        const timer = setTimeout(
          () => request.destroy(new Error(`no connection within ${AGENT_CONNECT_TIMEOUT_MS} ms`)),
          AGENT_CONNECT_TIMEOUT_MS,
        );
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.on('timeout', () => request.destroy(new Error('timed out')));
      request.on('error', error => reject(new AgentUnreachableError(this.url, error)));
      request.end(payload);
    });
  }
}
