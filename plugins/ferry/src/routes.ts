import {
  createExternalRouteRef,
  createRouteRef,
} from '@backstage/core-plugin-api';

/**
 * The fleet page. Route refs of `core-plugin-api` work in both the new and
 * the legacy frontend system, so one ref serves both plugin exports.
 */
export const rootRouteRef = createRouteRef({ id: 'ferry' });

/** The entity tab, for linking to it from elsewhere in the app. */
export const entityContentRouteRef = createRouteRef({
  id: 'ferry:entity-content',
});

/**
 * A catalog entity's page, where the fleet page links each service. Bound to
 * the catalog's entity page by default; without a catalog the fleet page
 * shows plain names.
 */
export const catalogEntityRouteRef = createExternalRouteRef({
  id: 'ferry:catalog-entity',
  params: ['namespace', 'kind', 'name'],
  optional: true,
  defaultTarget: 'catalog.catalogEntity',
});
