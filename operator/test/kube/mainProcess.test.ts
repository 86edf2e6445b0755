/**
 * The operator's process (`src/main.ts`), as the chart's Deployment runs it, on a
 * real cluster: it reads a configuration file and KUBECONFIG, becomes ready on
 * its metrics port, leads through the Lease, turns an AWS Node Termination
 * Handler taint on a member's node into a Migration (which, for the volume
 * method on a Deployment's member, rolls back saying that it moves StatefulSet
 * members only), and on
 * SIGTERM exits 0 having released the Lease. A configuration with a bad value
 * stops it at start with a message naming the key.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { MIGRATIONS } from '../../src/kube/client/resources';
import { createFakeNodes, standardFleet } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { eventually } from './until';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(90_000);

const TSX = path.resolve(__dirname, '../../../node_modules/.bin/tsx');
const MAIN = path.resolve(__dirname, '../../src/main.ts');
const NAMESPACE = 'shop';
const LEASE_NAMESPACE = 'ferry-system';
const LEASE_NAME = 'ferry-test-leader';
const IDENTITY = 'ferry-operator-0';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** A child process of the operator, with everything it printed. */
class OperatorProcess {
  output = '';
  readonly exited: Promise<Exit>;
  private readonly child: ChildProcess;

  constructor(kubeconfig: string, configFile: string) {
    this.child = spawn(
      TSX,
      [MAIN, `--config=${configFile}`, '--bind-address=127.0.0.1'],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfig,
          POD_NAME: IDENTITY,
          POD_NAMESPACE: LEASE_NAMESPACE,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stdout!.on('data', chunk => (this.output += chunk));
    this.child.stderr!.on('data', chunk => (this.output += chunk));
    this.exited = new Promise(resolve =>
      this.child.on('exit', (code, signal) =>
        resolve({ code, signal, output: this.output }),
      ),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

describe('the operator process on a real cluster', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let workDir: string;
  let metricsPort: number;
  let operator: OperatorProcess | undefined;

  function writeConfig(name: string, text: string): string {
    const file = path.join(workDir, name);
    fs.writeFileSync(file, text);
    return file;
  }

  beforeAll(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-main-'));
    metricsPort = await freePort();
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, standardFleet());
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await core.createNamespace({
      body: { metadata: { name: LEASE_NAMESPACE } },
    });
    await createOptedInSessions(kc, NAMESPACE, { migration: 'volume' });
  }, 180_000);

  afterAll(async () => {
    if (operator?.running) {
      operator.kill('SIGKILL');
      await operator.exited;
    }
    await cluster?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  async function lease() {
    return apiRequest<{ spec: { holderIdentity?: string } }>(
      cluster.kubeConfig(),
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases/${LEASE_NAME}`,
    );
  }

  it('refuses a configuration with a bad value, naming the key', async () => {
    const file = writeConfig(
      'bad.yaml',
      'leaderElection:\n  leaseDurationSeconds: -1\nwebhook:\n  enabled: false\n',
    );
    const exit = await new OperatorProcess(cluster.kubeconfigPath, file).exited;
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(exit.output).toContain('leaderElection.leaseDurationSeconds');
    expect(exit.output).toContain(file);
  });

  it('is the same in the bundle the image runs (yarn build:main)', async () => {
    // The build:main script's esbuild, the one tsx ships.
    const esbuild = require(require.resolve('esbuild', {
      paths: [require.resolve('tsx/package.json')],
    }));
    const bundle = path.join(workDir, 'main.cjs');
    await esbuild.build({
      entryPoints: [MAIN],
      bundle: true,
      platform: 'node',
      target: 'node20',
      outfile: bundle,
      logLevel: 'warning',
    });
    const file = writeConfig('bad-port.yaml', 'metrics:\n  port: eighty\n');
    const exit = await new Promise<{ code: number | null; output: string }>(
      resolve => {
        const child = execFile(
          process.execPath,
          [bundle, `--config=${file}`],
          { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } },
          (_error, stdout, stderr) =>
            resolve({ code: child.exitCode, output: stdout + stderr }),
        );
      },
    );
    expect(exit.code).toBe(2);
    expect(exit.output).toContain(
      'metrics.port must be a port number, not "eighty"',
    );
  });

  it('becomes ready on its metrics port and takes the lease', async () => {
    const file = writeConfig(
      'config.yaml',
      [
        'leaderElection:',
        `  leaseName: ${LEASE_NAME}`,
        '  leaseDurationSeconds: 4',
        '  renewDeadlineSeconds: 3',
        '  retryPeriodSeconds: 0.5',
        'webhook:',
        '  enabled: false',
        // Without the webhook the scheduler places the members, and the
        // re-placement controller would move them to where the policy says
        // (reason 'policy') before the taint below: off, so the only move
        // this test sees is the notice's.
        'replacement:',
        '  enabled: false',
        'metrics:',
        `  port: ${metricsPort}`,
        '',
      ].join('\n'),
    );
    operator = new OperatorProcess(cluster.kubeconfigPath, file);
    const running = operator;
    await eventually(
      async () => {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
        if (response.status !== 200)
          throw new Error(`/readyz answered ${response.status}`);
      },
      { detail: () => running.output },
    );
    const healthz = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    expect(healthz.status).toBe(200);
    await eventually(
      async () => {
        const holder = (await lease()).spec.holderIdentity;
        if (holder !== IDENTITY) throw new Error(`lease held by ${holder}`);
      },
      { detail: () => running.output },
    );
  });

  it('turns a Node Termination Handler taint into a Migration, which fails naming the missing driver', async () => {
    const running = operator!;
    const members = await eventually(
      async () => {
        const pods = (
          await core.listNamespacedPod({
            namespace: NAMESPACE,
            labelSelector: 'app=sessions',
          })
        ).items;
        const ready = pods.filter(
          pod =>
            pod.spec?.nodeName &&
            pod.status?.conditions?.some(
              c => c.type === 'Ready' && c.status === 'True',
            ),
        );
        if (ready.length !== 3)
          throw new Error(`${ready.length} of 3 members ready`);
        return ready;
      },
      { detail: () => running.output },
    );
    const member = members[0];
    const node = member.spec!.nodeName!;
    const pod = member.metadata!.name!;
    await apiRequest(cluster.kubeConfig(), 'PATCH', `/api/v1/nodes/${node}`, {
      contentType: 'application/merge-patch+json',
      body: {
        spec: {
          taints: [
            {
              key: 'aws-node-termination-handler/spot-itn',
              value: 'evt-1',
              effect: 'NoSchedule',
            },
          ],
        },
      },
    });
    const migration = await eventually(
      async () => {
        const found = (
          await migrationsIn(cluster.kubeConfig(), NAMESPACE)
        ).find(m => m.spec.pod === pod);
        if (!found) throw new Error(`no Migration for ${pod}`);
        return found;
      },
      { detail: () => running.output },
    );
    expect(migration.spec).toMatchObject({
      workloadRef: { kind: 'Deployment', name: 'sessions' },
      pod,
      sourceNode: node,
      reason: 'notice',
      driver: 'volume',
    });
    const finished = await eventually(
      async () => {
        const current = await apiRequest<Migration>(
          cluster.kubeConfig(),
          'GET',
          `${collectionPath(MIGRATIONS, NAMESPACE)}/${migration.metadata.name}`,
        );
        const phase = current.status?.phase;
        if (phase !== 'RolledBack' && phase !== 'Failed')
          throw new Error(`Migration is ${phase}`);
        return current;
      },
      { detail: () => running.output },
    );
    // Nothing was moved: the member stays where it was, and the reason says why.
    expect(finished.status?.phase).toBe('RolledBack');
    expect(finished.status?.message).toContain(
      'the volume method moves StatefulSet members',
    );
    expect(finished.status?.bytesMoved).toBe(0);
    expect(running.running).toBe(true);
  });

  it('stops on SIGTERM with exit status 0, releasing the lease', async () => {
    const running = operator!;
    running.kill('SIGTERM');
    const exit = await running.exited;
    expect({ code: exit.code, signal: exit.signal }).toEqual({
      code: 0,
      signal: null,
    });
    expect(exit.output).toMatch(/SIGTERM: stopping[\s\S]*stopped/);
    expect((await lease()).spec.holderIdentity ?? '').toBe('');
  });
});
