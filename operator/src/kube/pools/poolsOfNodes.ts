import type { CapacityPool, NodeView } from '../../core/model';
import type { PriceBook } from './PoolPriceFeed';

/**
 * The price the planner ranks a pool by when nobody knows its price (`PriceBook`
 * has none): the same for all such pools, so they rank by room, spread and risk
 * alone. Status never shows it: there the price is unknown.
 */
export const UNPRICED_POOL_USD_PER_HOUR = 1;

/**
 * The pools the cluster's nodes belong to, one per (instance type, zone,
 * capacity type), offering what the largest node of the pool offers, at the
 * prices `prices` knows. None is launchable: Ferry does not launch nodes on a
 * cluster (Karpenter or the node groups do), so moves go to nodes that exist.
 */
export function poolsOfNodes(
  nodes: readonly NodeView[],
  prices?: PriceBook,
): CapacityPool[] {
  const pools = new Map<string, CapacityPool>();
  for (const node of nodes) {
    const key = `${node.instanceType}/${node.zone}/${node.capacityType}`;
    const known = pools.get(key);
    if (known && known.allocatable.cpuMillis >= node.allocatable.cpuMillis)
      continue;
    pools.set(key, {
      instanceType: node.instanceType,
      zone: node.zone,
      capacityType: node.capacityType,
      priceUsdPerHour:
        prices?.priceOf(node)?.usdPerHour ?? UNPRICED_POOL_USD_PER_HOUR,
      onDemandPriceUsdPerHour:
        prices?.onDemandPriceOf(node)?.usdPerHour ?? UNPRICED_POOL_USD_PER_HOUR,
      // The risk model's, when the operator runs one (`withInterruptionRisk`).
      interruptionRisk: 0,
      allocatable: node.allocatable,
      launchable: false,
    });
  }
  return [...pools.values()];
}

/**
 * The pools with each spot pool's interruption risk from `riskOf` (the
 * `PoolRiskFeed`), for planning and the placement webhook; permanent pools keep
 * their 0.
 */
export function withInterruptionRisk(
  pools: readonly CapacityPool[],
  riskOf: (pool: CapacityPool) => number,
): CapacityPool[] {
  return pools.map(pool =>
    pool.capacityType === 'spot'
      ? { ...pool, interruptionRisk: riskOf(pool) }
      : pool,
  );
}

/**
 * `poolsOfNodes` of the nodes `nodes` shows, worked out again only when the
 * nodes' cache (`generation`) or the price book changed: the placement webhook
 * asks for the pools on every review, and the nodes are thousands.
 */
export function poolsOfNodesWhileUnchanged(
  nodes: { readonly generation: number; views(): readonly NodeView[] },
  prices: () => PriceBook | undefined,
): () => CapacityPool[] {
  let memo:
    | { generation: number; prices?: PriceBook; pools: CapacityPool[] }
    | undefined;
  return () => {
    const book = prices();
    if (memo?.generation !== nodes.generation || memo.prices !== book) {
      memo = {
        generation: nodes.generation,
        prices: book,
        pools: poolsOfNodes(nodes.views(), book),
      };
    }
    // The callers' own array; the pools are shared (read them, do not change them).
    return [...memo.pools];
  };
}
