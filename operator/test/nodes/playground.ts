/**
 * The playground behind `npm run playground`: a cluster of real nodes (RealNodeCluster)
 * with Ferry installed by its chart from its own images, kept running in the background
 * for a person to type the walkthrough's commands against.
 *
 *   tsx test/nodes/playground.ts serve <state-dir>
 *
 * runs in the foreground until SIGTERM or SIGINT, then tears everything down.
 * scripts/ferry `playground` starts it detached and `playground down` stops it. It writes
 * into <state-dir>: `kubeconfig`, `status` (`starting`, `ready` or `failed: <why>`) and
 * its log goes where the script points stdout.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ferryImages } from '../../src/images/build';
import { imageSpec } from '../../src/images/images';
import { helmBinary } from '../kube/helmBinary';
import { RealNodeCluster } from './RealNodeCluster';

/** The chart's release and namespace, as the README's commands name them. */
export const PLAYGROUND_RELEASE = 'ferry';
export const PLAYGROUND_NAMESPACE = 'ferry-system';
/** How long `helm install --wait` may take on a loaded two-core machine. */
const HELM_WAIT = '600s';

const CHART = path.resolve(__dirname, '../../chart');

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} playground: ${message}\n`);
}

async function serve(stateDir: string): Promise<void> {
  fs.mkdirSync(stateDir, { recursive: true });
  const status = (text: string) =>
    fs.writeFileSync(path.join(stateDir, 'status'), `${text}\n`);
  status('starting');
  const started = Date.now();
  let cluster: RealNodeCluster | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await cluster?.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
    log('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const images = await ferryImages();
    log(`images ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    cluster = await RealNodeCluster.start({
      images: Object.values(images),
      sandboxImage: imageSpec('pause').references[0],
      controlPlane: { kwok: false },
    });
    log(
      `${cluster.nodes.length} nodes Ready after ${(
        (Date.now() - started) /
        1000
      ).toFixed(1)} s`,
    );
    fs.copyFileSync(cluster.kubeconfigPath, path.join(stateDir, 'kubeconfig'));
    const helmHome = path.join(stateDir, 'helm');
    execFileSync(
      helmBinary(),
      [
        'install',
        PLAYGROUND_RELEASE,
        CHART,
        '--namespace',
        PLAYGROUND_NAMESPACE,
        '--create-namespace',
        '--wait',
        '--timeout',
        HELM_WAIT,
        '--kubeconfig',
        cluster.kubeconfigPath,
      ],
      {
        env: {
          ...process.env,
          HELM_CACHE_HOME: path.join(helmHome, 'cache'),
          HELM_CONFIG_HOME: path.join(helmHome, 'config'),
          HELM_DATA_HOME: path.join(helmHome, 'data'),
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    log(
      `Ferry installed by its chart; ready after ${(
        (Date.now() - started) /
        1000
      ).toFixed(1)} s`,
    );
    status('ready');
  } catch (error) {
    log(`failed: ${(error as Error).stack ?? error}`);
    status(`failed: ${(error as Error).message.split('\n')[0]}`);
    await cluster?.stop();
    process.exit(1);
  }
  // Stays up until told to stop.
  setInterval(() => {}, 1 << 30);
}

if (require.main === module) {
  const [command, stateDir] = process.argv.slice(2);
  if (command !== 'serve' || !stateDir) {
    process.stderr.write(
      'usage: tsx test/nodes/playground.ts serve <state-dir>\n',
    );
    process.exit(2);
  }
  serve(path.resolve(stateDir)).catch(error => {
    process.stderr.write(`playground: ${error?.stack ?? error}\n`);
    process.exit(1);
  });
}
