import type { Entity } from '@backstage/catalog-model';
import { ANNOTATION_SPOT } from '@ferry/plugin-ferry-common';

/**
 * Whether an entity carries `ferry.dev/spot`, whatever its value: an entity
 * marked `disabled` still shows the tab so its owners can opt in from it.
 */
export function isFerryAvailable(entity: Entity): boolean {
  return Boolean(entity.metadata.annotations?.[ANNOTATION_SPOT]);
}

/** The same condition as a filter predicate, for new-system extensions and config. */
export const ferryEntityFilter = {
  [`metadata.annotations.${ANNOTATION_SPOT}`]: { $exists: true },
};
