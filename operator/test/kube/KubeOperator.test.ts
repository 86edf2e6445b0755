/**
 * Two replicas of the operator on a real cluster: one leads and acts; when it
 * stops in the middle of a migration, the other takes the lease and resumes the
 * migration from the phase the first one recorded.
 */
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import type { CapacityPool } from '../../src/core/model';
import { apiRequest, collectionPath } from '../../src/kube/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { OperatorMetrics } from '../../src/kube/OperatorMetrics';
import { MIGRATIONS, SPOT_POLICIES } from '../../src/kube/resources';
import type {
  MigrationDriver,
  MigrationStepContext,
} from '../../src/migration/MigrationDriver';
import { createFakeNodes, FakeNodeSpec } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const LEASE = { namespace: 'ferry-system', name: 'ferry-leader', leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 200 };

const FLEET: FakeNodeSpec[] = ['a', 'b', 'c'].flatMap(zone =>
  (['spot', 'on-demand'] as const).map(capacityType => ({
    name: `${capacityType}-${zone}`,
    capacityType,
    instanceType: 'm5.large' as const,
    zone: `us-east-1${zone}`,
  })),
);

const POOLS: CapacityPool[] = FLEET.map(node => ({
  instanceType: node.instanceType,
  zone: node.zone,
  capacityType: node.capacityType,
  priceUsdPerHour: node.capacityType === 'spot' ? 0.035 : 0.096,
  onDemandPriceUsdPerHour: 0.096,
  interruptionRisk: node.capacityType === 'spot' ? 0.05 : 0,
  allocatable: { cpuMillis: 2000, memoryMiB: 8192 },
  launchable: true,
}));

/** A valkey driver stand-in that records who ran which step; its transfer waits to be let through. */
class GatedDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  constructor(
    private readonly who: string,
    private readonly log: string[],
    private readonly gate: Promise<void>,
  ) {}
  async prepareTarget() {
    this.log.push(`${this.who}: prepareTarget`);
  }
  async transfer(ctx: MigrationStepContext) {
    this.log.push(`${this.who}: transfer`);
    await Promise.race([
      this.gate,
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('stopping'))),
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
  async cleanUp() {
    this.log.push(`${this.who}: cleanUp`);
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
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'sessions' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'sessions' } },
          template: {
            metadata: { labels: { app: 'sessions' } },
            spec: {
              nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'topology.kubernetes.io/zone',
                  whenUnsatisfiable: 'DoNotSchedule',
                  labelSelector: { matchLabels: { app: 'sessions' } },
                },
              ],
              containers: [
                { name: 'valkey', image: 'valkey/valkey:8', resources: { requests: { cpu: '500m', memory: '1Gi' } } },
              ],
            },
          },
        },
      },
    });
    await apiRequest(kc, 'POST', collectionPath(SPOT_POLICIES, NAMESPACE), {
      body: {
        apiVersion: FERRY_API_VERSION,
        kind: 'SpotPolicy',
        metadata: { name: 'sessions' },
        spec: { workloadRef: { kind: 'Deployment', name: 'sessions' } },
      },
    });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(operators.map(o => o.stop()));
    await cluster?.stop();
  });

  function operator(identity: string, driver: MigrationDriver): KubeOperator {
    const op = new KubeOperator({
      kubeConfig: cluster.kubeConfig(),
      identity,
      lease: LEASE,
      drivers: [driver],
      pools: async () => POOLS,
      metrics: new OperatorMetrics({ processMetrics: false }),
    });
    operators.push(op);
    return op;
  }

  async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise(resolve => setTimeout(resolve, 50));
    }
  }

  const migrations = async () =>
    (await apiRequest<{ items: Migration[] }>(cluster.kubeConfig(), 'GET', collectionPath(MIGRATIONS, NAMESPACE))).items;

  it('resumes in the new leader a migration the old leader was in the middle of', async () => {
    const steps: string[] = [];
    let letThrough!: () => void;
    const gate = new Promise<void>(resolve => (letThrough = resolve));
    const a = operator('operator-a', new GatedDriver('a', steps, new Promise(() => {})));
    const b = operator('operator-b', new GatedDriver('b', steps, gate));
    await a.start();
    await until('operator-a to lead', () => a.isLeader);
    await b.start();

    const member = await until('three members on spot', () => {
      const members = a.state.workloads()[0]?.view.members ?? [];
      return members.length === 3 && members.every(m => m.node && m.ready) ? members[0] : undefined;
    });
    await apiRequest(cluster.kubeConfig(), 'PATCH', `/api/v1/nodes/${member.node}`, {
      contentType: 'application/merge-patch+json',
      body: { spec: { taints: [{ key: 'aws-node-termination-handler/spot-itn', effect: 'NoSchedule' }] } },
    });
    await until('operator-a to be transferring', async () =>
      (await migrations()).find(m => m.status?.phase === 'Transferring'),
    );
    expect(steps).toEqual(['a: prepareTarget', 'a: transfer']);

    // The leader goes away mid-transfer; the standby takes the lease and resumes.
    await a.stop();
    await until('operator-b to lead', () => b.isLeader);
    letThrough();
    const done = await until('the migration to succeed', async () =>
      (await migrations()).find(m => m.status?.phase === 'Succeeded'),
    );
    expect(done.spec).toMatchObject({ pod: member.pod, sourceNode: member.node, reason: 'notice', driver: 'valkey' });
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
});
