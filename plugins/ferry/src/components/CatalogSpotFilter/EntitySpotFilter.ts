import type { Entity } from '@backstage/catalog-model';
import type {
  DefaultEntityFilters,
  EntityFilter,
} from '@backstage/plugin-catalog-react';
import { ANNOTATION_SPOT } from '@ferry/plugin-ferry-common';

/** The value of `ferry.dev/spot` that puts an entity on spot, and the filter's query value. */
const ON_SPOT = 'enabled';

/**
 * The catalog's entities whose catalog-info.yaml opts them into spot
 * placement (`ferry.dev/spot: enabled`). The catalog backend filters by it,
 * and it is kept in the page's URL as `filters[spot]=enabled`.
 *
 * @public
 */
export class EntitySpotFilter implements EntityFilter {
  getCatalogFilters(): Record<string, string> {
    return { [`metadata.annotations.${ANNOTATION_SPOT}`]: ON_SPOT };
  }

  filterEntity(entity: Entity): boolean {
    return isOnSpot(entity);
  }

  toQueryValue(): string {
    return ON_SPOT;
  }

  /** Whether a query value of the catalog page's URL asks for this filter. */
  static isAskedFor(value: string | string[] | undefined): boolean {
    return [value ?? []].flat().includes(ON_SPOT);
  }
}

/** The catalog's filters with Ferry's `spot` filter. @public */
export type FerryCatalogFilters = DefaultEntityFilters & {
  spot?: EntitySpotFilter;
};

/** Whether an entity's catalog-info.yaml opts it into spot placement. @public */
export function isOnSpot(entity: Entity): boolean {
  return entity.metadata.annotations?.[ANNOTATION_SPOT]?.trim() === ON_SPOT;
}
