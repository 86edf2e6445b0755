/**
 * Starts a control plane and three real nodes and keeps them up until Ctrl-C, for
 * working by hand with kubectl:
 *
 *   cd operator && yarn tsx test/nodes/startNodes.ts
 *
 * It prints the KUBECONFIG to export. Everything it started stops with it.
 */
import { RealNodeCluster } from './RealNodeCluster';
import { nodeTestImages } from './nodeTestImages';

async function main() {
  const started = Date.now();
  const images = nodeTestImages();
  const cluster = await RealNodeCluster.start({
    images: [images.pause.tar, images.valkey.tar],
    sandboxImage: images.pause.name,
  });
  process.stdout.write(
    `control plane and ${cluster.nodes.length} real nodes Ready in ${
      Date.now() - started
    } ms\n` +
      `export KUBECONFIG=${cluster.kubeconfigPath}\n` +
      `kubectl is at ${cluster.controlPlane.binDir}/kubectl; node logs are in ${cluster.nodes[0].dir}/..\n`,
  );
  const stop = () => {
    process.stdout.write('stopping\n');
    cluster.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch(error => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
