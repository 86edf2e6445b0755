import type { KubeConfig } from '@kubernetes/client-node';
import { ResourceType, apiRequest, collectionPath } from './apiRequest';
import type { KubeObject } from '../informers/Reflector';

const MERGE_PATCH = 'application/merge-patch+json';

function objectPath(
  type: ResourceType,
  namespace: string | undefined,
  name: string,
) {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

/**
 * Writes an object's status through its status subresource, as a merge patch: the
 * fields given replace those on the server (lists whole), the rest stay.
 */
export function patchStatus<T = unknown>(
  kubeConfig: KubeConfig,
  type: ResourceType,
  namespace: string | undefined,
  name: string,
  status: object,
): Promise<T> {
  return apiRequest<T>(
    kubeConfig,
    'PATCH',
    `${objectPath(type, namespace, name)}/status`,
    { body: { status }, contentType: MERGE_PATCH },
  );
}

/**
 * Writes an object's finalizers, on the condition that it has not changed since it
 * was read (a 409 Conflict otherwise, for the caller's work queue to retry): a
 * finalizer added or removed on a stale copy could undo someone else's.
 */
function writeFinalizers<T extends KubeObject>(
  kubeConfig: KubeConfig,
  type: ResourceType,
  object: T,
  finalizers: string[],
): Promise<T> {
  const { namespace, name, resourceVersion } = object.metadata ?? {};
  return apiRequest<T>(
    kubeConfig,
    'PATCH',
    objectPath(type, namespace, name!),
    {
      body: { metadata: { resourceVersion, finalizers } },
      contentType: MERGE_PATCH,
    },
  );
}

/** Adds a finalizer to the object unless it has it already; returns the object as stored. */
export async function addFinalizer<
  T extends KubeObject & { metadata?: { finalizers?: string[] } },
>(
  kubeConfig: KubeConfig,
  type: ResourceType,
  object: T,
  finalizer: string,
): Promise<T> {
  const finalizers = object.metadata?.finalizers ?? [];
  if (finalizers.includes(finalizer)) return object;
  return writeFinalizers(kubeConfig, type, object, [...finalizers, finalizer]);
}

/** Removes a finalizer from the object if it has it; returns the object as stored. */
export async function removeFinalizer<
  T extends KubeObject & { metadata?: { finalizers?: string[] } },
>(
  kubeConfig: KubeConfig,
  type: ResourceType,
  object: T,
  finalizer: string,
): Promise<T> {
  const finalizers = object.metadata?.finalizers ?? [];
  if (!finalizers.includes(finalizer)) return object;
  return writeFinalizers(
    kubeConfig,
    type,
    object,
    finalizers.filter(f => f !== finalizer),
  );
}
