import type { KubeConfig } from '@kubernetes/client-node';
import { FERRY_API_VERSION, Migration } from '../../api/v1alpha1';
import {
  MigrationConflictError,
  MigrationStore,
} from '../../migration/MigrationStore';
import {
  apiRequest,
  collectionPath,
  isNotFound,
  KubeApiError,
} from '../client/apiRequest';
import { MIGRATIONS } from '../client/resources';

interface MigrationList {
  metadata: { continue?: string };
  items: Migration[];
}

/** Page size when listing Migrations, which are kept for history and add up. */
const LIST_PAGE_SIZE = 500;

/**
 * Migrations as `ferry.dev/v1alpha1` objects on the cluster, their progress in
 * the status subresource. The API server's resourceVersion check is the store's
 * compare-and-swap: two operators that both think they lead cannot both advance
 * one migration.
 */
export class KubeMigrationStore implements MigrationStore {
  constructor(
    private readonly kubeConfig: KubeConfig,
    /** The one namespace to list, or every namespace when left out. */
    private readonly namespace?: string,
  ) {}

  async get(namespace: string, name: string): Promise<Migration | undefined> {
    try {
      return withStatus(
        await apiRequest<Migration>(
          this.kubeConfig,
          'GET',
          this.path(namespace, name),
        ),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list(): Promise<Migration[]> {
    const items: Migration[] = [];
    let continueToken: string | undefined;
    do {
      const page = await apiRequest<MigrationList>(
        this.kubeConfig,
        'GET',
        collectionPath(MIGRATIONS, this.namespace),
        { query: { limit: LIST_PAGE_SIZE, continue: continueToken } },
      );
      // Items of a list carry no kind; give them theirs.
      items.push(
        ...page.items.map(
          (item): Migration =>
            withStatus({
              ...item,
              apiVersion: FERRY_API_VERSION,
              kind: 'Migration',
            }),
        ),
      );
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return items;
  }

  /**
   * Creates the object, then writes its status: the API server ignores the status
   * of a create when the status is a subresource.
   */
  async create(migration: Migration): Promise<Migration> {
    const { namespace, name, labels, annotations } = migration.metadata;
    let created: Migration;
    try {
      created = await apiRequest<Migration>(
        this.kubeConfig,
        'POST',
        collectionPath(MIGRATIONS, namespace),
        {
          body: {
            apiVersion: migration.apiVersion,
            kind: 'Migration',
            metadata: { name, namespace, labels, annotations },
            spec: migration.spec,
          },
        },
      );
    } catch (error) {
      throw conflictOr(error, `migration ${namespace}/${name} already exists`);
    }
    // A new migration's status is what a Migration without status reads as: no
    // need for the second write (half the writes of a burst of reclaims).
    if (!migration.status || isInitial(migration)) return withStatus(created);
    return this.updateStatus({ ...created, status: migration.status });
  }

  async updateStatus(migration: Migration): Promise<Migration> {
    const { namespace, name } = migration.metadata;
    try {
      return await apiRequest<Migration>(
        this.kubeConfig,
        'PUT',
        `${this.path(namespace, name)}/status`,
        { body: migration },
      );
    } catch (error) {
      throw conflictOr(
        error,
        `migration ${namespace}/${name} changed since resourceVersion ${migration.metadata.resourceVersion}`,
      );
    }
  }

  private path(namespace: string, name: string): string {
    return `${collectionPath(MIGRATIONS, namespace)}/${encodeURIComponent(
      name,
    )}`;
  }
}

/**
 * A Migration without status is one whose creator has not written its status yet
 * (the status is a second write), or one a person created with kubectl: either
 * way it is a migration in phase Planned, created when the object was.
 */
function withStatus(migration: Migration): Migration {
  if (migration.status) return migration;
  const createdAt =
    migration.metadata.creationTimestamp ?? new Date().toISOString();
  return {
    ...migration,
    status: {
      phase: 'Planned',
      phases: [{ phase: 'Planned', startedAt: createdAt }],
      targetNode: migration.spec.targetNode,
      bytesMoved: 0,
      driverState: {},
      attempts: 0,
    },
  };
}

/** Whether the status is the one `withStatus` gives a Migration that has none. */
function isInitial(migration: Migration): boolean {
  const status = migration.status;
  if (!status) return true;
  return (
    status.phase === 'Planned' &&
    status.phases.length === 1 &&
    status.phases[0].phase === 'Planned' &&
    !status.phases[0].finishedAt &&
    status.bytesMoved === 0 &&
    (status.attempts ?? 0) === 0 &&
    Object.keys(status.driverState ?? {}).length === 0 &&
    status.targetNode === migration.spec.targetNode &&
    status.message === undefined &&
    status.targetPod === undefined &&
    status.writePauseMs === undefined
  );
}

/** 409 (changed or exists) and 404 (gone) are conflicts to the state machine; the rest pass through. */
function conflictOr(error: unknown, message: string): unknown {
  if (
    error instanceof KubeApiError &&
    (error.code === 409 || error.code === 404)
  ) {
    return new MigrationConflictError(`${message}: ${error.message}`);
  }
  return error;
}
