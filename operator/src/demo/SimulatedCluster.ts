import {
  FERRY_API_VERSION,
  Migration,
  SpotPolicy,
  SpotPolicySpec,
  SpotPolicyStatus,
} from '../api/v1alpha1';
import {
  MigrationConflictError,
  MigrationStore,
} from '../migration/MigrationStore';
import {
  ClusterWrites,
  Informer,
  InformerFactory,
  InformerRequest,
  WriteConflictError,
} from '../OperatorPorts';
import type { ResourceType } from '../kube/client/apiRequest';
import {
  KubeObject,
  ObjectEvent,
  objectKey,
} from '../kube/informers/Reflector';
import { MIGRATIONS, SPOT_POLICIES } from '../kube/client/resources';

/** The field selector the cluster state asks pods with: only scheduled pods hold state. */
const SCHEDULED_PODS = 'spec.nodeName!=';

interface Stored extends KubeObject {
  metadata?: KubeObject['metadata'] & {
    uid?: string;
    generation?: number;
    creationTimestamp?: string;
  };
}

/** One resource's objects, and the informers that watch them. */
class Collection {
  readonly objects = new Map<string, Stored>();
  readonly watchers = new Set<CollectionInformer<any>>();
  changes = 0;
}

class CollectionInformer<T extends KubeObject> implements Informer<T> {
  private started = false;

  constructor(
    private readonly collection: Collection,
    private readonly request: InformerRequest<T>,
  ) {}

  private admits(object: Stored): boolean {
    if (this.request.fieldSelector !== SCHEDULED_PODS) return true;
    return Boolean((object as { spec?: { nodeName?: string } }).spec?.nodeName);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.collection.watchers.add(this);
    this.request.onList?.('initial');
    // As a reflector's first list: what is there already arrives as ADDED.
    for (const object of this.list()) {
      this.request.onChange({ type: 'ADDED', object });
    }
  }

  stop(): void {
    this.started = false;
    this.collection.watchers.delete(this);
  }

  get synced(): boolean {
    return this.started;
  }

  get generation(): number {
    return this.collection.changes;
  }

  get(key: string): T | undefined {
    const object = this.collection.objects.get(key);
    return object && this.admits(object) ? (object as T) : undefined;
  }

  list(): T[] {
    return [...this.collection.objects.values()].filter(o =>
      this.admits(o),
    ) as T[];
  }

  /** The store changed: tell the state what this informer's selection saw. */
  deliver(
    type: ObjectEvent<T>['type'],
    object: Stored,
    previous?: Stored,
  ): void {
    const now = this.admits(object);
    const before = previous !== undefined && this.admits(previous);
    if (type === 'DELETED') {
      if (before) this.request.onChange({ type, object: object as T });
    } else if (now) {
      this.request.onChange({
        type: before ? 'MODIFIED' : 'ADDED',
        object: object as T,
      });
    } else if (before) {
      this.request.onChange({ type: 'DELETED', object: object as T });
    }
  }
}

/**
 * An in-memory API server for demo mode: it holds the objects the simulated
 * cloud and workloads write (nodes, pods, workloads) and the ones the
 * operator's controllers write (SpotPolicies, Migrations), keeps a
 * resourceVersion per write as the API server does, and feeds the operator's
 * cluster state through its informers. It is the operator's `informers`,
 * `writes` and `migrations` ports at once, so what a controller writes is
 * what the state sees next, as on a cluster.
 */
export class SimulatedCluster implements ClusterWrites, MigrationStore {
  private readonly collections = new Map<string, Collection>();
  private version = 0;
  private uids = 0;

  constructor(private readonly now: () => number) {}

  /** The informers that feed the operator's cluster state from this store. */
  readonly informers: InformerFactory = <T extends KubeObject>(
    request: InformerRequest<T>,
  ) => new CollectionInformer<T>(this.collection(request.type), request);

  private collection(type: ResourceType): Collection {
    let collection = this.collections.get(type.plural);
    if (!collection)
      this.collections.set(type.plural, (collection = new Collection()));
    return collection;
  }

  /** The object by `namespace/name` (or `name`), as stored: read it, do not change it. */
  object<T extends KubeObject>(type: ResourceType, key: string): T | undefined {
    return this.collection(type).objects.get(key) as T | undefined;
  }

  objects<T extends KubeObject>(type: ResourceType): T[] {
    return [...this.collection(type).objects.values()] as T[];
  }

  /**
   * Creates or replaces an object, as the simulation's kubelet, scheduler and
   * workload controllers would; it gets a uid when new and a resourceVersion.
   */
  put<T extends KubeObject>(type: ResourceType, object: T): T {
    const collection = this.collection(type);
    const key = objectKey(object);
    const previous = collection.objects.get(key);
    const stored: Stored = structuredClone(object) as Stored;
    stored.metadata = {
      ...stored.metadata,
      uid:
        stored.metadata?.uid ?? previous?.metadata?.uid ?? `uid-${++this.uids}`,
      creationTimestamp:
        previous?.metadata?.creationTimestamp ??
        stored.metadata?.creationTimestamp ??
        new Date(this.now()).toISOString(),
      resourceVersion: String(++this.version),
    };
    collection.objects.set(key, stored);
    collection.changes++;
    for (const watcher of collection.watchers) {
      watcher.deliver(previous ? 'MODIFIED' : 'ADDED', stored, previous);
    }
    return stored as T;
  }

  /** Deletes an object; false when there was none. */
  remove(type: ResourceType, key: string): boolean {
    const collection = this.collection(type);
    const previous = collection.objects.get(key);
    if (!previous) return false;
    collection.objects.delete(key);
    collection.changes++;
    for (const watcher of collection.watchers) {
      watcher.deliver('DELETED', previous, previous);
    }
    return true;
  }

  async createSpotPolicy(policy: {
    namespace: string;
    name: string;
    annotations: Record<string, string>;
    spec: SpotPolicySpec;
  }): Promise<SpotPolicy> {
    const key = `${policy.namespace}/${policy.name}`;
    if (this.object(SPOT_POLICIES, key)) {
      throw new WriteConflictError(`SpotPolicy ${key} exists already`);
    }
    return structuredClone(
      this.put<SpotPolicy>(SPOT_POLICIES, {
        apiVersion: FERRY_API_VERSION,
        kind: 'SpotPolicy',
        metadata: {
          name: policy.name,
          namespace: policy.namespace,
          generation: 1,
          annotations: policy.annotations,
        },
        spec: structuredClone(policy.spec),
      }),
    );
  }

  async updateSpotPolicy(
    policy: SpotPolicy,
    change: {
      spec: Partial<SpotPolicySpec>;
      annotations: Record<string, string>;
    },
  ): Promise<SpotPolicy> {
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    const current = this.object<SpotPolicy>(SPOT_POLICIES, key);
    if (!current) throw new WriteConflictError(`SpotPolicy ${key} is gone`);
    if (
      policy.metadata.resourceVersion !== undefined &&
      current.metadata.resourceVersion !== policy.metadata.resourceVersion
    ) {
      throw new WriteConflictError(
        `SpotPolicy ${key} is at resourceVersion ${current.metadata.resourceVersion}, not ${policy.metadata.resourceVersion}`,
      );
    }
    return structuredClone(
      this.replaceSpotPolicy(current, change.spec, change.annotations),
    );
  }

  /**
   * Merges a spec change and annotations into a SpotPolicy, counting a new
   * generation when the spec changed, as the API server does for a CRD with a
   * status subresource.
   */
  replaceSpotPolicy(
    current: SpotPolicy,
    spec: Partial<SpotPolicySpec>,
    annotations: Record<string, string> = {},
  ): SpotPolicy {
    const next: SpotPolicySpec = { ...current.spec, ...structuredClone(spec) };
    const changed = JSON.stringify(next) !== JSON.stringify(current.spec);
    return this.put<SpotPolicy>(SPOT_POLICIES, {
      ...current,
      metadata: {
        ...current.metadata,
        generation: (current.metadata.generation ?? 1) + (changed ? 1 : 0),
        annotations: { ...current.metadata.annotations, ...annotations },
      },
      spec: next,
    });
  }

  async patchSpotPolicyStatus(
    namespace: string,
    name: string,
    status: Partial<SpotPolicyStatus>,
  ): Promise<void> {
    const current = this.object<SpotPolicy>(
      SPOT_POLICIES,
      `${namespace}/${name}`,
    );
    if (!current) throw new Error(`SpotPolicy ${namespace}/${name} is gone`);
    this.put<SpotPolicy>(SPOT_POLICIES, {
      ...current,
      status: {
        ...current.status,
        ...structuredClone(status),
      } as SpotPolicyStatus,
    });
  }

  async deleteMigration(migration: Migration): Promise<boolean> {
    const key = `${migration.metadata.namespace}/${migration.metadata.name}`;
    const current = this.object<Migration>(MIGRATIONS, key);
    if (!current) return false;
    if (
      current.metadata.resourceVersion !== migration.metadata.resourceVersion
    ) {
      return false;
    }
    return this.remove(MIGRATIONS, key);
  }

  async get(namespace: string, name: string): Promise<Migration | undefined> {
    const found = this.object<Migration>(MIGRATIONS, `${namespace}/${name}`);
    return found && structuredClone(found);
  }

  async list(): Promise<Migration[]> {
    return this.objects<Migration>(MIGRATIONS).map(m => structuredClone(m));
  }

  async create(migration: Migration): Promise<Migration> {
    const key = `${migration.metadata.namespace}/${migration.metadata.name}`;
    if (this.object(MIGRATIONS, key)) {
      throw new MigrationConflictError(`migration ${key} already exists`);
    }
    return structuredClone(this.put(MIGRATIONS, migration));
  }

  async updateStatus(migration: Migration): Promise<Migration> {
    const key = `${migration.metadata.namespace}/${migration.metadata.name}`;
    const current = this.object<Migration>(MIGRATIONS, key);
    if (!current)
      throw new MigrationConflictError(`migration ${key} does not exist`);
    if (
      current.metadata.resourceVersion !== migration.metadata.resourceVersion
    ) {
      throw new MigrationConflictError(
        `migration ${key} is at resourceVersion ${current.metadata.resourceVersion}, not ${migration.metadata.resourceVersion}`,
      );
    }
    return structuredClone(
      this.put<Migration>(MIGRATIONS, {
        ...current,
        status: structuredClone(migration.status),
      }),
    );
  }
}
