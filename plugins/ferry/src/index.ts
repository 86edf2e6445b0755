/**
 * Ferry's frontend plugin: the entity tab and fleet page for stateful
 * services on spot capacity. This entry point serves the legacy frontend
 * system; `@ferry/plugin-ferry/alpha` serves the new one.
 *
 * @packageDocumentation
 */
export {
  ferryPlugin,
  FerryPage,
  EntityFerryContent,
  EntityFerrySpotCard,
} from './legacyPlugin';
export { ferryApiRef, FerryClient } from './api';
export type { FerryApi, MigrationQuery, TimeRange } from './api';
export { isFerryAvailable } from './conditions';
export {
  rootRouteRef,
  entityContentRouteRef,
  catalogEntityRouteRef,
} from './routes';
