import {
  AuthService,
  BackstageCredentials,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';
import { Entity } from '@backstage/catalog-model';
import { InputError, NotAllowedError, NotFoundError } from '@backstage/errors';
import {
  AuthorizeResult,
  ResourcePermission,
} from '@backstage/plugin-permission-common';
import { CatalogService } from '@backstage/plugin-catalog-node';
import { ferryPolicyReadPermission } from '@ferry/plugin-ferry-common';
import { POLICY_ANNOTATIONS } from '../PolicyService/policyAnnotations';

/** What a catalog entity ref may hold, as the catalog's validators check it. */
export const ENTITY_REF_RULES =
  'a kind is a letter then letters and digits, a namespace letters and digits in groups joined by hyphens, a name letters, digits, -, _ and . starting and ending with a letter or digit, each at most 63 characters';

/** A 4xx of the catalog about the ref itself, or the catalog client's own parse failure. */
function isRefusalOfRef(error: unknown): boolean {
  const e = error as { name?: string; response?: { status?: number } };
  if (e?.name === 'TypeError' || e?.name === 'InputError') return true;
  const status = e?.response?.status;
  return e?.name === 'ResponseError' && status !== undefined && status < 500;
}

/** Entities from the catalog, and what a caller may do with them. */
export class EntityAccess {
  constructor(
    private readonly catalog: CatalogService,
    private readonly auth: AuthService,
    private readonly permissions: PermissionsService,
  ) {}

  /** The entity, or a 404 that says it is not in the catalog. */
  async get(entityRef: string): Promise<Entity> {
    let entity: Entity | undefined;
    try {
      entity = await this.catalog.getEntityByRef(entityRef, {
        credentials: await this.auth.getOwnServiceCredentials(),
      });
    } catch (error) {
      // The catalog's refusal of a ref carries its internal URL (and, in
      // development, its stack); the caller needs only what was wrong.
      if (isRefusalOfRef(error)) {
        throw new InputError(
          `The catalog cannot read the entity ref ${JSON.stringify(
            entityRef,
          )}; ${ENTITY_REF_RULES}`,
        );
      }
      throw error;
    }
    if (!entity) {
      throw new NotFoundError(
        `No entity ${entityRef} in the catalog; check the kind, namespace and name (e.g. component/default/session-store)`,
      );
    }
    return entity;
  }

  /** Entities with at least one `ferry.dev/*` policy annotation. */
  async listWithPolicyAnnotations(): Promise<Entity[]> {
    const { items } = await this.catalog.getEntities(
      {
        filter: Object.keys(POLICY_ANNOTATIONS).map(key => ({
          [`metadata.annotations.${key}`]: CATALOG_FILTER_EXISTS,
        })),
      },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    return items;
  }

  /** Whether the permission policy allows the permission on the entity. */
  async isAllowed(
    permission: ResourcePermission<'catalog-entity'>,
    entityRef: string,
    credentials: BackstageCredentials,
  ): Promise<boolean> {
    const [decision] = await this.permissions.authorize(
      [{ permission, resourceRef: entityRef }],
      { credentials },
    );
    return decision.result === AuthorizeResult.ALLOW;
  }

  /** Which of the entities the catalog does not have (any more). */
  async missing(entityRefs: string[]): Promise<Set<string>> {
    const { items } = await this.catalog.getEntitiesByRefs(
      { entityRefs, fields: ['kind', 'metadata.namespace', 'metadata.name'] },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    return new Set(entityRefs.filter((_ref, i) => !items[i]));
  }

  /**
   * Which of the entities the caller may read Ferry's data of: one decision when
   * the policy allows or denies reading outright, one per entity when it depends
   * on the entity (e.g. its owner).
   */
  async readableOf(
    entityRefs: string[],
    credentials: BackstageCredentials,
  ): Promise<Set<string> | 'all'> {
    const [overall] = await this.permissions.authorizeConditional(
      [{ permission: ferryPolicyReadPermission }],
      { credentials },
    );
    if (overall.result === AuthorizeResult.ALLOW) return 'all';
    if (overall.result === AuthorizeResult.DENY || entityRefs.length === 0) {
      return new Set();
    }
    const decisions = await this.permissions.authorize(
      entityRefs.map(resourceRef => ({
        permission: ferryPolicyReadPermission,
        resourceRef,
      })),
      { credentials },
    );
    return new Set(
      entityRefs.filter(
        (_ref, i) => decisions[i].result === AuthorizeResult.ALLOW,
      ),
    );
  }

  /** Throws a 403 unless the caller may read the entity's Ferry data. */
  async requireRead(
    entityRef: string,
    credentials: BackstageCredentials,
  ): Promise<void> {
    if (
      !(await this.isAllowed(ferryPolicyReadPermission, entityRef, credentials))
    ) {
      throw new NotAllowedError(
        `You may not read the spot policy of ${entityRef}; ask an administrator for ferry.policy.read`,
      );
    }
  }
}

/** The entity's owners, as entity refs: its ownedBy relations, or spec.owner. */
export function ownersOf(entity: Entity): string[] {
  const relations = (entity.relations ?? [])
    .filter(r => r.type === 'ownedBy')
    .map(r => r.targetRef.toLocaleLowerCase('en-US'));
  if (relations.length > 0) return relations;
  const owner = (entity.spec as { owner?: unknown } | undefined)?.owner;
  if (typeof owner !== 'string' || !owner) return [];
  const namespace = entity.metadata.namespace ?? 'default';
  const ref = owner.includes(':') ? owner : `group:${owner}`;
  return [
    (ref.includes('/')
      ? ref
      : ref.replace(':', `:${namespace}/`)
    ).toLocaleLowerCase('en-US'),
  ];
}
