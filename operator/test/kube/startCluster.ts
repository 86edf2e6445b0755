/**
 * Starts a local control plane with the standard fake fleet and keeps it up until
 * Ctrl-C, for working by hand with kubectl:
 *
 *   cd operator && yarn tsx test/kube/startCluster.ts
 *
 * It prints the KUBECONFIG to export. Everything it started stops with it.
 */
import { createFakeNodes, standardFleet } from './fakeNodes';
import { LocalControlPlane } from './LocalControlPlane';

async function main() {
  const started = Date.now();
  const cluster = await LocalControlPlane.start();
  const nodes = await createFakeNodes(cluster.kubeConfig(), standardFleet());
  process.stdout.write(
    `local control plane up in ${Date.now() - started} ms with ${
      nodes.length
    } fake nodes\n` +
      `export KUBECONFIG=${cluster.kubeconfigPath}\n` +
      `kubectl is at ${cluster.binDir}/kubectl; logs are in ${cluster.workDir}\n`,
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
