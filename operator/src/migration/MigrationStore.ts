import type { Migration } from '../api/v1alpha1';

/**
 * Where Migration objects live between steps: the in-memory cluster in demo
 * mode, the CRD's status subresource on a cluster.
 *
 * Writes are compare-and-swap on `metadata.resourceVersion`, as the Kubernetes
 * API does, so two operators that both think they lead cannot both advance one
 * migration.
 */
export interface MigrationStore {
  /** The migration, or undefined when there is none by that name. */
  get(namespace: string, name: string): Promise<Migration | undefined>;
  /** Every migration, final or not. */
  list(): Promise<Migration[]>;
  /** Creates a migration; fails with {@link MigrationConflictError} when it exists. */
  create(migration: Migration): Promise<Migration>;
  /**
   * Replaces the migration's status if its resourceVersion still matches;
   * returns the stored object with its new resourceVersion.
   */
  updateStatus(migration: Migration): Promise<Migration>;
}

/** The stored object changed since it was read (another writer, or a stale copy). */
export class MigrationConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationConflictError';
  }
}

/** A {@link MigrationStore} in process memory, for demo mode and tests. */
export class InMemoryMigrationStore implements MigrationStore {
  private readonly objects = new Map<string, Migration>();
  private version = 0;

  async get(namespace: string, name: string): Promise<Migration | undefined> {
    const found = this.objects.get(key(namespace, name));
    return found ? structuredClone(found) : undefined;
  }

  async list(): Promise<Migration[]> {
    return [...this.objects.values()].map(m => structuredClone(m));
  }

  async create(migration: Migration): Promise<Migration> {
    const k = key(migration.metadata.namespace, migration.metadata.name);
    if (this.objects.has(k)) {
      throw new MigrationConflictError(`migration ${k} already exists`);
    }
    const stored = structuredClone(migration);
    stored.metadata.resourceVersion = String(++this.version);
    this.objects.set(k, stored);
    return structuredClone(stored);
  }

  async updateStatus(migration: Migration): Promise<Migration> {
    const k = key(migration.metadata.namespace, migration.metadata.name);
    const current = this.objects.get(k);
    if (!current) {
      throw new MigrationConflictError(`migration ${k} does not exist`);
    }
    if (current.metadata.resourceVersion !== migration.metadata.resourceVersion) {
      throw new MigrationConflictError(
        `migration ${k} is at resourceVersion ${current.metadata.resourceVersion}, not ${migration.metadata.resourceVersion}`,
      );
    }
    const stored = structuredClone(current);
    stored.status = structuredClone(migration.status);
    stored.metadata.resourceVersion = String(++this.version);
    this.objects.set(k, stored);
    return structuredClone(stored);
  }
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
