import { FERRY_API_VERSION } from '../../api/v1alpha1';
import type { ResourceType } from './apiRequest';

/** Ferry's SpotPolicies. */
export const SPOT_POLICIES: ResourceType = {
  apiVersion: FERRY_API_VERSION,
  kind: 'SpotPolicy',
  plural: 'spotpolicies',
  namespaced: true,
};

/** Ferry's Migrations. */
export const MIGRATIONS: ResourceType = {
  apiVersion: FERRY_API_VERSION,
  kind: 'Migration',
  plural: 'migrations',
  namespaced: true,
};

export const NODES: ResourceType = {
  apiVersion: 'v1',
  kind: 'Node',
  plural: 'nodes',
  namespaced: false,
};
export const PODS: ResourceType = {
  apiVersion: 'v1',
  kind: 'Pod',
  plural: 'pods',
  namespaced: true,
};
export const DEPLOYMENTS: ResourceType = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};
export const STATEFUL_SETS: ResourceType = {
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  plural: 'statefulsets',
  namespaced: true,
};
export const REPLICA_SETS: ResourceType = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  plural: 'replicasets',
  namespaced: true,
};
export const POD_DISRUPTION_BUDGETS: ResourceType = {
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  plural: 'poddisruptionbudgets',
  namespaced: true,
};
