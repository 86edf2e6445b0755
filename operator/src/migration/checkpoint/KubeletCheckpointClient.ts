import http from 'node:http';
import https from 'node:https';

/** Seconds the kubelet may spend on one checkpoint before it gives up. */
export const KUBELET_CHECKPOINT_TIMEOUT_S = 60;
/** Extra time the HTTP call waits beyond the kubelet's own timeout. */
const CALL_SLACK_MS = 5_000;

/** How to reach the API server: its URL, and a bearer token or client certificate. */
export interface ApiServerAccess {
  server: string;
  token?: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** The container to checkpoint. */
export interface ContainerRef {
  node: string;
  namespace: string;
  pod: string;
  container: string;
}

/** Why the kubelet refused, in words an operator can act on. */
export class KubeletCheckpointError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'KubeletCheckpointError';
  }
}

/**
 * The kubelet's checkpoint API (`ContainerCheckpoint`, beta and on by default
 * since Kubernetes 1.30), reached through the API server's node proxy:
 * `POST /api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}`.
 *
 * The kubelet asks the runtime (CRI-O, or containerd 2.0+) to dump the container
 * with CRIU and writes a tar archive under
 * `/var/lib/kubelet/checkpoints/` on that node. Restoring it is the runtime's
 * side: the archive becomes an OCI image (annotated
 * `io.kubernetes.cri-o.annotations.checkpoint.name`), pushed to a registry, and a
 * pod on the target node runs that image; CRI-O and containerd 2.1+ restore
 * instead of starting. Where the runtime cannot, Ferry's node agent does the
 * whole move itself (see CheckpointDriver).
 */
export class KubeletCheckpointClient {
  constructor(private readonly access: ApiServerAccess) {}

  /** Checkpoints the container; resolves with the archive paths on the node. */
  async checkpoint(ref: ContainerRef, timeoutSeconds = KUBELET_CHECKPOINT_TIMEOUT_S): Promise<string[]> {
    const path =
      `/api/v1/nodes/${encodeURIComponent(ref.node)}/proxy/checkpoint/` +
      `${encodeURIComponent(ref.namespace)}/${encodeURIComponent(ref.pod)}/${encodeURIComponent(ref.container)}` +
      `?timeout=${timeoutSeconds}`;
    const { status, body } = await this.post(path, timeoutSeconds * 1000 + CALL_SLACK_MS);
    if (status === 200) {
      const items = (JSON.parse(body) as { items?: unknown }).items;
      if (!Array.isArray(items) || items.some(i => typeof i !== 'string')) {
        throw new KubeletCheckpointError(status, `unexpected kubelet answer: ${body.slice(0, 200)}`);
      }
      return items as string[];
    }
    throw new KubeletCheckpointError(status, explain(status, ref, body));
  }

  private post(path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.access.server);
    return new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          ca: this.access.ca,
          cert: this.access.cert,
          key: this.access.key,
          timeout: timeoutMs,
          headers: this.access.token ? { authorization: `Bearer ${this.access.token}` } : {},
        },
        res => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', c => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      request.on('timeout', () => request.destroy(new Error(`checkpoint call timed out after ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end();
    });
  }
}

function explain(status: number, ref: ContainerRef, body: string): string {
  const where = `${ref.namespace}/${ref.pod}/${ref.container} on ${ref.node}`;
  switch (status) {
    case 401:
    case 403:
      return `not allowed to checkpoint ${where}: the operator's ServiceAccount needs 'create' on 'nodes/proxy' (${body.trim()})`;
    case 404:
      return `no container ${where}, or the kubelet has the ContainerCheckpoint feature gate off (${body.trim()})`;
    case 500:
      return `the container runtime failed to checkpoint ${where}; does it support checkpointing (CRI-O 1.25+, containerd 2.0+) and is CRIU installed on the node? (${body.trim()})`;
    default:
      return `checkpoint of ${where} failed with HTTP ${status}: ${body.trim()}`;
  }
}
