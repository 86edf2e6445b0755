import {
  ANNOTATION_AVAILABILITY_TARGET,
  ANNOTATION_HIBERNATE_AFTER,
  ANNOTATION_MIGRATION,
  ANNOTATION_PERMANENT_RATIO,
  ANNOTATION_SPOT,
} from './annotations';
import type {
  MigrationMethod,
  SpotPolicySettings,
} from './schema/openapi/generated/models';
import { parseHibernateAfter } from './hibernateAfter';

/**
 * The annotations that set a policy, and the field each sets. They are read the
 * same way from a catalog entity and from a Deployment or StatefulSet (or its pod
 * template).
 */
export const POLICY_ANNOTATIONS: Record<string, keyof SpotPolicySettings> = {
  [ANNOTATION_SPOT]: 'enabled',
  [ANNOTATION_PERMANENT_RATIO]: 'permanentRatio',
  [ANNOTATION_AVAILABILITY_TARGET]: 'availabilityTarget',
  [ANNOTATION_MIGRATION]: 'migration',
  [ANNOTATION_HIBERNATE_AFTER]: 'hibernateAfter',
};

const MIGRATION_METHODS: MigrationMethod[] = [
  'auto',
  'valkey',
  'checkpoint',
  'volume',
  'reschedule',
];

/** What a set of `ferry.dev/*` annotations says. */
export interface PolicyAnnotations {
  /** The policy annotations present, as written. */
  raw: Record<string, string>;
  /** The settings they set, for the annotations that are well formed. */
  settings: Partial<SpotPolicySettings>;
  /** One sentence per malformed annotation, saying what is wrong and what is allowed. */
  errors: string[];
}

/** Reads policy annotations; never throws on a malformed value. */
export function parsePolicyAnnotations(
  annotations: Record<string, string> | undefined = {},
): PolicyAnnotations {
  const raw: Record<string, string> = {};
  const settings: Partial<SpotPolicySettings> = {};
  const errors: string[] = [];
  for (const key of Object.keys(POLICY_ANNOTATIONS)) {
    const value = annotations[key];
    if (value === undefined) continue;
    raw[key] = value;
    const text = String(value).trim();
    switch (key) {
      case ANNOTATION_SPOT:
        if (text === 'enabled' || text === 'disabled') {
          settings.enabled = text === 'enabled';
        } else {
          errors.push(`${key} is '${value}'; use 'enabled' or 'disabled'`);
        }
        break;
      case ANNOTATION_PERMANENT_RATIO: {
        const ratio = parseNumber(text);
        if (ratio !== undefined && ratio >= 0 && ratio <= 1) {
          settings.permanentRatio = ratio;
        } else {
          errors.push(
            `${key} is '${value}'; use a number from 0 to 1, the share of replicas kept on permanent nodes (e.g. '0.3')`,
          );
        }
        break;
      }
      case ANNOTATION_AVAILABILITY_TARGET: {
        const target = parseNumber(text);
        if (target !== undefined && target > 0 && target <= 1) {
          settings.availabilityTarget = target;
        } else {
          errors.push(
            `${key} is '${value}'; use a number above 0 and at most 1 (e.g. '0.999')`,
          );
        }
        break;
      }
      case ANNOTATION_MIGRATION:
        if ((MIGRATION_METHODS as string[]).includes(text)) {
          settings.migration = text as MigrationMethod;
        } else {
          errors.push(
            `${key} is '${value}'; use one of ${MIGRATION_METHODS.join(', ')}`,
          );
        }
        break;
      case ANNOTATION_HIBERNATE_AFTER:
        try {
          parseHibernateAfter(text);
          // As the REST contract spells it: without leading zeros.
          settings.hibernateAfter = text.replace(/^0+(?=\d)/, '');
        } catch (error) {
          errors.push((error as Error).message);
        }
        break;
      default:
        break;
    }
  }
  return { raw, settings, errors };
}

function parseNumber(text: string): number | undefined {
  if (!/^[+]?(\d+(\.\d*)?|\.\d+)$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** What applying a set of policy annotations changes, under Ferry's precedence rule. */
export interface PolicyAnnotationChanges {
  /** The well-formed annotations, to keep as "last applied". */
  applied: Record<string, string>;
  /** The fields whose annotation is new or changed since it was last applied. */
  changed: Partial<SpotPolicySettings>;
}

/**
 * The precedence rule, per field: the most recent deliberate change wins. An
 * annotation is applied when it is first seen and whenever its value changes; a
 * change made in the portal or through the API stays in force until the
 * annotation of that field changes. `lastApplied` is what was applied last time
 * from the same place (the catalog, or the workload).
 */
export function policyAnnotationChanges(
  annotations: PolicyAnnotations,
  lastApplied: Record<string, string>,
): PolicyAnnotationChanges {
  const applied = Object.fromEntries(
    Object.entries(annotations.raw).filter(
      ([key]) => annotations.settings[POLICY_ANNOTATIONS[key]] !== undefined,
    ),
  );
  const changed: Partial<SpotPolicySettings> = {};
  for (const [key, field] of Object.entries(POLICY_ANNOTATIONS)) {
    if (key in applied && applied[key] !== lastApplied[key]) {
      (changed as Record<string, unknown>)[field] = annotations.settings[field];
    }
  }
  return { applied, changed };
}

/** Reads a "last applied" record kept as JSON in an annotation; anything unreadable is empty. */
export function lastAppliedAnnotations(
  text: string | undefined,
): Record<string, string> {
  if (!text) return {};
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? parsed
      : {};
  } catch {
    return {};
  }
}

/** Whether two "last applied" records hold the same annotations with the same values. */
export function sameAnnotations(
  a: Record<string, string>,
  b: Record<string, string>,
): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every(key => a[key] === b[key]);
}
