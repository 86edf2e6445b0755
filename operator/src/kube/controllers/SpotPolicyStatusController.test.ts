import type { V1Pod } from '@kubernetes/client-node';
import { FERRY_API_VERSION, type SpotPolicy } from '../../api/v1alpha1';
import { SimulatedCluster } from '../../demo/SimulatedCluster';
import type { PriceBook } from '../pools/PoolPriceFeed';
import {
  MIGRATIONS,
  NODES,
  PODS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../client/resources';
import { ClusterState } from '../state/ClusterState';
import {
  SpotPolicyStatusController,
  STATUS_SETTLE_MS,
} from './SpotPolicyStatusController';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const NAMESPACE = 'shop';
const WORKLOADS = ['cache', 'queue', 'sessions'];

function memberOf(workload: string, uid: string, label = 'a'): V1Pod {
  return {
    metadata: {
      namespace: NAMESPACE,
      name: `${workload}-0`,
      labels: { app: workload, seen: label },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          name: workload,
          uid,
          controller: true,
        },
      ],
    },
    spec: { nodeName: 'n-0', containers: [{ name: 'valkey', image: 'v' }] },
    status: { phase: 'Running' },
  };
}

describe('SpotPolicyStatusController', () => {
  it('looks again at the policy of the member or Migration that changed, not at every policy of its namespace', async () => {
    const cluster = new SimulatedCluster(() => NOW);
    cluster.put(NODES, { metadata: { name: 'n-0' } });
    const uids = new Map<string, string>();
    for (const name of WORKLOADS) {
      const sts = cluster.put(STATEFUL_SETS, {
        metadata: { namespace: NAMESPACE, name },
        spec: { replicas: 1, selector: { matchLabels: { app: name } } },
      } as any) as any;
      uids.set(name, sts.metadata.uid);
      cluster.put(PODS, memberOf(name, sts.metadata.uid));
      cluster.put<SpotPolicy>(SPOT_POLICIES, {
        apiVersion: FERRY_API_VERSION,
        kind: 'SpotPolicy',
        metadata: { namespace: NAMESPACE, name: `${name}-policy` },
        spec: {
          workloadRef: { kind: 'StatefulSet', name },
          enabled: true,
          permanentRatio: 0.3,
          availabilityTarget: 0.999,
          migration: 'valkey',
          maxConcurrentMoves: 1,
          predictionHorizonMinutes: 20,
        },
      });
    }
    const forward: { to?: SpotPolicyStatusController } = {};
    const state = new ClusterState({
      informers: cluster.informers,
      onChange: change => forward.to?.changed(change),
    });
    await state.start();
    const controller = new SpotPolicyStatusController({
      writes: { patchSpotPolicyStatus: async () => {} },
      state,
      prices: () => ({} as PriceBook),
    });
    forward.to = controller;
    const looked: string[] = [];
    jest.spyOn(controller, 'reconcile').mockImplementation(async key => {
      looked.push(key);
    });
    try {
      // A member of `cache` changes, and a Migration of `queue` appears.
      cluster.put(PODS, memberOf('cache', uids.get('cache')!, 'b'));
      cluster.put(MIGRATIONS, {
        apiVersion: FERRY_API_VERSION,
        kind: 'Migration',
        metadata: { namespace: NAMESPACE, name: 'queue-0-notice' },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'queue' },
          pod: 'queue-0',
          sourceNode: 'n-0',
          reason: 'notice',
          driver: 'valkey',
        },
      });
      await new Promise(resolve => setTimeout(resolve, STATUS_SETTLE_MS + 300));
      expect(looked.sort()).toEqual(['shop/cache-policy', 'shop/queue-policy']);
    } finally {
      await controller.stop();
      state.stop();
    }
  });
});
