/**
 * Node-side pieces of Ferry shared by its backend plugin, its backend modules and
 * its operator: the shapes of the `ferry.dev` custom resources, the client the
 * portal reads a cluster through, and the extension point for clusters.
 *
 * @packageDocumentation
 */
export * from './v1alpha1';
export * from './FerryClusterClient';
export * from './demo';
export * from './extensions';
