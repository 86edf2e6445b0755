import type { Entity } from '@backstage/catalog-model';
import type { TableColumn } from '@backstage/core-components';
import { ANNOTATION_SPOT } from '@ferry/plugin-ferry-common';

/** What the column shows for an entity's `ferry.dev/spot`. */
function spotLabel(entity: Entity): string {
  const value = entity.metadata.annotations?.[ANNOTATION_SPOT]?.trim();
  if (value === 'enabled') return 'On spot';
  if (value === 'disabled') return 'Opted out';
  return '';
}

/**
 * A "Spot" column for the legacy frontend system's catalog table: "On spot"
 * for entities whose `ferry.dev/spot` is `enabled`, "Opted out" for
 * `disabled`, empty otherwise. Its rows are the catalog table's
 * (`CatalogTableRow`), or anything else with an entity. The new frontend
 * system's catalog page has no extension point for columns; use the filter there.
 *
 * @public
 */
export function createFerrySpotColumn<
  Row extends { entity: Entity } = { entity: Entity },
>(): TableColumn<Row> {
  return {
    title: 'Spot',
    highlight: false,
    render: ({ entity }) => spotLabel(entity),
    customSort: (a, b) =>
      spotLabel(a.entity).localeCompare(spotLabel(b.entity)),
    customFilterAndSearch: (query, { entity }) =>
      spotLabel(entity).toLowerCase().includes(String(query).toLowerCase()),
  };
}
