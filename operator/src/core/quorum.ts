/**
 * The arithmetic of quorums: how many members a workload needs to serve, how
 * many must stay on permanent capacity, and how many one failure domain may hold.
 */

/** Members of a workload needed to serve: a majority. */
export function quorumOf(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}

// ceil(0.3 * 10) must be 3, not 4: products of decimal ratios carry float noise.
const RATIO_EPSILON = 1e-9;

/**
 * A workload of one member has no quorum to keep: nothing outvotes it, and no
 * placement keeps it up through the loss of its node. Only a live move does (the
 * post's single Valkey on spot), so it may run on spot, and it may move.
 */
export function isLoneMember(replicas: number): boolean {
  return replicas === 1;
}

/**
 * Replicas that must run on permanent nodes: ceil(ratio · n), and at least one
 * when the workload has a quorum (two or more replicas). A lone member follows
 * its ratio alone: on permanent capacity unless the ratio is 0.
 */
export function permanentFloor(replicas: number, permanentRatio: number): number {
  if (replicas <= 0) return 0;
  if (!(permanentRatio >= 0 && permanentRatio <= 1)) {
    throw new Error(
      `permanentRatio must be between 0 and 1, got ${permanentRatio}; set spec.permanentRatio to a share such as 0.3`,
    );
  }
  const byRatio = Math.ceil(permanentRatio * replicas - RATIO_EPSILON);
  if (isLoneMember(replicas)) return Math.max(0, byRatio);
  return Math.min(replicas, Math.max(byRatio, 1));
}

/**
 * Most members one failure domain (a spot pool, or the spot capacity of a zone)
 * may hold so that losing the domain leaves the quorum standing; a lone member
 * has no quorum to leave, and its domain holds it.
 */
export function maxMembersPerFailureDomain(replicas: number, quorum = quorumOf(replicas)): number {
  if (isLoneMember(replicas)) return 1;
  return Math.max(0, replicas - quorum);
}

/**
 * Most members one spot pool may hold: one (none when no failure domain may
 * hold any). A reclaim takes whole pools, so with one member per spot pool any
 * burst that leaves a majority of a workload's pools intact leaves its quorum
 * standing, however many pools of a zone it takes.
 */
export function maxMembersPerSpotPool(replicas: number, quorum = quorumOf(replicas)): number {
  return Math.min(1, maxMembersPerFailureDomain(replicas, quorum));
}
