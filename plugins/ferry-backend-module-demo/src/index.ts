/**
 * Ferry's demo mode as a module of its backend plugin.
 *
 * @packageDocumentation
 */
export { ferryModuleDemo as default } from './module';
