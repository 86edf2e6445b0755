/**
 * Ferry's operator: placement of stateful workloads over spot and permanent
 * nodes, interruption prediction, and live migration of their state.
 *
 * @packageDocumentation
 */
export * from './api/v1alpha1';
export * from './api/FerryClusterClient';
export * from './core/clock';
export { DemoOperator, quorumOf } from './demo/DemoOperator';
export type { DemoOperatorOptions, DemoWorkloadSeed } from './demo/DemoOperator';
export { EXAMPLE_WORKLOADS } from './demo/exampleWorkloads';
