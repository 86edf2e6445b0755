import type { CapacityPool, NodeView } from '../core/model';
import type { MigrationDriver } from '../migration/MigrationDriver';
import { PermanentMigrationError } from '../migration/MigrationDriver';

/**
 * The price every pool is given while the operator on a cluster has no price
 * feed: all pools cost the same, so targets rank by room, spread and risk alone.
 */
export const UNPRICED_POOL_USD_PER_HOUR = 1;

/**
 * The pools the cluster's nodes belong to, one per (instance type, zone,
 * capacity type), offering what the largest node of the pool offers. None is
 * launchable: Ferry does not launch nodes on a cluster (Karpenter or the node
 * groups do), so moves go to nodes that exist.
 */
export function poolsOfNodes(nodes: readonly NodeView[]): CapacityPool[] {
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
      priceUsdPerHour: UNPRICED_POOL_USD_PER_HOUR,
      onDemandPriceUsdPerHour: UNPRICED_POOL_USD_PER_HOUR,
      interruptionRisk: 0,
      allocatable: node.allocatable,
      launchable: false,
    });
  }
  return [...pools.values()];
}

/**
 * Stands for a migration method whose driver has no Kubernetes runtime in this
 * build: a Migration asking for it fails before anything is touched (it rolls
 * back with the reason in its status and a Warning Event), instead of waiting
 * forever for a driver that is not there.
 */
export class UnavailableDriver implements MigrationDriver {
  constructor(
    readonly method: MigrationDriver['method'],
    private readonly reason: string,
  ) {}

  async prepareTarget(): Promise<void> {
    throw new PermanentMigrationError(
      `the ${this.method} migration method is not available on this operator: ${this.reason}; the member was not moved`,
    );
  }
  async transfer(): Promise<void> {}
  async switchOver(): Promise<void> {}
  async verify(): Promise<void> {}
  async cleanUp(): Promise<void> {}
  async rollBack(): Promise<void> {
    // Nothing was done, so nothing to undo.
  }
}
