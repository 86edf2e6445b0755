/**
 * Ferry for Backstage's new frontend system.
 *
 * @packageDocumentation
 */
export { ferryPlugin as default } from './plugin';
export { ferryApi, ferrySpotEntityContent } from './plugin';
