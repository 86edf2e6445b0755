import {
  AuthService,
  BackstageCredentials,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';
import { Entity } from '@backstage/catalog-model';
import { NotAllowedError, NotFoundError } from '@backstage/errors';
import {
  AuthorizeResult,
  ResourcePermission,
} from '@backstage/plugin-permission-common';
import { CatalogService } from '@backstage/plugin-catalog-node';
import { ferryPolicyReadPermission } from '@ferry/plugin-ferry-common';
import { POLICY_ANNOTATIONS } from '../PolicyService/policyAnnotations';

/** Entities from the catalog, and what a caller may do with them. */
export class EntityAccess {
  constructor(
    private readonly catalog: CatalogService,
    private readonly auth: AuthService,
    private readonly permissions: PermissionsService,
  ) {}

  /** The entity, or a 404 that says it is not in the catalog. */
  async get(entityRef: string): Promise<Entity> {
    const entity = await this.catalog.getEntityByRef(entityRef, {
      credentials: await this.auth.getOwnServiceCredentials(),
    });
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
