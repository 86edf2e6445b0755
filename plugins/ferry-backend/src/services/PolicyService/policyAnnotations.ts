import { Entity } from '@backstage/catalog-model';
import {
  ANNOTATION_AVAILABILITY_TARGET,
  ANNOTATION_MIGRATION,
  ANNOTATION_PERMANENT_RATIO,
  ANNOTATION_SPOT,
  MigrationMethod,
  SpotPolicySettings,
} from '@ferry/plugin-ferry-common';

/** The catalog annotations that set a policy, and the field each sets. */
export const POLICY_ANNOTATIONS: Record<string, keyof SpotPolicySettings> = {
  [ANNOTATION_SPOT]: 'enabled',
  [ANNOTATION_PERMANENT_RATIO]: 'permanentRatio',
  [ANNOTATION_AVAILABILITY_TARGET]: 'availabilityTarget',
  [ANNOTATION_MIGRATION]: 'migration',
};

const MIGRATION_METHODS: MigrationMethod[] = [
  'auto',
  'valkey',
  'checkpoint',
  'volume',
  'reschedule',
];

/** What an entity's `ferry.dev/*` annotations say. */
export interface PolicyAnnotations {
  /** The policy annotations present, as written. */
  raw: Record<string, string>;
  /** The settings they set, for the annotations that are well formed. */
  settings: Partial<SpotPolicySettings>;
  /** One sentence per malformed annotation, saying what is wrong and what is allowed. */
  errors: string[];
}

/** Reads the policy annotations of an entity; never throws on a malformed value. */
export function readPolicyAnnotations(entity: Entity): PolicyAnnotations {
  const annotations = entity.metadata.annotations ?? {};
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
