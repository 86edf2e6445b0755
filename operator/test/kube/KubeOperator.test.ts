/**
 * Two replicas of the operator on a real cluster: one leads and acts; when it
 * stops in the middle of a migration, the other takes the lease and resumes the
 * migration from the phase the first one recorded.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { CapacityPool } from '../../src/core/model';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import type {
  MigrationDriver,
  MigrationStepContext,
} from '../../src/migration/MigrationDriver';
import { createFakeNodes, FakeNodeSpec, zonalFleet } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { until } from './until';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const LEASE = {
  namespace: 'ferry-system',
  name: 'ferry-leader',
  leaseDurationMs: 2_000,
  renewDeadlineMs: 1_500,
  retryPeriodMs: 200,
};

/** Two spot nodes and one on-demand node in each of three zones. */
const FLEET: FakeNodeSpec[] = zonalFleet();

const POOLS: CapacityPool[] = FLEET.filter(
  node => !node.name.startsWith('spot-2'),
).map(node => ({
  instanceType: node.instanceType,
  zone: node.zone,
  capacityType: node.capacityType,
  priceUsdPerHour: node.capacityType === 'spot' ? 0.035 : 0.096,
  onDemandPriceUsdPerHour: 0.096,
  interruptionRisk: node.capacityType === 'spot' ? 0.05 : 0,
  allocatable: { cpuMillis: 2000, memoryMiB: 8192 },
  launchable: true,
}));

/**
 * A valkey driver stand-in that records who ran which step; its transfer waits to
 * be let through, and its cleanup retires the source pod as a real driver does.
 */
class GatedDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  constructor(
    private readonly who: string,
    private readonly log: string[],
    private readonly gate: Promise<void>,
    private readonly kubeConfig: KubeConfig,
  ) {}
  async prepareTarget() {
    this.log.push(`${this.who}: prepareTarget`);
  }
  async transfer(ctx: MigrationStepContext) {
    this.log.push(`${this.who}: transfer`);
    await Promise.race([
      this.gate,
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () =>
          reject(new Error('stopping')),
        ),
      ),
    ]);
    ctx.addBytesMoved(1 << 20);
  }
  async switchOver(ctx: MigrationStepContext) {
    this.log.push(`${this.who}: switchOver`);
    ctx.recordWritePause(2);
  }
  async verify() {
    this.log.push(`${this.who}: verify`);
  }
  async cleanUp(ctx: MigrationStepContext) {
    this.log.push(`${this.who}: cleanUp`);
    const { namespace } = ctx.migration.metadata;
    await apiRequest(
      this.kubeConfig,
      'DELETE',
      `/api/v1/namespaces/${namespace}/pods/${ctx.migration.spec.pod}`,
    ).catch(error => {
      if ((error as { code?: number }).code !== 404) throw error;
    });
  }
  async rollBack() {
    this.log.push(`${this.who}: rollBack`);
  }
}

describe('two operator replicas on a real cluster', () => {
  let cluster: LocalControlPlane;
  const operators: KubeOperator[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    for (const name of [NAMESPACE, LEASE.namespace]) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    await createOptedInSessions(kc, NAMESPACE);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(operators.map(o => o.stop()));
    await cluster?.stop();
  });

  function operator(
    identity: string,
    driver: MigrationDriver,
    webhook = false,
  ): KubeOperator {
    const op = new KubeOperator({
      kubeConfig: cluster.kubeConfig(),
      identity,
      lease: LEASE,
      drivers: [driver],
      pools: async () => POOLS,
      metrics: new OperatorMetrics({ processMetrics: false }),
      webhook: webhook
        ? {
            tls: cluster.issueServingCertificate(identity),
            host: '127.0.0.1',
            port: 0,
          }
        : undefined,
    });
    operators.push(op);
    return op;
  }

  const migrations = async () =>
    await migrationsIn(cluster.kubeConfig(), NAMESPACE);

  it('resumes in the new leader a migration the old leader was in the middle of', async () => {
    const steps: string[] = [];
    let letThrough!: () => void;
    const gate = new Promise<void>(resolve => (letThrough = resolve));
    const a = operator(
      'operator-a',
      new GatedDriver('a', steps, new Promise(() => {}), cluster.kubeConfig()),
    );
    const b = operator(
      'operator-b',
      new GatedDriver('b', steps, gate, cluster.kubeConfig()),
    );
    await a.start();
    await until('operator-a to lead', () => a.isLeader);
    await b.start();

    const member = await until('three members on spot', () => {
      const members = a.state.workloads()[0]?.view.members ?? [];
      return members.length === 3 && members.every(m => m.node && m.ready)
        ? members[0]
        : undefined;
    });
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${member.node}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          spec: {
            taints: [
              {
                key: 'aws-node-termination-handler/spot-itn',
                effect: 'NoSchedule',
              },
            ],
          },
        },
      },
    );
    // The phase is recorded before its step runs: wait for the step itself.
    await until('operator-a to be transferring', () =>
      steps.includes('a: transfer'),
    );
    expect(steps).toEqual(['a: prepareTarget', 'a: transfer']);

    // The leader goes away mid-transfer; the standby takes the lease and resumes.
    await a.stop();
    await until('operator-b to lead', () => b.isLeader);
    letThrough();
    const done = await until('the migration to succeed', async () =>
      (await migrations()).find(m => m.status?.phase === 'Succeeded'),
    );
    expect(done.spec).toMatchObject({
      pod: member.pod,
      sourceNode: member.node,
      reason: 'notice',
      driver: 'valkey',
    });
    expect(done.status).toMatchObject({ bytesMoved: 1 << 20, writePauseMs: 2 });
    expect(steps).toEqual([
      'a: prepareTarget',
      'a: transfer',
      'b: transfer',
      'b: switchOver',
      'b: verify',
      'b: cleanUp',
    ]);
    expect(await migrations()).toHaveLength(1);
    expect(await b.metrics.registry.metrics()).toContain('ferry_leader 1');
  });

  it('turns kubectl drain of a member into a migration, served by a standby webhook', async () => {
    const steps: string[] = [];
    // operator-b leads (from the test before); operator-c stands by and serves the webhook.
    const c = operator(
      'operator-c',
      new GatedDriver('c', steps, Promise.resolve(), cluster.kubeConfig()),
      true,
    );
    await c.start();
    expect(c.isLeader).toBe(false);
    await apiRequest(
      cluster.kubeConfig(),
      'POST',
      '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      {
        body: {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingWebhookConfiguration',
          metadata: { name: 'ferry' },
          webhooks: [
            {
              name: 'evictions.ferry.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'NoneOnDryRun',
              failurePolicy: 'Ignore',
              timeoutSeconds: 2,
              clientConfig: {
                url: `https://127.0.0.1:${c.webhookPort}/validate-evictions`,
                caBundle: Buffer.from(cluster.caPem).toString('base64'),
              },
              rules: [
                {
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods/eviction'],
                  operations: ['CREATE'],
                },
              ],
            },
          ],
        },
      },
    );
    const member = await until('three members on spot, none moving', () => {
      const members = c.state.workloads()[0]?.view.members ?? [];
      const onHealthyNodes = members.filter(m => {
        const node = c.state.nodes.get(m.node ?? '');
        return node && !node.spec?.taints?.length && !node.spec?.unschedulable;
      });
      return members.length === 3 && members.every(m => m.ready)
        ? onHealthyNodes[0]
        : undefined;
    });

    const { stdout, stderr } = await promisify(execFile)(
      path.join(cluster.binDir, 'kubectl'),
      ['drain', member.node!, '--ignore-daemonsets', '--timeout=60s'],
      { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } },
    );
    expect(stdout).toContain(`node/${member.node} drained`);
    expect(stderr).toContain(`ferry is moving ${NAMESPACE}/${member.pod}`);
    const moved = (await migrations()).find(m => m.spec.pod === member.pod);
    expect(moved?.spec).toMatchObject({
      reason: 'drain',
      sourceNode: member.node,
    });
    expect(moved?.status?.phase).toBe('Succeeded');
    // The leader ran it; the standby only answered the evictions.
    expect(steps).toEqual([]);
  }, 120_000);
});
