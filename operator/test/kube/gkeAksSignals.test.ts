/**
 * GKE's and AKS's signs on nodes become Migrations on a real cluster: nodes
 * labelled as GKE preemptible VMs count as spot, and GKE's
 * `cloud.google.com/impending-node-termination` taint and AKS's
 * `PreemptScheduled` node condition (node-problem-detector, from Azure
 * Scheduled Events) are 30-second termination notices. One cluster holds a GKE
 * node pool and an AKS node pool side by side, each with an opted-in Deployment
 * pinned to it, so that one control plane serves both.
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  V1Node,
} from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { FERRY_API_VERSION } from '../../src/api/v1alpha1';
import { TERMINATION_NOTICE_MS } from '../../src/cloud/CloudProvider';
import { NODE_LABELS, nodeLabelsFor } from '../../src/cloud/nodeLabels';
import type { CapacityPool } from '../../src/core/model';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { SPOT_POLICIES } from '../../src/kube/client/resources';
import type { MigrationDriver } from '../../src/migration/MigrationDriver';
import { installFerryCrds } from './ferryCrds';
import { KWOK_NODE_ANNOTATION, LocalControlPlane } from './LocalControlPlane';
import { until } from './until';
import { startOperator } from './startOperator';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** The label that pins each workload to its cloud's node pool. */
const POOL_LABEL = 'ferry.dev/test-pool';
/** Slack for the time between the test's write and the operator seeing it. */
const SEEN_SLACK_MS = 5_000;

interface CloudNodeSpec {
  name: string;
  pool: 'gke' | 'aks';
  spot: boolean;
  zone: string;
  instanceType: string;
  labels: Record<string, string>;
}

/**
 * Per cloud: three spot nodes over three zones for the members, one more spot
 * node and one standard node as places to move to.
 */
function fleet(): CloudNodeSpec[] {
  const nodes: CloudNodeSpec[] = [];
  const zones = {
    gke: ['us-central1-a', 'us-central1-b', 'us-central1-c'],
    aks: ['eastus-1', 'eastus-2', 'eastus-3'],
  };
  for (const pool of ['gke', 'aks'] as const) {
    const instanceType = pool === 'gke' ? 'e2-standard-2' : 'Standard_D2s_v5';
    const region = pool === 'gke' ? 'us-central1' : 'eastus';
    const specs = [...zones[pool], zones[pool][0]].map((zone, i) => ({
      zone,
      spot: true,
      name: `${pool}-spot-${i}`,
    }));
    specs.push({
      zone: zones[pool][1],
      spot: false,
      name: `${pool}-standard-0`,
    });
    for (const { zone, spot, name } of specs) {
      const labels =
        pool === 'gke'
          ? {
              // GKE's preemptible VMs: the label Ferry must read as spot.
              ...nodeLabelsFor('gcp', 'on-demand', instanceType, zone, region),
              ...(spot ? { [NODE_LABELS.gkePreemptible]: 'true' } : {}),
            }
          : nodeLabelsFor(
              'azure',
              spot ? 'spot' : 'on-demand',
              instanceType,
              zone,
              region,
            );
      nodes.push({ name, pool, spot, zone, instanceType, labels });
    }
  }
  return nodes;
}

function nodeOf(spec: CloudNodeSpec): V1Node {
  const resources = { cpu: '2', memory: '8Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      annotations: {
        [KWOK_NODE_ANNOTATION]: 'fake',
        'node.alpha.kubernetes.io/ttl': '0',
      },
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        [POOL_LABEL]: spec.pool,
        ...spec.labels,
      },
    },
    status: { capacity: resources, allocatable: resources },
  };
}

function poolsOf(specs: CloudNodeSpec[]): CapacityPool[] {
  const seen = new Map<string, CapacityPool>();
  for (const spec of specs) {
    const capacityType = spec.spot ? 'spot' : 'on-demand';
    seen.set(`${capacityType}/${spec.instanceType}/${spec.zone}`, {
      instanceType: spec.instanceType,
      zone: spec.zone,
      capacityType,
      priceUsdPerHour: spec.spot ? 0.02 : 0.067,
      onDemandPriceUsdPerHour: 0.067,
      interruptionRisk: spec.spot ? 0.05 : 0,
      allocatable: { cpuMillis: 2000, memoryMiB: 8192 },
      launchable: true,
    });
  }
  return [...seen.values()];
}

/** Stands in for the valkey driver: kwok's pods run nothing to move state between. */
const instantDriver: MigrationDriver = {
  method: 'valkey',
  prepareTarget: async () => {},
  transfer: async ctx => ctx.addBytesMoved(1 << 20),
  switchOver: async ctx => ctx.recordWritePause(2),
  verify: async () => {},
  cleanUp: async () => {},
  rollBack: async () => {},
};

async function createNodes(
  kc: KubeConfig,
  specs: CloudNodeSpec[],
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await Promise.all(specs.map(spec => core.createNode({ body: nodeOf(spec) })));
  let ready = 0;
  await until(
    `${specs.length} nodes Ready`,
    async () => {
      ready = (await core.listNode()).items.filter(node =>
        node.status?.conditions?.some(
          c => c.type === 'Ready' && c.status === 'True',
        ),
      ).length;
      return ready >= specs.length;
    },
    {
      timeoutMs: 60_000,
      intervalMs: 250,
      detail: () => `${ready} of ${specs.length} Ready; is kwok running?`,
    },
  );
}

async function optIn(kc: KubeConfig, pool: 'gke' | 'aks'): Promise<void> {
  const name = `sessions-${pool}`;
  await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace: NAMESPACE,
    body: {
      metadata: { name },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            // The three spot nodes in three zones; the spare and the standard node stay free.
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [
                        { key: POOL_LABEL, operator: 'In', values: [pool] },
                        {
                          key: 'kubernetes.io/hostname',
                          operator: 'In',
                          values: [0, 1, 2].map(i => `${pool}-spot-${i}`),
                        },
                      ],
                    },
                  ],
                },
              },
            },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'topology.kubernetes.io/zone',
                whenUnsatisfiable: 'DoNotSchedule',
                labelSelector: { matchLabels: { app: name } },
              },
            ],
            containers: [
              {
                name: 'valkey',
                image: 'valkey/valkey:8',
                resources: { requests: { cpu: '500m', memory: '1Gi' } },
              },
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
      metadata: { name },
      spec: { workloadRef: { kind: 'Deployment', name }, migration: 'valkey' },
    },
  });
}

describe('GKE and AKS termination signs on a real cluster', () => {
  let cluster: LocalControlPlane;
  let operator: KubeOperator;
  let warnings: string[] = [];
  const FLEET = fleet();

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    await installFerryCrds(kc);
    await createNodes(kc, FLEET);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [NAMESPACE, 'ferry-system'])
      await core.createNamespace({ body: { metadata: { name } } });
    await optIn(kc, 'gke');
    await optIn(kc, 'aks');
    ({ operator, warnings } = await startOperator(cluster, {
      lease: {
        namespace: 'ferry-system',
        name: 'ferry-leader',
        leaseDurationMs: 2_000,
        renewDeadlineMs: 1_500,
        retryPeriodMs: 200,
      },
      drivers: [instantDriver],
      pools: async () => poolsOf(FLEET),
    }));
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  async function membersOf(pool: 'gke' | 'aks') {
    const viewOf = () =>
      operator.state
        .workloads()
        .find(w => w.view.id.endsWith(`sessions-${pool}`))?.view;
    return until(
      `the members of sessions-${pool} ready`,
      () => {
        const members = viewOf()?.members ?? [];
        return operator.isLeader &&
          members.length === 3 &&
          members.every(m => m.node && m.ready)
          ? members
          : undefined;
      },
      { timeoutMs: 30_000, detail: () => JSON.stringify(viewOf()) },
    );
  }

  async function migrationFor(pod: string): Promise<Migration> {
    return until(
      `a Migration for ${pod}`,
      async () =>
        (await migrationsIn(cluster.kubeConfig(), NAMESPACE)).find(
          m => m.spec.pod === pod && m.status,
        ),
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        detail: () => `warnings: ${warnings.join('; ')}`,
      },
    );
  }

  function expectThirtySecondNotice(migration: Migration, signalledAt: number) {
    const deadline = Date.parse(migration.spec.deadline!);
    expect(deadline).toBeGreaterThanOrEqual(
      signalledAt + TERMINATION_NOTICE_MS.gcp,
    );
    expect(deadline).toBeLessThan(
      signalledAt + TERMINATION_NOTICE_MS.gcp + SEEN_SLACK_MS,
    );
  }

  it('counts nodes labelled cloud.google.com/gke-preemptible as spot, and the rest as permanent', async () => {
    await membersOf('gke');
    const capacity = Object.fromEntries(
      operator.state.nodeViews().map(v => [v.name, v.capacityType]),
    );
    for (const spec of FLEET)
      expect([spec.name, capacity[spec.name]]).toEqual([
        spec.name,
        spec.spot ? 'spot' : 'on-demand',
      ]);
  });

  it('moves a member off a GKE node tainted for impending termination, with a 30 s deadline', async () => {
    const [member] = await membersOf('gke');
    const taintedAt = Date.now();
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
                key: 'cloud.google.com/impending-node-termination',
                effect: 'NoSchedule',
              },
            ],
          },
        },
      },
    );
    const migration = await migrationFor(member.pod);
    expect(migration.spec).toMatchObject({
      pod: member.pod,
      sourceNode: member.node,
      reason: 'notice',
      driver: 'valkey',
    });
    expect(migration.spec.targetNode).not.toBe(member.node);
    expectThirtySecondNotice(migration, taintedAt);
  });

  it('moves a member off an AKS node whose PreemptScheduled condition is True, with a 30 s deadline', async () => {
    const [member] = await membersOf('aks');
    const signalledAt = Date.now();
    const now = new Date().toISOString();
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${member.node}/status`,
      {
        contentType: 'application/strategic-merge-patch+json',
        body: {
          status: {
            conditions: [
              {
                type: 'PreemptScheduled',
                status: 'True',
                reason: 'PreemptScheduled',
                message: 'VM is scheduled for Preempt (Azure Scheduled Event)',
                lastHeartbeatTime: now,
                lastTransitionTime: now,
              },
            ],
          },
        },
      },
    );
    const migration = await migrationFor(member.pod);
    expect(migration.spec).toMatchObject({
      pod: member.pod,
      sourceNode: member.node,
      reason: 'notice',
    });
    expect(migration.spec.targetNode).not.toBe(member.node);
    expectThirtySecondNotice(migration, signalledAt);
    expect(warnings).toEqual([]);
  });
});
