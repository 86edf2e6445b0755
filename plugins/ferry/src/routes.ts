import { createRouteRef } from '@backstage/core-plugin-api';

/**
 * The fleet page. A route ref of `core-plugin-api` works in both the new and
 * the legacy frontend system, so one ref serves both plugin exports.
 */
export const rootRouteRef = createRouteRef({ id: 'ferry' });

/** The entity tab, for linking to it from elsewhere in the app. */
export const entityContentRouteRef = createRouteRef({ id: 'ferry:entity-content' });
