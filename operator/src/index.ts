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
export type { DemoOperatorOptions } from './demo/DemoOperator';
export { DemoCluster } from './demo/DemoCluster';
export type { DemoClusterOptions, DemoWorkloadSeed } from './demo/DemoCluster';
export { EXAMPLE_WORKLOADS } from './demo/exampleWorkloads';
export { createPortalDemo } from './demo/portalDemo';
export type { PortalDemo, PortalDemoOptions } from './demo/portalDemo';
export * from './core/model';
export * from './core/capacity';
export * from './core/placement';
export * from './core/migrationPlanner';
export * from './core/risk';
export * from './core/riskTraining';
export * from './core/accounting';
export * from './core/proactive';
export * from './core/headroom';
export * from './core/random';
export { permanentFloor, maxMembersPerFailureDomain } from './core/quorum';
export * from './cloud/CloudProvider';
export * from './cloud/nodeLabels';
export * from './cloud/marketData';
export * from './cloud/marketFiles';
export * from './cloud/SimulatedSpotMarket';
export * from './cloud/SimulatedCloudProvider';
export * from './demo/FleetSimulation';
