import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The commands a local control plane runs, all built by scripts/lib/controlplane.sh. */
export const CONTROL_PLANE_COMMANDS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
] as const;

/** One of the control plane's commands. */
export type ControlPlaneCommand = (typeof CONTROL_PLANE_COMMANDS)[number];

const REPO_ROOT = path.resolve(__dirname, '../../..');
const TOOLS_MODULE = path.join(REPO_ROOT, 'e2e-tests/controlplane/go.mod');

/** The Kubernetes version the tools module pins (`v1.35.4`); one home: its go.mod. */
export function controlPlaneVersion(): string {
  const goMod = fs.readFileSync(TOOLS_MODULE, 'utf8');
  const match = goMod.match(/^\s*k8s\.io\/kubernetes\s+(v\S+)/m);
  if (!match) {
    throw new Error(`${TOOLS_MODULE} does not require k8s.io/kubernetes`);
  }
  return match[1];
}

/**
 * The directory holding the control plane's binaries: `FERRY_CONTROLPLANE_BIN` when
 * set, else where scripts/lib/controlplane.sh caches them. Throws, saying how to
 * build them, when any is missing: a test on a real control plane never skips.
 */
export function controlPlaneBinDir(): string {
  const cache =
    process.env.FERRY_CACHE ?? path.join(os.homedir(), '.cache/ferry');
  const dir =
    process.env.FERRY_CONTROLPLANE_BIN ??
    path.join(cache, 'controlplane', controlPlaneVersion(), 'bin');
  const missing = CONTROL_PLANE_COMMANDS.filter(command => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `The local control plane's binaries are missing from ${dir}: ${missing.join(
        ', ',
      )}. ` +
        `Build them (once; they are cached) with: ` +
        `bash -c 'source scripts/lib/controlplane.sh && ferry_controlplane_binaries'`,
    );
  }
  return dir;
}
