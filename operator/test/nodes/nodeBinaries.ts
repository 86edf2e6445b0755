import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What a real node runs beside the kubelet and kube-proxy, all built by scripts/lib/nodes.sh. */
export const NODE_COMMANDS = [
  'containerd',
  'containerd-shim-runc-v2',
  'ctr',
  'runc',
  'bridge',
  'host-local',
  'loopback',
  'portmap',
  'coredns',
] as const;

/**
 * The directory holding the node binaries: `FERRY_NODE_BIN` when set, else where
 * scripts/lib/nodes.sh caches them. Throws, saying how to build them, when any is
 * missing: a test on real nodes never skips.
 */
export function nodeBinDir(): string {
  const cache =
    process.env.FERRY_CACHE ?? path.join(os.homedir(), '.cache/ferry');
  const dir = process.env.FERRY_NODE_BIN ?? path.join(cache, 'nodes/bin');
  const missing = NODE_COMMANDS.filter(command => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `The real nodes' binaries are missing from ${dir}: ${missing.join(
        ', ',
      )}. ` +
        `Build them (once; they are cached) with: ` +
        `bash -c 'source scripts/lib/system.sh && source scripts/lib/nodes.sh && ferry_node_binaries'`,
    );
  }
  return dir;
}
