import type { V1Node, V1Pod } from '@kubernetes/client-node';
import {
  FERRY_API_VERSION,
  type Migration,
  type SpotPolicy,
} from '../../api/v1alpha1';
import { SimulatedCluster } from '../../demo/SimulatedCluster';
import {
  DEPLOYMENTS,
  MIGRATIONS,
  NODES,
  PODS,
  REPLICA_SETS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../client/resources';
import { ClusterState } from './ClusterState';

const NOW = Date.parse('2026-12-01T00:00:00Z');

function node(name: string): V1Node {
  return {
    metadata: {
      name,
      labels: {
        'karpenter.sh/capacity-type': 'spot',
        'node.kubernetes.io/instance-type': 'r5.large',
        'topology.kubernetes.io/zone': 'a',
      },
    },
    status: { allocatable: { cpu: '2', memory: '15Gi' } },
  };
}

function pod(
  namespace: string,
  name: string,
  owner: { kind: string; name: string; uid: string },
  nodeName: string,
  labels: Record<string, string>,
): V1Pod {
  return {
    metadata: {
      name,
      namespace,
      labels,
      ownerReferences: [{ apiVersion: 'apps/v1', controller: true, ...owner }],
    },
    spec: {
      nodeName,
      containers: [
        {
          name: 'valkey',
          image: 'valkey/valkey:8',
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
        },
      ],
    },
    status: { phase: 'Running' },
  };
}

function policy(
  namespace: string,
  name: string,
  kind: 'StatefulSet' | 'Deployment',
  enabled = true,
): SpotPolicy {
  return {
    apiVersion: FERRY_API_VERSION,
    kind: 'SpotPolicy',
    metadata: { namespace, name },
    spec: {
      workloadRef: { kind, name },
      enabled,
      permanentRatio: 0.3,
      availabilityTarget: 0.999,
      migration: 'valkey',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    },
  };
}

function migration(
  namespace: string,
  name: string,
  workload: { kind: 'StatefulSet' | 'Deployment'; name: string },
  member: string,
  phase: string,
): Migration {
  return {
    apiVersion: FERRY_API_VERSION,
    kind: 'Migration',
    metadata: { namespace, name },
    spec: {
      workloadRef: workload,
      pod: member,
      sourceNode: 'n-0',
      reason: 'notice',
      driver: 'valkey',
    },
    status: { phase, phases: [], bytesMoved: 0 },
  } as unknown as Migration;
}

/**
 * Two namespaces, each with a StatefulSet and a Deployment (through its
 * ReplicaSet) of the same name, opted in or out, some with Migrations.
 */
async function clusterOfWorkloads(): Promise<{
  cluster: SimulatedCluster;
  state: ClusterState;
}> {
  const cluster = new SimulatedCluster(() => NOW);
  for (let i = 0; i < 4; i++) cluster.put(NODES, node(`n-${i}`));
  for (const namespace of ['shop', 'blog']) {
    for (const name of ['cache', 'queue']) {
      const sts = cluster.put(STATEFUL_SETS, {
        metadata: { namespace, name },
        spec: { replicas: 2, selector: { matchLabels: { app: name } } },
        status: { observedGeneration: 1, updatedReplicas: 2 },
      } as any) as any;
      const deployment = cluster.put(DEPLOYMENTS, {
        metadata: { namespace, name: `${name}-web` },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: `${name}-web` } },
        },
        status: { observedGeneration: 1, updatedReplicas: 2, replicas: 2 },
      } as any) as any;
      const rs = cluster.put(REPLICA_SETS, {
        metadata: {
          namespace,
          name: `${name}-web-abc`,
          ownerReferences: [
            {
              kind: 'Deployment',
              name: `${name}-web`,
              uid: deployment.metadata.uid,
              controller: true,
            },
          ],
        },
      } as any) as any;
      for (let m = 0; m < 2; m++) {
        cluster.put(
          PODS,
          pod(
            namespace,
            `${name}-${m}`,
            { kind: 'StatefulSet', name, uid: sts.metadata.uid },
            `n-${m}`,
            { app: name },
          ),
        );
        cluster.put(
          PODS,
          pod(
            namespace,
            `${name}-web-abc-${m}`,
            {
              kind: 'ReplicaSet',
              name: rs.metadata.name,
              uid: rs.metadata.uid,
            },
            `n-${m + 2}`,
            { app: `${name}-web`, 'pod-template-hash': 'abc' },
          ),
        );
      }
      cluster.put(
        SPOT_POLICIES,
        policy(namespace, name, 'StatefulSet', namespace === 'shop'),
      );
      cluster.put(
        SPOT_POLICIES,
        policy(namespace, `${name}-web`, 'Deployment'),
      );
    }
  }
  cluster.put(
    MIGRATIONS,
    migration(
      'shop',
      'm1',
      { kind: 'StatefulSet', name: 'cache' },
      'cache-0',
      'Transferring',
    ),
  );
  cluster.put(
    MIGRATIONS,
    migration(
      'shop',
      'm2',
      { kind: 'StatefulSet', name: 'cache' },
      'cache-0',
      'Failed',
    ),
  );
  cluster.put(
    MIGRATIONS,
    migration(
      'blog',
      'm3',
      { kind: 'Deployment', name: 'queue-web' },
      'queue-web-abc-1',
      'Planned',
    ),
  );
  const state = new ClusterState({ informers: cluster.informers });
  await state.start();
  return { cluster, state };
}

describe('ClusterState', () => {
  it('finds a workload, its policy and its Migrations by name as a look at every one finds them', async () => {
    const { cluster, state } = await clusterOfWorkloads();
    const all = state.workloads(undefined, { optedOut: true });
    expect(all).toHaveLength(8);
    for (const entry of all) {
      const { namespace } = entry.policy.metadata;
      const { kind, name } = entry.policy.spec.workloadRef;
      expect(state.workload(namespace, kind, name, { optedOut: true })).toEqual(
        entry,
      );
      expect(state.policyOf(namespace, kind, name)).toBe(entry.policy);
      const scanned = state.migrations
        .list()
        .filter(
          m =>
            m.metadata.namespace === namespace &&
            m.spec.workloadRef.kind === kind &&
            m.spec.workloadRef.name === name,
        );
      expect(state.migrationsOf(namespace, kind, name)).toEqual(scanned);
    }
    // Opted out: only when asked for, as `workloads` does.
    expect(state.workload('blog', 'StatefulSet', 'cache')).toBeUndefined();
    expect(
      state.workload('blog', 'StatefulSet', 'cache', { optedOut: true }),
    ).toBeDefined();
    expect(state.workload('shop', 'StatefulSet', 'nothing')).toBeUndefined();

    // A member's view sees its open Migration; the Deployment's pods are its own.
    expect(
      state.workload('shop', 'StatefulSet', 'cache')!.view.members,
    ).toEqual([
      expect.objectContaining({ pod: 'cache-0', moving: true }),
      expect.objectContaining({ pod: 'cache-1', moving: undefined }),
    ]);
    expect(
      state
        .workload('blog', 'Deployment', 'queue-web')!
        .view.members.map(m => [m.pod, m.moving]),
    ).toEqual([
      ['queue-web-abc-0', undefined],
      ['queue-web-abc-1', true],
    ]);
    expect(
      state.migrationsOfPod('shop', 'cache-0').map(m => m.metadata.name),
    ).toEqual(['m1', 'm2']);

    // The pods' workloads, directly and through a ReplicaSet.
    const byName = (key: string) => cluster.object<V1Pod>(PODS, key)!;
    expect(state.workloadOfPod(byName('shop/cache-1'))).toEqual({
      kind: 'StatefulSet',
      name: 'cache',
    });
    expect(state.workloadOfPod(byName('blog/queue-web-abc-0'))).toEqual({
      kind: 'Deployment',
      name: 'queue-web',
    });

    // A new Migration, a new policy and a deleted one are seen at once.
    cluster.put(
      MIGRATIONS,
      migration(
        'shop',
        'm4',
        { kind: 'StatefulSet', name: 'cache' },
        'cache-1',
        'Planned',
      ),
    );
    expect(
      state
        .migrationsOf('shop', 'StatefulSet', 'cache')
        .map(m => m.metadata.name),
    ).toEqual(['m1', 'm2', 'm4']);
    expect(
      state
        .workload('shop', 'StatefulSet', 'cache')!
        .view.members.map(m => m.moving),
    ).toEqual([true, true]);
    // A member's change shows in its own workload's view; the others' views are kept.
    const queue = state.workload('shop', 'StatefulSet', 'queue');
    const member = cluster.object<V1Pod>(PODS, 'shop/cache-1')!;
    cluster.put(PODS, {
      ...member,
      status: {
        ...member.status,
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    expect(
      state
        .workload('shop', 'StatefulSet', 'cache')!
        .view.members.map(m => m.ready),
    ).toEqual([false, true]);
    expect(state.workload('shop', 'StatefulSet', 'queue')).toBe(queue);
    cluster.remove(SPOT_POLICIES, 'blog/queue-web');
    expect(state.workload('blog', 'Deployment', 'queue-web')).toBeUndefined();
    expect(state.policyOf('blog', 'Deployment', 'queue-web')).toBeUndefined();
    state.stop();
  });

  it("counts a workload's own annotations as its policy until one is written", async () => {
    const cluster = new SimulatedCluster(() => NOW);
    cluster.put(STATEFUL_SETS, {
      metadata: {
        namespace: 'shop',
        name: 'cache',
        annotations: { 'ferry.dev/spot': 'enabled' },
      },
      spec: { replicas: 1, selector: { matchLabels: { app: 'cache' } } },
    } as any);
    const state = new ClusterState({ informers: cluster.informers });
    await state.start();
    expect(
      state.workload('shop', 'StatefulSet', 'cache')?.policy.spec.enabled,
    ).toBe(true);
    cluster.put(SPOT_POLICIES, {
      ...policy('shop', 'cache', 'StatefulSet', false),
    });
    expect(state.workload('shop', 'StatefulSet', 'cache')).toBeUndefined();
    expect(state.policyOf('shop', 'StatefulSet', 'cache')?.spec.enabled).toBe(
      false,
    );
    state.stop();
  });

  it('finds the node of an EC2 instance as a look at every node does, as providerIDs change', async () => {
    const cluster = new SimulatedCluster(() => NOW);
    const withProvider = (name: string, providerID?: string): V1Node => ({
      ...node(name),
      spec: { providerID },
    });
    cluster.put(NODES, withProvider('a', 'aws:///us-east-1a/i-0a'));
    cluster.put(NODES, withProvider('b', 'aws:///us-east-1b/i-0b'));
    cluster.put(NODES, withProvider('c'));
    const state = new ClusterState({ informers: cluster.informers });
    await state.start();
    const scan = (id: string) =>
      state.nodes.list().find(n => n.spec?.providerID?.endsWith(`/${id}`))
        ?.metadata?.name;
    const check = () => {
      for (const id of ['i-0a', 'i-0b', 'i-0c', 'i-0d']) {
        expect(state.nodeOfInstance(id)).toBe(scan(id));
      }
    };
    check();
    expect(state.nodeOfInstance('i-0a')).toBe('a');
    cluster.put(NODES, withProvider('c', 'aws:///us-east-1c/i-0c'));
    cluster.put(NODES, withProvider('b', 'aws:///us-east-1b/i-0d'));
    check();
    cluster.remove(NODES, 'a');
    check();
    expect(state.nodeOfInstance('i-0a')).toBeUndefined();
    state.stop();
  });
});
