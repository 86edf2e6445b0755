import type { V1Node, V1Pod } from '@kubernetes/client-node';
import {
  capacityTypeOf,
  cpuMillisOf,
  disruptionSignalOf,
  memoryMiBOf,
  nodeViewOf,
  NOTICE_WINDOW_MS,
  podRequestsOf,
} from './nodeViews';

const T = Date.parse('2026-01-01T00:00:00Z');

function node(
  labels: Record<string, string>,
  extra: {
    taints?: { key: string; effect: string; value?: string }[];
    unschedulable?: boolean;
    conditions?: { type: string; status: string }[];
  } = {},
): V1Node {
  return {
    metadata: { name: 'n1', labels },
    spec: { taints: extra.taints, unschedulable: extra.unschedulable },
    status: {
      allocatable: { cpu: '4', memory: '16Gi' },
      conditions: extra.conditions,
    },
  };
}

function pod(cpu: string, memory: string, phase = 'Running'): V1Pod {
  return {
    metadata: { name: 'p' },
    spec: {
      containers: [{ name: 'c', resources: { requests: { cpu, memory } } }],
    },
    status: { phase },
  };
}

describe('capacityTypeOf', () => {
  it.each([
    [{ 'karpenter.sh/capacity-type': 'spot' }, 'spot'],
    [{ 'karpenter.sh/capacity-type': 'on-demand' }, 'on-demand'],
    [{ 'karpenter.sh/capacity-type': 'reserved' }, 'on-demand'],
    [{ 'eks.amazonaws.com/capacityType': 'SPOT' }, 'spot'],
    [{ 'eks.amazonaws.com/capacityType': 'ON_DEMAND' }, 'on-demand'],
    [{ 'cloud.google.com/gke-spot': 'true' }, 'spot'],
    [{ 'kubernetes.azure.com/scalesetpriority': 'spot' }, 'spot'],
    [{}, 'on-demand'],
  ])('reads %j as %s', (labels, expected) => {
    expect(capacityTypeOf(node(labels))).toBe(expected);
  });
});

describe('disruptionSignalOf', () => {
  it('reads nothing into a healthy node, nor into the taint every AKS spot node has', () => {
    expect(disruptionSignalOf(node({}), T)).toBeUndefined();
    expect(
      disruptionSignalOf(
        node(
          {},
          {
            taints: [
              {
                key: 'kubernetes.azure.com/scalesetpriority',
                value: 'spot',
                effect: 'NoSchedule',
              },
            ],
          },
        ),
        T,
      ),
    ).toBeUndefined();
  });

  it.each([
    [
      'the AWS Node Termination Handler spot taint',
      {
        taints: [
          {
            key: 'aws-node-termination-handler/spot-itn',
            effect: 'NoSchedule',
          },
        ],
      },
      'notice',
      T + NOTICE_WINDOW_MS.aws,
    ],
    [
      'the GKE impending-termination taint',
      {
        taints: [
          {
            key: 'cloud.google.com/impending-node-termination',
            effect: 'NoSchedule',
          },
        ],
      },
      'notice',
      T + NOTICE_WINDOW_MS.gcp,
    ],
    [
      'the AKS PreemptScheduled condition',
      { conditions: [{ type: 'PreemptScheduled', status: 'True' }] },
      'notice',
      T + NOTICE_WINDOW_MS.azure,
    ],
    ['a cordon by any tool', { unschedulable: true }, 'drain', undefined],
    [
      'Karpenter disrupting the node',
      { taints: [{ key: 'karpenter.sh/disrupted', effect: 'NoSchedule' }] },
      'drain',
      undefined,
    ],
    [
      'an NTH rebalance recommendation',
      {
        taints: [
          {
            key: 'aws-node-termination-handler/rebalance-recommendation',
            effect: 'NoSchedule',
          },
        ],
      },
      'recommendation',
      undefined,
    ],
  ])('reads %s', (_, extra, reason, deadline) => {
    expect(disruptionSignalOf(node({}, extra), T)).toEqual({
      node: 'n1',
      reason,
      deadline,
    });
  });

  it('keeps the strongest signal: a notice on a cordoned node is a notice', () => {
    const signal = disruptionSignalOf(
      node(
        {},
        {
          unschedulable: true,
          taints: [
            {
              key: 'aws-node-termination-handler/rebalance-recommendation',
              effect: 'NoSchedule',
            },
            {
              key: 'aws-node-termination-handler/spot-itn',
              effect: 'NoSchedule',
            },
          ],
        },
      ),
      T,
    );
    expect(signal).toMatchObject({
      reason: 'notice',
      deadline: T + NOTICE_WINDOW_MS.aws,
    });
  });

  it('ignores a condition that is not True', () => {
    expect(
      disruptionSignalOf(
        node(
          {},
          { conditions: [{ type: 'PreemptScheduled', status: 'False' }] },
        ),
        T,
      ),
    ).toBeUndefined();
  });
});

describe('quantities', () => {
  it.each([
    ['2', 2000],
    ['500m', 500],
    ['0.25', 250],
    ['1.5', 1500],
    [undefined, 0],
  ])('cpu %s is %d m', (q, m) => {
    expect(cpuMillisOf(q)).toBe(m);
  });

  it.each([
    ['8Gi', 8192],
    ['512Mi', 512],
    ['1G', 1e9 / 2 ** 20],
    ['1048576', 1],
    ['1.5Gi', 1536],
  ])('memory %s is %d MiB', (q, mib) => {
    expect(memoryMiBOf(q)).toBeCloseTo(mib);
  });

  it('refuses what is not a quantity', () => {
    expect(() => memoryMiBOf('lots')).toThrow('not a Kubernetes quantity');
  });

  it('counts a pod by its containers, or its largest init container when that is larger', () => {
    const p = pod('500m', '1Gi');
    p.spec!.initContainers = [
      { name: 'load', resources: { requests: { cpu: '2', memory: '256Mi' } } },
    ];
    expect(podRequestsOf(p)).toEqual({ cpuMillis: 2000, memoryMiB: 1024 });
  });
});

describe('nodeViewOf', () => {
  it('gives the pool, and what the running pods leave free', () => {
    const view = nodeViewOf(
      node({
        'karpenter.sh/capacity-type': 'spot',
        'node.kubernetes.io/instance-type': 'm5.xlarge',
        'topology.kubernetes.io/zone': 'us-east-1a',
      }),
      [pod('1', '4Gi'), pod('500m', '2Gi'), pod('3', '8Gi', 'Succeeded')],
    );
    expect(view).toEqual({
      name: 'n1',
      capacityType: 'spot',
      instanceType: 'm5.xlarge',
      zone: 'us-east-1a',
      allocatable: { cpuMillis: 4000, memoryMiB: 16384 },
      free: { cpuMillis: 2500, memoryMiB: 10240 },
      terminatesAt: undefined,
      unschedulable: false,
    });
  });

  it('marks a node with a notice as terminating and closed to new pods', () => {
    const view = nodeViewOf(node({}), [], {
      node: 'n1',
      reason: 'notice',
      deadline: T + 120_000,
    });
    expect(view).toMatchObject({
      terminatesAt: T + 120_000,
      unschedulable: true,
    });
  });
});
