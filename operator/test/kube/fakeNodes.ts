import { CoreV1Api, KubeConfig, V1Node } from '@kubernetes/client-node';
import { NODE_LABELS, nodeLabelsFor } from '../../src/cloud/nodeLabels';
import type { CapacityPool } from '../../src/core/model';
import { KWOK_NODE_ANNOTATION } from './LocalControlPlane';
import { until } from './until';

export { NODE_LABELS };

/** The region the fake fleet is in. */
export const FAKE_REGION = 'us-east-1';
/** Three zones, as a real regional fleet spreads over. */
export const FAKE_ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'] as const;
/** Four instance types with their real shapes: two general purpose, compute, memory. */
export const FAKE_INSTANCE_TYPES = {
  'm5.large': { cpu: '2', memory: '8Gi' },
  'm5.xlarge': { cpu: '4', memory: '16Gi' },
  'c5.xlarge': { cpu: '4', memory: '8Gi' },
  'r5.large': { cpu: '2', memory: '16Gi' },
} as const;

/** An instance type of the fake fleet. */
export type FakeInstanceType = keyof typeof FAKE_INSTANCE_TYPES;

/** What one fake node is. */
export interface FakeNodeSpec {
  name: string;
  capacityType: 'spot' | 'on-demand';
  instanceType: FakeInstanceType;
  zone: string;
  /** Extra labels, e.g. a workload's node pool. */
  labels?: Record<string, string>;
}

/**
 * A Node that kwok plays the kubelet of, labelled the way Karpenter and EKS
 * managed node groups label theirs (`nodeLabelsFor`, as the simulated cloud does).
 */
export function fakeNode(spec: FakeNodeSpec): V1Node {
  const shape = FAKE_INSTANCE_TYPES[spec.instanceType];
  const resources = { cpu: shape.cpu, memory: shape.memory, pods: '110' };
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
        ...nodeLabelsFor(
          'aws',
          spec.capacityType,
          spec.instanceType,
          spec.zone,
          FAKE_REGION,
        ),
        ...spec.labels,
      },
    },
    status: { capacity: resources, allocatable: resources },
  };
}

/**
 * The standard fleet: every instance type in every zone, one spot and one
 * on-demand node of each (24 nodes).
 */
export function standardFleet(): FakeNodeSpec[] {
  const fleet: FakeNodeSpec[] = [];
  for (const zone of FAKE_ZONES) {
    for (const instanceType of Object.keys(
      FAKE_INSTANCE_TYPES,
    ) as FakeInstanceType[]) {
      for (const capacityType of ['spot', 'on-demand'] as const) {
        fleet.push({
          name: `${capacityType}-${instanceType.replace('.', '-')}-${zone}`,
          capacityType,
          instanceType,
          zone,
        });
      }
    }
  }
  return fleet;
}

/**
 * The small fleet most suites run on: in each of the three zones, `spot`
 * spot nodes and `onDemand` on-demand nodes, all m5.large. A node is named
 * after its capacity type and zone letter (`spot-a`), numbered when its zone
 * has more than one of that type (`spot-1-a`, `spot-2-a`).
 */
export function zonalFleet({
  spot = 2,
  onDemand = 1,
}: { spot?: number; onDemand?: number } = {}): FakeNodeSpec[] {
  const named = (
    capacityType: 'spot' | 'on-demand',
    count: number,
    zone: string,
  ): FakeNodeSpec[] =>
    Array.from({ length: count }, (_, i) => ({
      name: `${capacityType}${count > 1 ? `-${i + 1}` : ''}-${zone.slice(-1)}`,
      capacityType,
      instanceType: 'm5.large' as const,
      zone,
    }));
  return FAKE_ZONES.flatMap(zone => [
    ...named('spot', spot, zone),
    ...named('on-demand', onDemand, zone),
  ]);
}

/** Creates the nodes and waits until kwok reports every one of them Ready. */
export async function createFakeNodes(
  kubeConfig: KubeConfig,
  specs: FakeNodeSpec[],
  timeoutMs = 60_000,
): Promise<V1Node[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await Promise.all(
    specs.map(spec => core.createNode({ body: fakeNode(spec) })),
  );
  const names = new Set(specs.map(spec => spec.name));
  let ready: V1Node[] = [];
  return until(
    `${names.size} fake nodes Ready`,
    async () => {
      ready = (await core.listNode()).items.filter(
        node =>
          names.has(node.metadata!.name!) &&
          node.status?.conditions?.some(
            c => c.type === 'Ready' && c.status === 'True',
          ),
      );
      return ready.length === names.size ? ready : undefined;
    },
    {
      timeoutMs,
      intervalMs: 250,
      detail: () => `${ready.length} Ready; is kwok running?`,
    },
  );
}

/**
 * The pools of a fleet as a cloud provider would offer them: spot at a third of
 * on-demand, a small interruption risk on spot, every pool launchable.
 */
export function poolsOf(fleet: FakeNodeSpec[]): CapacityPool[] {
  const seen = new Map<string, CapacityPool>();
  for (const spec of fleet) {
    const shape = FAKE_INSTANCE_TYPES[spec.instanceType];
    const onDemand = Number(shape.cpu) * 0.048;
    seen.set(`${spec.capacityType}/${spec.instanceType}/${spec.zone}`, {
      instanceType: spec.instanceType,
      zone: spec.zone,
      capacityType: spec.capacityType,
      priceUsdPerHour: spec.capacityType === 'spot' ? onDemand / 3 : onDemand,
      onDemandPriceUsdPerHour: onDemand,
      interruptionRisk: spec.capacityType === 'spot' ? 0.05 : 0,
      allocatable: {
        cpuMillis: Number(shape.cpu) * 1000,
        memoryMiB: Number(shape.memory.replace('Gi', '')) * 1024,
      },
      launchable: true,
    });
  }
  return [...seen.values()];
}
