import { Entity } from '@backstage/catalog-model';
import {
  createConditionExports,
  createPermissionResourceRef,
  createPermissionRule,
} from '@backstage/plugin-permission-node';
import { z } from 'zod';
import { ownersOf } from '../services/EntityReader/EntityAccess';

/** Query form of Ferry's rules: a catalog-style filter on the entity. */
export type FerryEntityFilter = { key: string; values: string[] };

/**
 * Ferry's permissions are about catalog entities; Ferry registers the resource
 * type under its own plugin ID and loads the entities from the catalog, so the
 * permission backend asks Ferry to evaluate the conditions on Ferry's permissions.
 */
export const ferryEntityResourceRef = createPermissionResourceRef<
  Entity,
  FerryEntityFilter
>().with({ pluginId: 'ferry', resourceType: 'catalog-entity' });

/** Allows when the user (through their ownership claims) owns the entity. */
export const isEntityOwner = createPermissionRule({
  name: 'IS_ENTITY_OWNER',
  description: 'Allow entities owned by the user or by one of their groups',
  resourceRef: ferryEntityResourceRef,
  paramsSchema: z.object({
    claims: z
      .array(z.string())
      .describe(
        'Ownership entity refs of the user, e.g. group:default/platform-team',
      ),
  }),
  apply: (entity, { claims }) => {
    const mine = new Set(claims.map(c => c.toLocaleLowerCase('en-US')));
    return ownersOf(entity).some(owner => mine.has(owner));
  },
  toQuery: ({ claims }) => ({ key: 'relations.ownedBy', values: claims }),
});

/** Every rule Ferry registers. */
export const ferryPermissionRules = { isEntityOwner };

/** Conditions for permission policies that decide on Ferry's permissions. */
export const {
  conditions: ferryConditions,
  createConditionalDecision: createFerryConditionalDecision,
} = createConditionExports({
  resourceRef: ferryEntityResourceRef,
  rules: ferryPermissionRules,
});
