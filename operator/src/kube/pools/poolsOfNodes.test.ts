import type { NodeView } from '../../core/model';
import type { PriceBook } from './PoolPriceFeed';
import {
  poolsOfNodes,
  poolsOfNodesWhileUnchanged,
  withInterruptionRisk,
} from './poolsOfNodes';

function node(
  name: string,
  instanceType: string,
  zone: string,
  capacityType: 'spot' | 'on-demand',
  cpuMillis = 2000,
): NodeView {
  const allocatable = { cpuMillis, memoryMiB: 8192 };
  return {
    name,
    instanceType,
    zone,
    capacityType,
    allocatable,
    free: allocatable,
  };
}

describe('poolsOfNodes', () => {
  it('makes one unpriced, unlaunchable pool per type, zone and capacity type', () => {
    const pools = poolsOfNodes([
      node('a', 'm5.large', 'us-east-1a', 'spot'),
      node('b', 'm5.large', 'us-east-1a', 'spot', 4000),
      node('c', 'm5.large', 'us-east-1a', 'on-demand'),
      node('d', 'm5.large', 'us-east-1b', 'spot'),
    ]);
    expect(pools).toHaveLength(3);
    expect(pools[0]).toMatchObject({
      instanceType: 'm5.large',
      zone: 'us-east-1a',
      capacityType: 'spot',
      allocatable: { cpuMillis: 4000 },
      launchable: false,
    });
    expect(new Set(pools.map(p => p.priceUsdPerHour)).size).toBe(1);
  });
});

describe('withInterruptionRisk', () => {
  it("gives spot pools the model's risk and leaves permanent capacity at 0", () => {
    const pools = withInterruptionRisk(
      poolsOfNodes([
        node('a', 'm5.large', 'us-east-1a', 'spot'),
        node('b', 'm5.large', 'us-east-1b', 'spot'),
        node('c', 'm5.large', 'us-east-1a', 'on-demand'),
      ]),
      pool => (pool.zone === 'us-east-1a' ? 0.3 : 0.01),
    );
    expect(
      pools.map(p => [p.capacityType, p.zone, p.interruptionRisk]),
    ).toEqual([
      ['spot', 'us-east-1a', 0.3],
      ['spot', 'us-east-1b', 0.01],
      ['on-demand', 'us-east-1a', 0],
    ]);
  });
});

describe('poolsOfNodesWhileUnchanged', () => {
  it('answers as poolsOfNodes, and looks at the nodes again only when they or the prices changed', () => {
    const nodes = {
      generation: 1,
      list: [
        node('a', 'm5.large', 'us-east-1a', 'spot'),
        node('b', 'm5.large', 'us-east-1b', 'spot'),
      ],
      looks: 0,
      views() {
        this.looks++;
        return this.list;
      },
    };
    const book = (usdPerHour: number): PriceBook =>
      ({
        priceOf: () => ({ usdPerHour }),
        onDemandPriceOf: () => ({ usdPerHour: 1 }),
      } as unknown as PriceBook);
    let prices = book(0.05);
    const pools = poolsOfNodesWhileUnchanged(nodes, () => prices);
    expect(pools()).toEqual(poolsOfNodes(nodes.list, prices));
    pools().pop();
    expect(pools()).toEqual(poolsOfNodes(nodes.list, prices));
    expect(nodes.looks).toBe(1);

    nodes.list = [...nodes.list, node('c', 'm5.large', 'us-east-1c', 'spot')];
    nodes.generation++;
    expect(pools().map(p => p.zone)).toEqual([
      'us-east-1a',
      'us-east-1b',
      'us-east-1c',
    ]);
    expect(nodes.looks).toBe(2);

    prices = book(0.07);
    expect(pools().map(p => p.priceUsdPerHour)).toEqual([0.07, 0.07, 0.07]);
    expect(nodes.looks).toBe(3);
  });
});
