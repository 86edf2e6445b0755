/**
 * The chart's access to Secrets for Valkey credentials, asked of a real API
 * server: `get` on Secrets in the namespaces `valkey.secretNamespaces` lists,
 * nothing elsewhere, and never `list` or `watch`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { helmBinary } from './helmBinary';
import { LocalControlPlane } from './LocalControlPlane';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const CHART = path.resolve(__dirname, '../../chart');
const NAMESPACE = 'ferry-system';
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:ferry`;

describe("the chart's access to Secrets for Valkey credentials", () => {
  let cluster: LocalControlPlane;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    for (const name of ['shop', 'cart', 'payments']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    execFileSync(
      helmBinary(),
      [
        'install',
        'ferry',
        CHART,
        '--namespace',
        NAMESPACE,
        '--create-namespace',
        '--set',
        'valkey.secretNamespaces={shop,cart}',
        '--kubeconfig',
        cluster.kubeconfigPath,
      ],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          HELM_CACHE_HOME: path.join(cluster.workDir, 'helm/cache'),
          HELM_CONFIG_HOME: path.join(cluster.workDir, 'helm/config'),
          HELM_DATA_HOME: path.join(cluster.workDir, 'helm/data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it.each([
    ['get', 'shop', 'yes'],
    ['get', 'cart', 'yes'],
    ['get', 'payments', 'no'],
    ['get', NAMESPACE, 'no'],
    ['list', 'shop', 'no'],
    ['watch', 'shop', 'no'],
    ['update', 'shop', 'no'],
  ])('lets the operator %s secrets in %s: %s', (verb, namespace, answer) => {
    let said: string;
    try {
      said = cluster.kubectl([
        'auth',
        'can-i',
        verb,
        'secrets',
        '-n',
        namespace,
        '--as',
        SERVICE_ACCOUNT,
      ]);
    } catch (error) {
      // kubectl auth can-i exits 1 when the answer is no.
      said = (error as { stdout: string }).stdout;
    }
    expect(said.trim()).toBe(answer);
  });
});
