import { LoggerService } from '@backstage/backend-plugin-api';
import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import {
  ConflictError,
  InputError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import {
  applyPolicyUpdate,
  lastAppliedAnnotations,
  parseHibernateAfter,
  policyAnnotationChanges,
  sameAnnotations,
} from '@ferry/plugin-ferry-common';
import type {
  MemberHibernation,
  PolicySource,
  PolicyView,
  PolicyUpdate,
  SpotPolicySettings,
} from '@ferry/plugin-ferry-common';
import {
  SPOT_POLICY_DEFAULTS,
  SpotPolicy,
  SpotPolicySpec,
} from '@ferry/plugin-ferry-node';
import { DatabaseFerryStore } from '../../database/DatabaseFerryStore';
import { ClusterRegistry } from '../Clusters/ClusterRegistry';
import {
  HistoryIngestion,
  settingsOf,
  sourceOf,
} from '../HistoryIngestion/HistoryIngestion';
import { SPOT_POLICY_ANNOTATIONS } from '../HistoryIngestion/spotPolicyAnnotations';
import {
  LocatedWorkload,
  WorkloadLocator,
} from '../WorkloadLocator/WorkloadLocator';
import { POLICY_ANNOTATIONS, readPolicyAnnotations } from './policyAnnotations';

/** Who changes a policy, for the record. */
export interface PolicyActor {
  /** The user's entity ref, a service's subject, or {@link CATALOG_SYNC_ACTOR}. */
  changedBy: string;
  source: PolicySource;
}

/** The actor recorded for changes that come from catalog annotations. */
export const CATALOG_SYNC_ACTOR = 'plugin:ferry/catalog-sync';

/** What the catalog sync did with one entity. */
export type CatalogSyncOutcome =
  | 'created'
  | 'updated'
  | 'unchanged'
  | 'skipped';

/**
 * How often a portal or API change is applied before its 409 reaches the caller:
 * each try that loses a race re-reads the policy and applies the change to it.
 */
export const UPDATE_ATTEMPTS = 5;

/** Policy changes a policy view lists, newest first. */
export const POLICY_HISTORY_LIMIT = 50;

/** Settings of a workload that has no SpotPolicy yet. */
export const DEFAULT_SETTINGS: SpotPolicySettings = {
  enabled: false,
  permanentRatio: SPOT_POLICY_DEFAULTS.permanentRatio,
  availabilityTarget: SPOT_POLICY_DEFAULTS.availabilityTarget,
  migration: SPOT_POLICY_DEFAULTS.migration,
};

/**
 * Turns catalog annotations and portal changes into the workload's SpotPolicy,
 * and records every change with who, when, from where, before and after.
 *
 * Precedence, per field: the most recent deliberate change wins. An annotation
 * is applied when the sync first sees it and whenever its value changes; a
 * portal or API change is applied at once and stays in force until the
 * annotation of that field changes in catalog-info.yaml. The annotations as last
 * applied are kept on the SpotPolicy itself (`ferry.dev/catalog-annotations`),
 * so the rule holds across restarts and portal replicas.
 */
export class PolicyService {
  constructor(
    private readonly clusters: ClusterRegistry,
    private readonly locator: WorkloadLocator,
    private readonly store: DatabaseFerryStore,
    private readonly ingestion: HistoryIngestion,
    private readonly logger: LoggerService,
  ) {}

  /** The entity's workload and its SpotPolicy, if it has one. */
  async current(
    entity: Entity,
  ): Promise<{ located: LocatedWorkload; policy?: SpotPolicy }> {
    const located = await this.locator.locate(entity);
    const policy = await this.clusters.call(located.cluster, client =>
      client.getSpotPolicy(located.workload.namespace, located.workload.name),
    );
    return { located, policy };
  }

  /**
   * The entity's policy as the portal shows it. When the workload cannot be
   * found the view says why; when its cluster is down it shows the last
   * ingested policy, read-only.
   */
  async view(
    entity: Entity,
    permission: { canUpdate: boolean; readOnlyReason?: string },
  ): Promise<PolicyView> {
    const entityRef = refOf(entity);
    const annotations = readPolicyAnnotations(entity);
    const history = await this.store.listPolicyChanges(
      entityRef,
      POLICY_HISTORY_LIMIT,
    );
    const common = {
      entityRef,
      annotations: annotations.raw,
      history,
      ...(annotations.errors.length > 0
        ? { annotationErrors: annotations.errors }
        : {}),
    };
    let current: Awaited<ReturnType<PolicyService['current']>>;
    try {
      current = await this.current(entity);
    } catch (error) {
      if (error instanceof NotFoundError) {
        return {
          ...common,
          policy: { ...DEFAULT_SETTINGS, ...annotations.settings },
          source: 'catalog',
          canUpdate: false,
          readOnlyReason: error.message,
        };
      }
      const snapshot =
        error instanceof ServiceUnavailableError
          ? await this.store.getWorkload(entityRef)
          : undefined;
      if (!snapshot) throw error;
      return {
        ...common,
        workload: snapshot.workload,
        policy: snapshot.policy,
        source: snapshot.policySource,
        canUpdate: false,
        readOnlyReason: `${
          (error as Error).message
        } (showing the policy as of ${new Date(
          snapshot.reportedAt,
        ).toISOString()})`,
      };
    }
    const { located, policy } = current;
    const settings = policy
      ? settingsOf(policy)
      : { ...DEFAULT_SETTINGS, ...annotations.settings };
    const overridden = Object.entries(POLICY_ANNOTATIONS)
      .filter(
        ([key, field]) =>
          policy &&
          annotations.settings[field] !== undefined &&
          annotations.settings[field] !== settings[field] &&
          key in annotations.raw,
      )
      .map(([key]) => key);
    return {
      ...common,
      workload: {
        cluster: located.cluster.name,
        namespace: located.workload.namespace,
        kind: located.workload.kind,
        name: located.workload.name,
      },
      policy: settings,
      source: policy ? sourceOf(policy) : 'catalog',
      canUpdate: permission.canUpdate,
      ...(permission.readOnlyReason
        ? { readOnlyReason: permission.readOnlyReason }
        : {}),
      ...(overridden.length > 0 ? { overriddenAnnotations: overridden } : {}),
      ...hibernationOf(policy),
    };
  }

  /** Applies the entity's policy annotations under the precedence rule. */
  async syncFromCatalog(entity: Entity): Promise<CatalogSyncOutcome> {
    const annotations = readPolicyAnnotations(entity);
    const entityRef = refOf(entity);
    if (annotations.errors.length > 0) {
      this.logger.warn(
        `Ferry ignores malformed annotations of ${entityRef}: ${annotations.errors.join(
          '; ',
        )}`,
      );
    }
    if (Object.keys(annotations.settings).length === 0) return 'skipped';
    const { located, policy } = await this.current(entity);
    const lastApplied = lastAppliedOf(policy);
    const { applied: wellFormed, changed } = policyAnnotationChanges(
      annotations,
      lastApplied,
    );
    if (!policy && changed.enabled === undefined) {
      // Only ferry.dev/spot creates a policy; the other annotations wait for it.
      return 'skipped';
    }
    const before = policy ? settingsOf(policy) : undefined;
    const after = { ...(before ?? DEFAULT_SETTINGS), ...changed };
    const settingsChanged = !before || !sameSettings(before, after);
    if (!settingsChanged && sameAnnotations(wellFormed, lastApplied))
      return 'unchanged';
    await this.write(located, entityRef, policy, after, {
      source: settingsChanged ? 'catalog' : sourceOf(policy!),
      changedBy: CATALOG_SYNC_ACTOR,
      catalogAnnotations: wellFormed,
      record: settingsChanged,
    });
    return policy ? 'updated' : 'created';
  }

  /** Applies a change from the portal or the REST API; returns the settings in force after it. */
  async update(
    entity: Entity,
    update: PolicyUpdate,
    actor: PolicyActor,
  ): Promise<SpotPolicySettings> {
    validateUpdate(update);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.updateOnce(entity, update, actor);
      } catch (error) {
        // Another writer changed the policy since it was read: the write was
        // refused, so apply this change again to what is there now.
        if (!(error instanceof ConflictError) || attempt >= UPDATE_ATTEMPTS) {
          throw error;
        }
      }
    }
  }

  private async updateOnce(
    entity: Entity,
    update: PolicyUpdate,
    actor: PolicyActor,
  ): Promise<SpotPolicySettings> {
    const entityRef = refOf(entity);
    const { located, policy } = await this.current(entity);
    const annotations = readPolicyAnnotations(entity);
    // Opting in from the portal starts from what catalog-info.yaml says, if anything.
    const before = policy ? settingsOf(policy) : undefined;
    const base = before ?? { ...DEFAULT_SETTINGS, ...annotations.settings };
    const after = applyPolicyUpdate(base, update);
    if (before && sameSettings(before, after)) return before;
    await this.write(located, entityRef, policy, after, {
      source: actor.source,
      changedBy: actor.changedBy,
      // A new policy takes the annotations as applied, so that the next sync
      // does not undo the portal's change.
      catalogAnnotations: policy
        ? lastAppliedOf(policy)
        : policyAnnotationChanges(annotations, {}).applied,
      record: true,
    });
    return after;
  }

  private async write(
    located: LocatedWorkload,
    entityRef: string,
    existing: SpotPolicy | undefined,
    after: SpotPolicySettings,
    options: {
      source: PolicySource;
      changedBy: string;
      catalogAnnotations: Record<string, string>;
      record: boolean;
    },
  ): Promise<void> {
    const { cluster, workload } = located;
    // The settings replace their own fields only: what the portal does not
    // edit (spec.valkey, and whatever a newer operator adds) stays as it is.
    const kept: Partial<SpotPolicySpec> = { ...existing?.spec };
    delete kept.hibernateAfter;
    const written = await this.clusters.call(cluster, client =>
      client.applySpotPolicy(
        workload.namespace,
        workload.name,
        {
          maxConcurrentMoves: SPOT_POLICY_DEFAULTS.maxConcurrentMoves,
          predictionHorizonMinutes:
            SPOT_POLICY_DEFAULTS.predictionHorizonMinutes,
          ...kept,
          workloadRef: { kind: workload.kind, name: workload.name },
          ...after,
        },
        {
          [SPOT_POLICY_ANNOTATIONS.entityRef]: entityRef,
          [SPOT_POLICY_ANNOTATIONS.source]: options.source,
          [SPOT_POLICY_ANNOTATIONS.catalogAnnotations]: JSON.stringify(
            options.catalogAnnotations,
          ),
        },
        // `after` was computed from `existing`: write it only over that version.
        { basedOn: existing },
      ),
    );
    if (options.record) {
      await this.store.recordPolicyChange({
        entityRef,
        source: options.source,
        changedBy: options.changedBy,
        changedAt: Date.now(),
        before: existing ? settingsOf(existing) : undefined,
        after,
      });
      this.logger.info(
        `Ferry policy of ${entityRef} changed by ${options.changedBy} (${
          options.source
        }): ${JSON.stringify(after)}`,
      );
    }
    await this.ingestion.recordPolicies(cluster.name, [written]);
  }
}

/** The entity ref Ferry stores: the catalog's, lower-cased as the catalog compares them. */
export function refOf(
  entity: Entity | { kind: string; namespace?: string; name: string },
): string {
  // stringifyEntityRef lower-cases, as the catalog compares refs.
  return 'metadata' in entity
    ? stringifyEntityRef(entity)
    : stringifyEntityRef({
        kind: entity.kind,
        namespace: entity.namespace,
        name: entity.name,
      });
}

/** The members' hibernation as the operator last reported it on the policy's status. */
function hibernationOf(policy?: SpotPolicy): {
  hibernation?: MemberHibernation[];
} {
  const members = policy?.status?.hibernation;
  return members && members.length > 0
    ? {
        hibernation: members.map(m => ({
          pod: m.pod,
          ...(m.phase ? { phase: m.phase } : {}),
          ...(m.refusal ? { refusal: m.refusal } : {}),
        })),
      }
    : {};
}

/** The annotations of a policy as last applied from the catalog. */
export function lastAppliedOf(policy?: SpotPolicy): Record<string, string> {
  return lastAppliedAnnotations(
    policy?.metadata.annotations?.[SPOT_POLICY_ANNOTATIONS.catalogAnnotations],
  );
}

function sameSettings(a: SpotPolicySettings, b: SpotPolicySettings): boolean {
  return (
    a.enabled === b.enabled &&
    a.permanentRatio === b.permanentRatio &&
    a.availabilityTarget === b.availabilityTarget &&
    a.migration === b.migration &&
    a.hibernateAfter === b.hibernateAfter
  );
}

/** The checks the OpenAPI schema also makes, for callers that do not come through it. */
function validateUpdate(update: PolicyUpdate): void {
  const problems: string[] = [];
  if (
    update.permanentRatio !== undefined &&
    !(update.permanentRatio >= 0 && update.permanentRatio <= 1)
  ) {
    problems.push(
      `permanentRatio is ${update.permanentRatio}; it must be from 0 to 1`,
    );
  }
  if (
    update.availabilityTarget !== undefined &&
    !(update.availabilityTarget > 0 && update.availabilityTarget <= 1)
  ) {
    problems.push(
      `availabilityTarget is ${update.availabilityTarget}; it must be above 0 and at most 1`,
    );
  }
  if (typeof update.hibernateAfter === 'string') {
    try {
      parseHibernateAfter(update.hibernateAfter);
    } catch (error) {
      problems.push(
        (error as Error).message.replace(/^\S+ is/, 'hibernateAfter is'),
      );
    }
  }
  if (Object.values(update).every(v => v === undefined)) {
    problems.push(
      'the body changes nothing; send at least one of enabled, permanentRatio, availabilityTarget, migration, hibernateAfter',
    );
  }
  if (problems.length > 0)
    throw new InputError(`Invalid policy change: ${problems.join('; ')}`);
}
