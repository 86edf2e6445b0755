/**
 * Ferry's frontend plugin: the entity tab and fleet page for stateful
 * services on spot capacity.
 *
 * @packageDocumentation
 */
export { ferryApiRef, FerryClient } from './api';
export type { FerryApi, MigrationQuery, TimeRange } from './api';
export { isFerryAvailable } from './conditions';
export { EntitySpotContent } from './components/EntitySpotContent';
