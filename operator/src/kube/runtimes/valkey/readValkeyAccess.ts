/**
 * The operator's credentials for a workload's Valkey/Redis members, from the
 * Secret its SpotPolicy names (`spec.valkey.authSecretRef`), read when a
 * Migration of the workload starts running in this process.
 */
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import type { SpotPolicy, WorkloadReference } from '../../../api/v1alpha1';
import { PermanentMigrationError } from '../../../migration/MigrationDriver';
import type { ValkeyAccess } from '../../../migration/valkey/ValkeyAdmin';
import {
  apiRequest,
  collectionPath,
  isNotFound,
  KubeApiError,
} from '../../client/apiRequest';
import { SPOT_POLICIES } from '../../client/resources';

/** The chart value that lists the namespaces whose Secrets the operator may read. */
const SECRET_NAMESPACES_VALUE = 'valkey.secretNamespaces';

/**
 * The credentials named by the policy of `workload` in `namespace`: AUTH for the
 * operator's connections, and the same user and password for replication
 * between members (`masteruser`/`masterauth`). No policy, or no reference: none.
 * A Secret or key that is missing, or that the operator may not read, is a
 * permanent error naming it: retrying does not create a Secret.
 */
export async function readValkeyAccess(
  kubeConfig: KubeConfig,
  namespace: string,
  workload: WorkloadReference,
): Promise<ValkeyAccess> {
  const policies = await apiRequest<{ items: SpotPolicy[] }>(
    kubeConfig,
    'GET',
    collectionPath(SPOT_POLICIES, namespace),
  );
  const policy = policies.items.find(
    p =>
      p.spec.workloadRef.kind === workload.kind &&
      p.spec.workloadRef.name === workload.name,
  );
  const ref = policy?.spec.valkey?.authSecretRef;
  if (!policy || !ref) return {};
  const named = `Secret ${namespace}/${ref.name} (SpotPolicy ${namespace}/${policy.metadata.name}, spec.valkey.authSecretRef)`;
  const secret = await apiRequest<V1Secret>(
    kubeConfig,
    'GET',
    `/api/v1/namespaces/${encodeURIComponent(
      namespace,
    )}/secrets/${encodeURIComponent(ref.name)}`,
  ).catch(error => {
    if (isNotFound(error)) {
      throw new PermanentMigrationError(
        `${named} does not exist; create it with the members' password, or remove the reference if they need no AUTH`,
      );
    }
    if (error instanceof KubeApiError && error.code === 403) {
      throw new PermanentMigrationError(
        `the operator may not read ${named}; add ${namespace} to the chart's ${SECRET_NAMESPACES_VALUE}`,
      );
    }
    throw error;
  });
  const value = (key: string, field: string): string => {
    const encoded = secret.data?.[key];
    if (encoded === undefined) {
      const keys = Object.keys(secret.data ?? {});
      throw new PermanentMigrationError(
        `${named} has no key '${key}' (${field}); its keys are ${
          keys.length ? keys.join(', ') : 'none'
        }`,
      );
    }
    return Buffer.from(encoded, 'base64').toString('utf8');
  };
  const password = value(ref.passwordKey, 'passwordKey');
  const username = ref.usernameKey
    ? value(ref.usernameKey, 'usernameKey')
    : undefined;
  return {
    username,
    password,
    replicationUser: username,
    replicationPassword: password,
  };
}
