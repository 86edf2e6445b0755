import { Entity } from '@backstage/catalog-model';
import {
  parsePolicyAnnotations,
  PolicyAnnotations,
} from '@ferry/plugin-ferry-common';

export { POLICY_ANNOTATIONS } from '@ferry/plugin-ferry-common';
export type { PolicyAnnotations } from '@ferry/plugin-ferry-common';

/** Reads the policy annotations of a catalog entity; never throws on a malformed value. */
export function readPolicyAnnotations(entity: Entity): PolicyAnnotations {
  return parsePolicyAnnotations(entity.metadata.annotations);
}
