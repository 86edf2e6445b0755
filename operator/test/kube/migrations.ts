import type { KubeConfig } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { MIGRATIONS } from '../../src/kube/client/resources';

/** The Migrations of a namespace as the API server has them now: what the suites expect on. */
export async function migrationsIn(
  kubeConfig: KubeConfig,
  namespace: string,
): Promise<Migration[]> {
  return (
    await apiRequest<{ items: Migration[] }>(
      kubeConfig,
      'GET',
      collectionPath(MIGRATIONS, namespace),
    )
  ).items;
}
