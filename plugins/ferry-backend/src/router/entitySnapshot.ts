import { NotFoundError } from '@backstage/errors';
import { WorkloadSnapshot } from '../database/DatabaseFerryStore';
import { refOf } from '../services/PolicyService/PolicyService';
import { FerryRouterOptions } from './types';

/** The entity ref of a request's `{kind}/{namespace}/{name}`. */
export function entityRefOfPath(params: {
  kind: string;
  namespace: string;
  name: string;
}): string {
  return refOf(params);
}

/**
 * The entity's latest report. When there is none yet, the entity's annotations
 * are applied first (a just-registered entity need not wait for the next sync),
 * and otherwise the 404 says why: not in the catalog, no Kubernetes mapping, no
 * workload, or not opted in.
 */
export async function requireSnapshot(
  options: FerryRouterOptions,
  entityRef: string,
): Promise<WorkloadSnapshot> {
  const stored = await options.reports.snapshot(entityRef);
  if (stored) return stored;
  const entity = await options.access.get(entityRef);
  await options.policies.syncFromCatalog(entity);
  const synced = await options.reports.snapshot(entityRef);
  if (synced) return synced;
  await options.locator.locate(entity);
  throw new NotFoundError(
    `${entityRef} has no spot policy yet; opt it in with the annotation ferry.dev/spot: enabled in its catalog-info.yaml, or with PUT /entities/{kind}/{namespace}/{name}/policy {"enabled": true}`,
  );
}
