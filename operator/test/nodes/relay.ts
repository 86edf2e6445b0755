/**
 * A byte relay between network namespaces, run as its own process (`node relay.ts '<spec>'`,
 * Node strips the types) inside the namespace it should listen or dial in.
 *
 * The real nodes live in network namespaces of their own, and the machine's own namespace
 * holds no address of theirs: it talks to them only over Unix sockets, which belong to the
 * filesystem and so cross namespaces. A relay is a separate process, not a server inside
 * the test, because the test blocks its event loop (execFileSync of kubectl) while the
 * API server needs these paths to reach a kubelet.
 *
 * The spec is JSON: `forwards`, each `{ listen, connect }` with endpoints
 * `{ host, port }` or `{ path }`, and `connectProxy`, a Unix socket path where an
 * HTTP CONNECT proxy dials targets from this namespace (the API server's egress to the
 * cluster, and the tests' way to reach a pod). It prints `ready` once everything listens.
 */
import fs from 'node:fs';
import net from 'node:net';

type Endpoint = { host: string; port: number } | { path: string };

interface RelaySpec {
  forwards?: { listen: Endpoint; connect: Endpoint }[];
  connectProxy?: string;
}

/** How long a CONNECT request's header may take to arrive, and a dial to succeed. */
const CONNECT_TIMEOUT_MS = 10_000;
/** A CONNECT request's header is one line and a Host line; more is not a request. */
const MAX_HEADER_BYTES = 8192;

function listen(endpoint: Endpoint, onSocket: (socket: net.Socket) => void) {
  const server = net.createServer({ pauseOnConnect: true }, onSocket);
  return new Promise<net.Server>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in endpoint) {
      fs.rmSync(endpoint.path, { force: true });
      server.listen(endpoint.path, () => resolve(server));
    } else {
      server.listen(endpoint.port, endpoint.host, () => resolve(server));
    }
  });
}

function pipe(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const close = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', close).on('close', close);
  b.on('error', close).on('close', close);
  a.resume();
}

function forward(socket: net.Socket, to: Endpoint): void {
  const upstream =
    'path' in to ? net.connect(to.path) : net.connect(to.port, to.host);
  upstream.setNoDelay(true);
  socket.setNoDelay?.(true);
  pipe(socket, upstream);
}

/** Reads `CONNECT host:port HTTP/1.1 ...\r\n\r\n`, dials it, answers 200, then relays. */
function connectProxy(socket: net.Socket): void {
  let header = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
  const onData = (chunk: Buffer) => {
    header = Buffer.concat([header, chunk]);
    const end = header.indexOf('\r\n\r\n');
    if (end < 0) {
      if (header.length > MAX_HEADER_BYTES) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    // The header is here; from now on the dial's own timeout answers (502).
    // Left running, this timer would race it and close the client's socket
    // without a word when a dial to a dead node outlasts it.
    clearTimeout(timer);
    const rest = header.subarray(end + 4);
    const match = /^CONNECT (\[[^\]]+\]|[^\s:]+):(\d+) HTTP\/1\.[01]\r\n/.exec(
      header.subarray(0, end + 2).toString('latin1'),
    );
    if (!match) {
      socket.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
      return;
    }
    const host = match[1].replace(/^\[|\]$/g, '');
    const upstream = net.connect(Number(match[2]), host);
    upstream.setTimeout(CONNECT_TIMEOUT_MS, () =>
      upstream.destroy(new Error('timeout')),
    );
    upstream.once('error', error => {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\n\r\n${error.message}`);
    });
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      upstream.removeAllListeners('error');
      upstream.setNoDelay(true);
      socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (rest.length > 0) upstream.write(rest);
      pipe(socket, upstream);
    });
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  socket.resume();
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as RelaySpec;
  for (const { listen: at, connect } of spec.forwards ?? []) {
    await listen(at, socket => forward(socket, connect));
  }
  if (spec.connectProxy)
    await listen({ path: spec.connectProxy }, connectProxy);
  process.stdout.write('ready\n');
}

main().catch(error => {
  process.stderr.write(`relay: ${error.stack ?? error}\n`);
  process.exit(1);
});
