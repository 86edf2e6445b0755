import type { KubeConfig } from '@kubernetes/client-node';
import {
  FERRY_API_VERSION,
  Migration,
  SpotPolicy,
  SpotPolicySpec,
  SpotPolicyStatus,
} from '../../api/v1alpha1';
import { type ClusterWrites, WriteConflictError } from '../../OperatorPorts';
import { apiRequest, collectionPath, KubeApiError } from './apiRequest';
import { patchStatus } from './objects';
import { MIGRATIONS, SPOT_POLICIES } from './resources';

const HTTP_NOT_FOUND = 404;
const HTTP_CONFLICT = 409;

/** A 409 from the API server as the ports say it; anything else as it came. */
function conflictAsPort(error: unknown): never {
  if (error instanceof KubeApiError && error.code === HTTP_CONFLICT) {
    throw new WriteConflictError(error.message);
  }
  throw error;
}

/** The controllers' writes on a cluster, each one request to the API server. */
export class KubeClusterWrites implements ClusterWrites {
  constructor(private readonly kubeConfig: KubeConfig) {}

  createSpotPolicy(policy: {
    namespace: string;
    name: string;
    annotations: Record<string, string>;
    spec: SpotPolicySpec;
  }): Promise<SpotPolicy> {
    return apiRequest<SpotPolicy>(
      this.kubeConfig,
      'POST',
      collectionPath(SPOT_POLICIES, policy.namespace),
      {
        body: {
          apiVersion: FERRY_API_VERSION,
          kind: 'SpotPolicy',
          metadata: {
            name: policy.name,
            namespace: policy.namespace,
            annotations: policy.annotations,
          },
          spec: policy.spec,
        },
      },
    ).catch(conflictAsPort);
  }

  updateSpotPolicy(
    policy: SpotPolicy,
    change: {
      spec: Partial<SpotPolicySpec>;
      annotations: Record<string, string>;
    },
  ): Promise<SpotPolicy> {
    return apiRequest<SpotPolicy>(
      this.kubeConfig,
      'PATCH',
      `${collectionPath(
        SPOT_POLICIES,
        policy.metadata.namespace,
      )}/${encodeURIComponent(policy.metadata.name)}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          metadata: {
            resourceVersion: policy.metadata.resourceVersion,
            annotations: change.annotations,
          },
          spec: change.spec,
        },
      },
    ).catch(conflictAsPort);
  }

  async patchSpotPolicyStatus(
    namespace: string,
    name: string,
    status: Partial<SpotPolicyStatus>,
  ): Promise<void> {
    await patchStatus(this.kubeConfig, SPOT_POLICIES, namespace, name, status);
  }

  async deleteMigration(migration: Migration): Promise<boolean> {
    const { namespace, name, uid, resourceVersion } = migration.metadata;
    try {
      await apiRequest(
        this.kubeConfig,
        'DELETE',
        `${collectionPath(MIGRATIONS, namespace)}/${encodeURIComponent(name)}`,
        { body: { preconditions: { uid, resourceVersion } } },
      );
      return true;
    } catch (error) {
      const code = error instanceof KubeApiError ? error.code : undefined;
      if (code === HTTP_NOT_FOUND || code === HTTP_CONFLICT) return false;
      throw error;
    }
  }
}
