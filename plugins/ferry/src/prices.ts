import type {
  EntitySpotStatus,
  ReplicaPlacement,
} from '@ferry/plugin-ferry-common';

/**
 * What the operator could not price. Its `PricesKnown` condition is False when a
 * replica runs in a pool it has no price for (a region the shipped spot history does
 * not cover, no on-demand price configured); such a replica reports a cost of 0,
 * which must read as unknown, not as free.
 */
export interface UnknownPrices {
  /** Replicas whose cost is unknown. */
  replicas: number;
  /** The operator's own words: which replicas, and what to configure. */
  message: string;
}

/** The status's unpriced replicas, or undefined when every price is known. */
export function unknownPrices(
  status: Pick<EntitySpotStatus, 'conditions' | 'replicas'>,
): UnknownPrices | undefined {
  const condition = status.conditions?.find(
    c => c.type === 'PricesKnown' && c.status === 'False',
  );
  if (!condition) return undefined;
  return {
    replicas: status.replicas.filter(r => isUnpriced(r, true)).length,
    message: condition.message,
  };
}

/** A replica's cost is unknown when the operator says prices are missing and gave it 0. */
export function isUnpriced(
  replica: ReplicaPlacement,
  pricesMissing: boolean,
): boolean {
  return pricesMissing && replica.hourlyCostUsd === 0;
}
