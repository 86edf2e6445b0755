import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { FERRY_API_VERSION, Migration, SpotPolicy } from '../api/v1alpha1';
import type { CapacityPool } from '../core/model';
import { VirtualClock } from '../core/clock';
import {
  MIGRATIONS,
  NODES,
  PODS,
  SPOT_POLICIES,
  STATEFUL_SETS,
} from '../kube/client/resources';
import { SoleLeader } from '../kube/leadership/SoleLeader';
import { OperatorSettings, wireOperator } from '../wireOperator';
import type { OperatorPorts } from '../OperatorPorts';
import {
  FakeHibernationCluster,
  sleepablePod,
} from '../kube/hibernation/__testUtils__/FakeHibernationCluster';
import { SimulatedClusterClient } from './SimulatedClusterClient';
import { SimulatedScheduler } from './SimulatedScheduler';
import { SimulatedCluster } from './SimulatedCluster';
import { SimulatedMoveDriver } from './SimulatedMoveDriver';
import { SimulatedCloudFeed, SPOT_NOTICE_TAINT } from './SimulatedCloudFeed';
import { TERMINATION_NOTICE_MS } from '../cloud/CloudProvider';
import { loadMarketData, shippedMarketFiles } from '../cloud/marketFiles';
import { SimulatedCloudProvider } from '../cloud/SimulatedCloudProvider';
import { SimulatedSpotMarket } from '../cloud/SimulatedSpotMarket';

const NOW = Date.parse('2026-12-01T00:00:00Z');
const STATE_BYTES = 100 * 2 ** 20;

function node(
  name: string,
  capacityType: 'spot' | 'on-demand',
  zone: string,
): V1Node {
  return {
    metadata: {
      name,
      labels: {
        'karpenter.sh/capacity-type': capacityType,
        'node.kubernetes.io/instance-type': 'r5.large',
        'topology.kubernetes.io/zone': zone,
      },
    },
    status: {
      allocatable: { cpu: '2', memory: '15Gi' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

function pool(zone: string, capacityType: 'spot' | 'on-demand'): CapacityPool {
  return {
    instanceType: 'r5.large',
    zone,
    capacityType,
    priceUsdPerHour: capacityType === 'spot' ? 0.04 : 0.126,
    onDemandPriceUsdPerHour: 0.126,
    interruptionRisk: 0,
    allocatable: { cpuMillis: 2000, memoryMiB: 15 * 1024 },
    launchable: false,
  };
}

/** Runs the demo clock a second at a time until `check` holds; an hour of it at most. */
async function until(check: () => boolean, clock: VirtualClock): Promise<void> {
  const deadline = clock.now() + 3_600_000;
  while (!check()) {
    if (clock.now() > deadline) throw new Error('timed out');
    await clock.runUntil(clock.now() + 1_000);
  }
}

/**
 * A three-member StatefulSet on the in-memory cluster, one member on each of
 * an on-demand node and two spot nodes, opted in by its SpotPolicy.
 */
function cacheCluster(clock: VirtualClock): SimulatedCluster {
  const cluster = new SimulatedCluster(() => clock.now());
  cluster.put(NODES, node('on-demand-a', 'on-demand', 'eu-west-1a'));
  cluster.put(NODES, node('spot-b', 'spot', 'eu-west-1b'));
  cluster.put(NODES, node('spot-c', 'spot', 'eu-west-1c'));
  cluster.put(NODES, node('spot-a', 'spot', 'eu-west-1a'));
  putCache(cluster, ['on-demand-a', 'spot-b', 'spot-c']);
  return cluster;
}

/** The StatefulSet `shop/cache`, its members on `nodes`, and its SpotPolicy. */
function putCache(
  cluster: SimulatedCluster,
  nodes: string[],
  enabled = true,
): void {
  const sts = cluster.put(STATEFUL_SETS, {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: 'cache',
      namespace: 'shop',
      labels: { 'backstage.io/kubernetes-id': 'cache' },
    },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'cache' } },
      template: { metadata: { labels: { app: 'cache' } } },
    },
    // Rolled out: re-placement waits for a rollout to end.
    status: { observedGeneration: 1, replicas: 3, updatedReplicas: 3 },
  } as any);
  nodes.forEach((nodeName, i) =>
    cluster.put<V1Pod>(PODS, {
      metadata: {
        name: `cache-${i}`,
        namespace: 'shop',
        labels: { app: 'cache' },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            name: 'cache',
            uid: (sts as any).metadata.uid,
            controller: true,
          },
        ],
      },
      spec: {
        nodeName,
        containers: [
          {
            name: 'valkey',
            resources: { requests: { cpu: '500m', memory: '1Gi' } },
          },
        ],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    }),
  );
  cluster.put<SpotPolicy>(SPOT_POLICIES, {
    apiVersion: FERRY_API_VERSION,
    kind: 'SpotPolicy',
    metadata: { name: 'cache', namespace: 'shop', generation: 1 },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      enabled,
      permanentRatio: 0.3,
      availabilityTarget: 0.999,
      migration: 'valkey',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    },
  });
}

/** The operator as demo mode wires it: the real controllers on the in-memory cluster. */
function operatorOn(
  cluster: SimulatedCluster,
  clock: VirtualClock,
  pools: () => Promise<CapacityPool[]>,
  settings: OperatorSettings = {},
  hibernation?: OperatorPorts['hibernation'],
) {
  return wireOperator(
    {
      hibernation,
      identity: 'demo',
      informers: cluster.informers,
      writes: cluster,
      migrations: cluster,
      events: { record: async () => {} },
      leadership: callbacks => new SoleLeader(callbacks),
      drivers: [
        new SimulatedMoveDriver({
          cluster,
          clock,
          timers: clock,
          stateBytesOf: () => STATE_BYTES,
        }),
      ],
      pools,
      clock,
      timers: clock,
      log: { info: () => {}, warn: () => {} },
    },
    { statusRefreshMs: 60_000, ...settings },
  );
}

describe('the operator wired on the simulated cluster', () => {
  it('moves a member off a spot node with a termination notice, through a Migration, in the time a move takes', async () => {
    const clock = new VirtualClock(NOW);
    const cluster = cacheCluster(clock);
    const operator = operatorOn(cluster, clock, async () => [
      pool('eu-west-1a', 'on-demand'),
      pool('eu-west-1a', 'spot'),
      pool('eu-west-1b', 'spot'),
      pool('eu-west-1c', 'spot'),
    ]);
    await operator.start();
    try {
      await until(() => operator.isLeader, clock);
      const noticed = cluster.object<V1Node>(NODES, 'spot-b')!;
      cluster.put<V1Node>(NODES, {
        ...noticed,
        spec: {
          taints: [
            {
              key: 'aws-node-termination-handler/spot-itn',
              value: 'event-1',
              effect: 'NoSchedule',
            },
          ],
        },
      });
      await until(
        () =>
          cluster
            .objects<Migration>(MIGRATIONS)
            .some(m => m.status?.phase === 'Succeeded'),
        clock,
      );
      const [move] = cluster.objects<Migration>(MIGRATIONS);
      expect(move.spec).toMatchObject({
        pod: 'cache-1',
        sourceNode: 'spot-b',
        reason: 'notice',
        driver: 'valkey',
      });
      expect(move.status?.bytesMoved).toBe(STATE_BYTES);
      const moved = cluster.object<V1Pod>(PODS, 'shop/cache-1')!;
      expect(moved.spec?.nodeName).toBe(
        move.status?.targetNode ?? move.spec.targetNode,
      );
      expect(moved.spec?.nodeName).not.toBe('spot-b');
      // The status controller wrote the policy's status through the same store.
      await until(
        () =>
          cluster.object<SpotPolicy>(SPOT_POLICIES, 'shop/cache')?.status
            ?.replicas?.length === 3,
        clock,
      );
    } finally {
      await operator.stop();
    }
  });

  it('reads the simulated cloud: a notice becomes the NTH taint the controllers move on, and the node leaves at its deadline', async () => {
    const market = new SimulatedSpotMarket(
      loadMarketData(shippedMarketFiles()),
      {
        seed: 1,
        noticeMs: TERMINATION_NOTICE_MS.aws,
        instanceTypes: ['r5.large'],
      },
    );
    const provider = new SimulatedCloudProvider(market, 'aws');
    const marketStart = market.startAt + 24 * 3_600_000;
    const clock = new VirtualClock(NOW);
    const offsetMs = marketStart - NOW;
    const cluster = new SimulatedCluster(() => clock.now());
    const feed = new SimulatedCloudFeed({ cluster, provider, offsetMs });
    const offers = provider
      .spotPoolsAt(marketStart)
      .filter(p => p.instanceType === 'r5.large');
    const zones = [...new Set(offers.map(p => p.zone))].sort().slice(0, 3);
    const nodes = [
      provider.adopt(
        { instanceType: 'r5.large', zone: zones[0] },
        'on-demand',
        marketStart,
      ),
      ...zones.map(zone =>
        provider.adopt({ instanceType: 'r5.large', zone }, 'spot', marketStart),
      ),
      ...zones.map(zone =>
        provider.adopt({ instanceType: 'r5.large', zone }, 'spot', marketStart),
      ),
    ];
    for (const n of nodes) feed.show(n, clock.now());
    putCache(cluster, [nodes[0].name, nodes[1].name, nodes[2].name]);
    const operator = operatorOn(cluster, clock, async () =>
      provider.spotPoolsAt(clock.now() + offsetMs).flatMap(offer => [
        {
          instanceType: offer.instanceType,
          zone: offer.zone,
          capacityType: 'spot' as const,
          priceUsdPerHour: offer.spotPriceUsdPerHour,
          onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
          interruptionRisk: 0,
          allocatable: offer.allocatable,
          launchable: false,
        },
        {
          instanceType: offer.instanceType,
          zone: offer.zone,
          capacityType: 'on-demand' as const,
          priceUsdPerHour: offer.onDemandPriceUsdPerHour,
          onDemandPriceUsdPerHour: offer.onDemandPriceUsdPerHour,
          interruptionRisk: 0,
          allocatable: offer.allocatable,
          launchable: false,
        },
      ]),
    );
    await operator.start();
    try {
      await until(() => operator.isLeader, clock);
      const reclaimed = nodes[1].name;
      feed.notice(reclaimed, clock.now());
      expect(
        cluster.object<V1Node>(NODES, reclaimed)?.spec?.taints?.[0].key,
      ).toBe(SPOT_NOTICE_TAINT);
      await until(
        () =>
          cluster
            .objects<Migration>(MIGRATIONS)
            .some(m => m.status?.phase === 'Succeeded'),
        clock,
      );
      const moved = cluster.object<V1Pod>(PODS, 'shop/cache-1')!;
      expect(moved.spec?.nodeName).not.toBe(reclaimed);
      const terminatesAt = provider.node(reclaimed)!.terminatesAt! - offsetMs;
      expect(clock.now()).toBeLessThan(terminatesAt);
      const lost = feed.advance(clock.now(), terminatesAt + 1);
      expect(cluster.object(NODES, reclaimed)).toBeUndefined();
      expect(lost).toEqual([]);
    } finally {
      await operator.stop();
    }
  });

  it('re-places the members when the portal opts the workload in, and the portal reads the moves and the status', async () => {
    const clock = new VirtualClock(NOW);
    const cluster = new SimulatedCluster(() => clock.now());
    cluster.put(NODES, node('on-demand-a', 'on-demand', 'eu-west-1a'));
    cluster.put(NODES, node('on-demand-b', 'on-demand', 'eu-west-1b'));
    cluster.put(NODES, node('on-demand-c', 'on-demand', 'eu-west-1c'));
    cluster.put(NODES, node('spot-a', 'spot', 'eu-west-1a'));
    cluster.put(NODES, node('spot-b', 'spot', 'eu-west-1b'));
    cluster.put(NODES, node('spot-c', 'spot', 'eu-west-1c'));
    putCache(cluster, ['on-demand-a', 'on-demand-b', 'on-demand-c'], false);
    const operator = operatorOn(
      cluster,
      clock,
      async () => [
        pool('eu-west-1a', 'on-demand'),
        pool('eu-west-1b', 'on-demand'),
        pool('eu-west-1c', 'on-demand'),
        pool('eu-west-1a', 'spot'),
        pool('eu-west-1b', 'spot'),
        pool('eu-west-1c', 'spot'),
      ],
      { replacement: { settleMs: 0 } },
    );
    const portal = new SimulatedClusterClient({
      cluster,
      provider: undefined as any,
      marketNow: () => clock.now(),
      riskOf: () => 0,
    });
    await operator.start();
    try {
      await until(() => operator.isLeader, clock);
      const read = await portal.getSpotPolicy('shop', 'cache');
      await portal.applySpotPolicy(
        'shop',
        'cache',
        { ...read!.spec, enabled: true, permanentRatio: 0.3 },
        {},
        { basedOn: read },
      );
      const onSpot = () =>
        cluster
          .objects<V1Pod>(PODS)
          .filter(p => p.spec?.nodeName?.startsWith('spot-')).length;
      await until(() => onSpot() === 2, clock);
      const moves = await portal.listMigrations({ workloadName: 'cache' });
      expect(moves.map(m => m.spec.reason)).toEqual(['policy', 'policy']);
      expect(moves.every(m => m.status?.phase === 'Succeeded')).toBe(true);
      const [summary] = await portal.listWorkloads({
        labelSelector: { 'backstage.io/kubernetes-id': 'cache' },
      });
      expect(summary).toMatchObject({ replicas: 3, readyReplicas: 3 });
      // A write based on a stale read is refused, as on a cluster.
      await expect(
        portal.applySpotPolicy(
          'shop',
          'cache',
          read!.spec,
          {},
          { basedOn: read },
        ),
      ).rejects.toThrow(/changed since it was read/);
    } finally {
      await operator.stop();
    }
  });

  it('places a member its StatefulSet recreates through the placement webhook, never on a node being reclaimed', async () => {
    const clock = new VirtualClock(NOW);
    const cluster = cacheCluster(clock);
    const operator = operatorOn(cluster, clock, async () => [
      pool('eu-west-1a', 'on-demand'),
      pool('eu-west-1a', 'spot'),
      pool('eu-west-1b', 'spot'),
      pool('eu-west-1c', 'spot'),
    ]);
    const scheduler = new SimulatedScheduler({
      cluster,
      admit: (pod, namespace) =>
        operator.admitPod(pod, {
          namespace,
          operation: 'CREATE',
          dryRun: false,
        }),
    });
    await operator.start();
    try {
      // spot-c is being reclaimed and cache-2 on it is lost before it moved.
      const reclaimed = cluster.object<V1Node>(NODES, 'spot-c')!;
      cluster.put<V1Node>(NODES, {
        ...reclaimed,
        spec: {
          taints: [
            { key: SPOT_NOTICE_TAINT, value: 'e', effect: 'NoSchedule' },
          ],
        },
      });
      const lost = cluster.object<V1Pod>(PODS, 'shop/cache-2')!;
      cluster.remove(PODS, 'shop/cache-2');
      const recreated = await scheduler.create({
        metadata: {
          name: 'cache-2',
          namespace: 'shop',
          labels: lost.metadata!.labels,
          ownerReferences: lost.metadata!.ownerReferences,
        },
        spec: { containers: lost.spec!.containers },
      });
      // The webhook placed it by the policy: on spot (the permanent floor is met on on-demand-a).
      expect(
        recreated.spec?.affinity?.nodeAffinity
          ?.requiredDuringSchedulingIgnoredDuringExecution,
      ).toBeDefined();
      expect(recreated.spec?.nodeName).toMatch(/^spot-/);
      expect(recreated.spec?.nodeName).not.toBe('spot-c');
    } finally {
      await operator.stop();
    }
  });

  it("hibernates the members of a workload by its SpotPolicy's hibernateAfter, also with spot disabled, while it leads", async () => {
    const clock = new VirtualClock(NOW);
    const cluster = new SimulatedCluster(() => clock.now());
    cluster.put(NODES, node('on-demand-a', 'on-demand', 'eu-west-1a'));
    putCache(cluster, ['on-demand-a', 'on-demand-a', 'on-demand-a'], false);
    const policy = cluster.object<SpotPolicy>(SPOT_POLICIES, 'shop/cache')!;
    cluster.put<SpotPolicy>(SPOT_POLICIES, {
      ...policy,
      spec: { ...policy.spec, hibernateAfter: '10m' },
    });
    // The pods as hibernation reads them from the API server (a lone member's owner).
    const pods = new FakeHibernationCluster();
    pods.put(sleepablePod('cache-0'));
    pods.put(sleepablePod('stranger'));
    const operator = operatorOn(
      cluster,
      clock,
      async () => [],
      {},
      {
        cluster: pods,
        agents: pods.agents,
      },
    );
    await operator.start();
    try {
      await until(() => pods.watched.size > 0, clock);
      expect(pods.watched.get('hib-uid-cache-0')?.idleMs).toBe(600_000);
      // Not a member of the policy's workload, nor annotated.
      expect(pods.watched.has('hib-uid-stranger')).toBe(false);
      // What the controller puts on a member's pod shows on the policy's status.
      const member = cluster.object<V1Pod>(PODS, 'shop/cache-1')!;
      cluster.put<V1Pod>(PODS, {
        ...member,
        metadata: {
          ...member.metadata,
          annotations: {
            'ferry.dev/hibernation-refused': 'it has 2 containers',
          },
        },
      });
      await until(
        () =>
          cluster.object<SpotPolicy>(SPOT_POLICIES, 'shop/cache')?.status
            ?.hibernation?.length === 1,
        clock,
      );
      expect(
        cluster.object<SpotPolicy>(SPOT_POLICIES, 'shop/cache')?.status
          ?.hibernation,
      ).toEqual([{ pod: 'cache-1', refusal: 'it has 2 containers' }]);
    } finally {
      await operator.stop();
    }
    // Stopped with the leadership: nothing is watched any more.
    pods.watched.clear();
    pods.put(sleepablePod('cache-1'));
    await new Promise(resolve => setTimeout(resolve, 1_500));
    expect(pods.watched.size).toBe(0);
  });
});
