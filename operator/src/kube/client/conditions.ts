import type { Condition } from '../../api/v1alpha1';

/**
 * Sets one condition in a list, the Kubernetes way: `lastTransitionTime` moves
 * only when the status changes, so it says how long the condition has held.
 * Returns a new list; the input is left as it was.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex(c => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const lastTransitionTime =
    previous && previous.status === next.status
      ? previous.lastTransitionTime
      : new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition: Condition = { ...next, lastTransitionTime };
  if (index >= 0) list[index] = condition;
  else list.push(condition);
  return list;
}

/** The condition of a type, if set. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find(c => c.type === type);
}
