import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HELM_SCRIPT = path.resolve(__dirname, '../../../scripts/lib/helm.sh');

/**
 * The helm binary scripts/lib/helm.sh builds (its version has one home, that
 * script), or `FERRY_HELM` when set. Throws, saying how to build it, when missing.
 */
export function helmBinary(): string {
  const version = fs
    .readFileSync(HELM_SCRIPT, 'utf8')
    .match(/^FERRY_HELM_VERSION=(\S+)$/m)?.[1];
  const cache =
    process.env.FERRY_CACHE ?? path.join(os.homedir(), '.cache/ferry');
  const helm =
    process.env.FERRY_HELM ??
    path.join(cache, 'helm', `${version}`, 'bin', 'helm');
  try {
    fs.accessSync(helm, fs.constants.X_OK);
  } catch {
    throw new Error(
      `helm is missing at ${helm}. Build it (once; it is cached) with: ` +
        `bash -c 'source scripts/lib/helm.sh && ferry_helm'`,
    );
  }
  return helm;
}
