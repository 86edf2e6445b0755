/**
 * Entry point of the node agent process (the DaemonSet's container command).
 *
 *   FERRY_AGENT_TOKEN=… FERRY_CRIU="<loader> --library-path <dirs> <criu>" \
 *     tsx src/agent/main.ts --node <name> --port 7444 --images-dir /dev/shm/ferry-agent
 *
 * On a Kubernetes node, `--runc-root` (containerd's runc shim for Kubernetes keeps
 * its containers in /run/containerd/runc/k8s.io) lets it checkpoint containers with
 * the node's runc (`FERRY_RUNC`, default `runc`); `--criu-config` names a CRIU
 * configuration file with the node's settings (e.g. `network-lock nftables`).
 *
 * With FERRY_AGENT_TLS_CERT, FERRY_AGENT_TLS_KEY and FERRY_AGENT_TLS_CA (PEM file
 * paths, from a Secret) the API, the image stream and CRIU's page-server link are
 * all TLS. The certificate should carry the node's IP address as a subject
 * alternative name, since agents reach each other by IP.
 */
import { readFileSync } from 'node:fs';
import { NodeAgent } from './NodeAgent';

/** Port the agent listens on unless told otherwise. */
export const DEFAULT_AGENT_PORT = 7444;

function optionalFlag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

function flag(name: string, fallback?: string): string {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? process.argv[index + 1] : fallback;
  if (value === undefined) {
    throw new Error(`--${name} is required`);
  }
  return value;
}

function tlsFromEnvironment() {
  const { FERRY_AGENT_TLS_CERT: cert, FERRY_AGENT_TLS_KEY: key, FERRY_AGENT_TLS_CA: ca } = process.env;
  if (!cert || !key || !ca) {
    return {};
  }
  return {
    tls: { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca) },
    criuTls: { caFile: ca, certFile: cert, keyFile: key },
  };
}

async function main(): Promise<void> {
  const token = process.env.FERRY_AGENT_TOKEN;
  if (!token) {
    throw new Error('FERRY_AGENT_TOKEN must be set: the agent dumps processes, it must not be open');
  }
  const agent = new NodeAgent({
    node: flag('node'),
    port: Number(flag('port', String(DEFAULT_AGENT_PORT))),
    host: flag('host', '0.0.0.0'),
    imagesDir: flag('images-dir', '/dev/shm/ferry-agent'),
    criu: (process.env.FERRY_CRIU ?? 'criu').split(/\s+/).filter(Boolean),
    token,
    runc: optionalFlag('runc-root')
      ? { command: (process.env.FERRY_RUNC ?? 'runc').split(/\s+/).filter(Boolean), root: optionalFlag('runc-root')! }
      : undefined,
    criuConfigFile: optionalFlag('criu-config'),
    log: message => process.stderr.write(`ferry-agent: ${message}\n`),
    ...tlsFromEnvironment(),
  });
  const port = await agent.start();
  // The parent (a test harness, or the kubelet's probes) waits for this line.
  process.stdout.write(`ferry-agent listening on ${port}\n`);
  const shutdown = () => agent.stop().then(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch(error => {
  process.stderr.write(`ferry-agent: ${error?.message ?? error}\n`);
  process.exit(1);
});
