import type {
  PolicyUpdate,
  SpotPolicySettings,
} from './schema/openapi/generated/models';

/**
 * The settings with a portal or API change applied: the fields it gives
 * replace theirs, and a `hibernateAfter` of null turns hibernation off.
 */
export function applyPolicyUpdate(
  settings: SpotPolicySettings,
  update: PolicyUpdate,
): SpotPolicySettings {
  const { hibernateAfter, ...rest } = update;
  const after: SpotPolicySettings = {
    ...settings,
    ...(Object.fromEntries(
      Object.entries(rest).filter(([, v]) => v !== undefined),
    ) as Partial<SpotPolicySettings>),
  };
  if (hibernateAfter === null) delete after.hibernateAfter;
  else if (hibernateAfter !== undefined) after.hibernateAfter = hibernateAfter;
  return after;
}
