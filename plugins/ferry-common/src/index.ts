/**
 * Types, catalog annotation keys and permissions shared by Ferry's plugins.
 *
 * @packageDocumentation
 */
export * from './annotations';
export * from './permissions';
export * from './types';
