import type { V1Pod } from '@kubernetes/client-node';
import { TERMINATION_NOTICE_MS } from '../cloud/CloudProvider';
import { loadMarketData, shippedMarketFiles } from '../cloud/marketFiles';
import { SimulatedCloudProvider } from '../cloud/SimulatedCloudProvider';
import {
  SimulatedMarketData,
  SimulatedSpotMarket,
} from '../cloud/SimulatedSpotMarket';
import { NODE_LABELS } from '../cloud/nodeLabels';
import type { Clock } from '../core/clock';
import type { CapacityPool, Resources } from '../core/model';
import { DEPLOYMENTS, PODS, STATEFUL_SETS } from '../kube/client/resources';
import { SoleLeader } from '../kube/leadership/SoleLeader';
import type { MigrationDriver } from '../migration/MigrationDriver';
import type { OperatorLog } from '../OperatorPorts';
import { Operator, wireOperator } from '../wireOperator';
import type { DemoWorkloadSeed } from './DemoOperator';
import { SimulatedCloudFeed } from './SimulatedCloudFeed';
import { SimulatedCluster } from './SimulatedCluster';
import {
  SimulatedClusterClient,
  WORKLOAD_LABEL,
} from './SimulatedClusterClient';
import { SimulatedMoveDriver } from './SimulatedMoveDriver';
import { SimulatedScheduler } from './SimulatedScheduler';

/** Requests of a demo member: a small Valkey/queue member. */
const DEMO_MEMBER_REQUESTS: Resources = {
  cpuMillis: 1000,
  memoryMiB: 6 * 1024,
};
/** Bytes of state of a demo member when its seed says none. */
const DEMO_STATE_BYTES = 2 ** 30;
/** Instance types of the demo market: memory-optimised and general-purpose, x86 and Graviton. */
export const DEMO_INSTANCE_TYPES = [
  'r5.large',
  'r6i.large',
  'r6g.large',
  'm5.large',
  'm6i.large',
  'm6g.large',
  'r5.xlarge',
];
/** Permanent nodes the demo cluster starts with in each zone. */
const PERMANENT_NODES_PER_ZONE = 2;
/** The methods the demo's driver stands in for: each moves in the engine's measured time. */
const DEMO_METHODS: MigrationDriver['method'][] = [
  'valkey',
  'checkpoint',
  'volume',
  'reschedule',
];

const silent: OperatorLog = { info: () => {}, warn: () => {} };

/**
 * The demo's cluster: the operator's real controllers (`wireOperator`) on the
 * simulated cloud. The cloud replays the shipped market; its nodes, notices
 * and reclaims reach the operator through an in-memory API server
 * (`SimulatedCluster`), members are created through the operator's placement
 * webhook and bound by a stand-in scheduler, and moves take the time the
 * engine measured. The portal reads it through `client`.
 */
export class DemoCluster {
  readonly cluster: SimulatedCluster;
  readonly provider: SimulatedCloudProvider;
  readonly operator: Operator;
  readonly client: SimulatedClusterClient;
  private readonly feed: SimulatedCloudFeed;
  private readonly scheduler: SimulatedScheduler;
  /** Market time minus the demo clock's time. */
  readonly offsetMs: number;
  private lastAdvance: number;

  constructor(
    private readonly options: {
      workloads: DemoWorkloadSeed[];
      clock: Clock;
      seed: number;
      /** Market time that the clock's now stands for. */
      marketNow: number;
      market?: SimulatedMarketData;
      log?: OperatorLog;
    },
  ) {
    const { clock } = options;
    const data = options.market ?? loadMarketData(shippedMarketFiles());
    const market = new SimulatedSpotMarket(data, {
      seed: options.seed,
      noticeMs: TERMINATION_NOTICE_MS.aws,
      instanceTypes: options.market ? undefined : DEMO_INSTANCE_TYPES,
    });
    this.provider = new SimulatedCloudProvider(market, 'aws');
    this.offsetMs = options.marketNow - clock.now();
    this.lastAdvance = clock.now();
    this.cluster = new SimulatedCluster(() => clock.now());
    this.feed = new SimulatedCloudFeed({
      cluster: this.cluster,
      provider: this.provider,
      offsetMs: this.offsetMs,
    });
    const stateBytes = new Map(
      options.workloads.map(w => [
        `${w.namespace}/${w.name}`,
        w.stateBytes ?? DEMO_STATE_BYTES,
      ]),
    );
    this.operator = wireOperator(
      {
        identity: 'demo',
        informers: this.cluster.informers,
        writes: this.cluster,
        migrations: this.cluster,
        events: { record: async () => {} },
        leadership: callbacks => new SoleLeader(callbacks),
        drivers: DEMO_METHODS.map(
          method =>
            new SimulatedMoveDriver({
              method,
              cluster: this.cluster,
              clock,
              stateBytesOf: (namespace, pod) =>
                stateBytes.get(
                  `${namespace}/${this.workloadOf(namespace, pod)}`,
                ) ?? DEMO_STATE_BYTES,
            }),
        ),
        pools: async () => this.pools(),
        clock,
        log: options.log ?? silent,
      },
      { replacement: {} },
    );
    this.scheduler = new SimulatedScheduler({
      cluster: this.cluster,
      admit: (pod, namespace) =>
        this.operator.admitPod(pod, {
          namespace,
          operation: 'CREATE',
          dryRun: false,
        }),
    });
    this.client = new SimulatedClusterClient({
      cluster: this.cluster,
      provider: this.provider,
      marketNow: () => clock.now() + this.offsetMs,
      riskOf: () => 0,
    });
  }

  /** Starts the operator on nodes of every pool and the workloads' members on permanent capacity. */
  async start(): Promise<void> {
    const now = this.options.clock.now();
    const marketNow = now + this.offsetMs;
    const offers = this.provider.spotPoolsAt(marketNow);
    const zones = [...new Set(offers.map(o => o.zone))].sort();
    for (const zone of zones) {
      const type = offers.find(o => o.zone === zone)!.instanceType;
      for (let i = 0; i < PERMANENT_NODES_PER_ZONE; i++) {
        this.feed.show(
          this.provider.adopt(
            { instanceType: type, zone },
            'on-demand',
            marketNow,
          ),
          now,
        );
      }
    }
    for (const offer of offers) {
      this.feed.show(this.provider.adopt(offer, 'spot', marketNow), now);
    }
    await this.operator.start();
    for (const seed of this.options.workloads) await this.createWorkload(seed);
  }

  async stop(): Promise<void> {
    await this.operator.stop();
  }

  /**
   * Applies what the cloud did up to the clock's now: notices, reclaims (the
   * lost members are recreated through the webhook), nodes that became Ready,
   * and a new node in each spot pool whose capacity is back.
   */
  async advance(): Promise<void> {
    const now = this.options.clock.now();
    const lost = this.feed.advance(this.lastAdvance, now);
    this.lastAdvance = now;
    for (const pod of lost) {
      await this.scheduler.create(this.replacementOf(pod));
    }
    this.replenish(now);
    this.scheduler.bindPending();
  }

  /** Sends a termination notice to a spot node now, as the cloud does before a reclaim. */
  reclaimNode(node: string): void {
    this.feed.notice(node, this.options.clock.now());
  }

  /** Spot nodes that run members of opted-in workloads now. */
  listSpotNodesInUse(): string[] {
    const nodes = new Set<string>();
    for (const { view } of this.operator.state.workloads()) {
      for (const member of view.members) {
        const node = member.node && this.provider.node(member.node);
        if (node && node.capacityType === 'spot') nodes.add(node.name);
      }
    }
    return [...nodes].sort();
  }

  /** Spot nodes in use that have no termination notice yet: the ones a reclaim would still move members off. */
  listReclaimableSpotNodes(): string[] {
    return this.listSpotNodesInUse().filter(
      name => this.provider.node(name)?.terminatesAt === undefined,
    );
  }

  private replenish(now: number): void {
    const marketNow = now + this.offsetMs;
    const held = new Set(
      this.provider
        .listNodes()
        .filter(n => n.capacityType === 'spot')
        .map(n => `${n.instanceType}@${n.zone}`),
    );
    for (const offer of this.provider.spotPoolsAt(marketNow)) {
      if (held.has(`${offer.instanceType}@${offer.zone}`) || !offer.launchable)
        continue;
      const node = this.provider.launch(offer, 'spot', marketNow);
      if (node) this.feed.show(node, now);
    }
  }

  private pools(): CapacityPool[] {
    const marketNow = this.options.clock.now() + this.offsetMs;
    return this.provider.spotPoolsAt(marketNow).flatMap(offer => [
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
    ]);
  }

  private workloadOf(namespace: string, pod: string): string | undefined {
    return this.cluster.object<V1Pod>(PODS, `${namespace}/${pod}`)?.metadata
      ?.labels?.[WORKLOAD_LABEL];
  }

  /** The workload object and its members, created as a person would apply it. */
  private async createWorkload(seed: DemoWorkloadSeed): Promise<void> {
    const labels = { [WORKLOAD_LABEL]: seed.name };
    const workload = this.cluster.put(
      seed.kind === 'StatefulSet' ? STATEFUL_SETS : DEPLOYMENTS,
      {
        apiVersion: 'apps/v1',
        kind: seed.kind,
        metadata: {
          name: seed.name,
          namespace: seed.namespace,
          labels: { 'backstage.io/kubernetes-id': seed.kubernetesId },
          annotations: seed.entity?.annotations,
        },
        spec: {
          replicas: seed.replicas,
          selector: { matchLabels: labels },
          template: { metadata: { labels } },
        },
        // Its controller's report of a finished rollout: re-placement moves
        // nothing while a workload rolls out (isRollingOut).
        status: {
          observedGeneration: 1,
          replicas: seed.replicas,
          updatedReplicas: seed.replicas,
        },
      } as any,
    ) as { metadata: { uid: string } };
    for (let i = 0; i < seed.replicas; i++) {
      await this.scheduler.create({
        metadata: {
          name: `${seed.name}-${i}`,
          namespace: seed.namespace,
          labels,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: seed.kind,
              name: seed.name,
              uid: workload.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: {
          // Until Ferry places it, a member runs where its template says: on permanent capacity.
          nodeSelector: { [NODE_LABELS.karpenterCapacityType]: 'on-demand' },
          containers: [
            {
              name: 'valkey',
              image: 'valkey/valkey:8',
              resources: {
                requests: {
                  cpu: `${DEMO_MEMBER_REQUESTS.cpuMillis}m`,
                  memory: `${DEMO_MEMBER_REQUESTS.memoryMiB}Mi`,
                },
              },
            },
          ],
        },
      });
    }
  }

  /** The pod a workload's controller creates for one it lost: a StatefulSet's keeps its name. */
  private replacementOf(pod: V1Pod): V1Pod {
    return {
      metadata: {
        name: pod.metadata?.name,
        namespace: pod.metadata?.namespace,
        labels: pod.metadata?.labels,
        ownerReferences: pod.metadata?.ownerReferences,
      },
      spec: {
        nodeSelector: { [NODE_LABELS.karpenterCapacityType]: 'on-demand' },
        containers: pod.spec?.containers ?? [],
      },
    };
  }
}
