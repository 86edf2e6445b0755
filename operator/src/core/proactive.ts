/**
 * Proactive moves: when a pool's predicted risk crosses a threshold, its members
 * move before any notice. Hysteresis (a lower threshold to leave the hot state
 * than to enter it) and a sliding-window move budget keep the fleet from
 * thrashing on a risk that hovers around the threshold.
 */
import type { DisruptionSignal } from './migrationPlanner';

/** Thresholds and budget of proactive moves. */
export interface ProactivePolicy {
  /** Risk within the horizon at which a pool turns hot and its members move. */
  enterRisk: number;
  /** Risk below which a hot pool cools down again; below `enterRisk`. */
  exitRisk: number;
  /** Most members moved proactively per window, fleet-wide. */
  movesPerWindow: number;
  windowMs: number;
}

/**
 * Defaults: a pool turns hot at a 20 % chance of interruption within the
 * horizon (about 40 times the `<5%` advisor band) and cools below 10 %; at most
 * 20 proactive member moves per hour fleet-wide. The shipped model is calibrated
 * (shippedRiskCoefficients): three reclaims within the hour in a pool of unknown
 * band read about 0.22 with it, where the model before it read more than 0.25.
 */
export const DEFAULT_PROACTIVE_POLICY: ProactivePolicy = {
  enterRisk: 0.2,
  exitRisk: 0.1,
  movesPerWindow: 20,
  windowMs: 3_600_000,
};

/** A node a proactive move could empty, with its pool's risk now. */
export interface ProactiveCandidate {
  node: string;
  pool: string;
  risk: number;
  /** Opted-in members on the node: what moving it costs of the budget. */
  members: number;
}

/** Decides which nodes to empty ahead of a notice. */
export class ProactiveMoveGovernor {
  private readonly hotPools = new Set<string>();
  /** Nodes signalled while their pool is hot, with that pool. */
  private readonly signalled = new Map<string, string>();
  private readonly spent: { at: number; members: number }[] = [];

  constructor(private readonly policy: ProactivePolicy = DEFAULT_PROACTIVE_POLICY) {
    if (!(policy.exitRisk < policy.enterRisk)) {
      throw new Error(
        `proactive exitRisk (${policy.exitRisk}) must be below enterRisk (${policy.enterRisk}), or the hysteresis cannot stop thrashing`,
      );
    }
  }

  /** Prediction signals for nodes of hot pools, riskiest first, within the budget. */
  decide(now: number, candidates: readonly ProactiveCandidate[]): DisruptionSignal[] {
    for (const c of candidates) {
      if (c.risk >= this.policy.enterRisk) this.hotPools.add(c.pool);
      else if (c.risk < this.policy.exitRisk) this.hotPools.delete(c.pool);
    }
    // A node is signalled once per hot spell of its pool: when the pool cools
    // (or the node is gone) it is forgotten, so a pool that heats up again
    // moves its members again, and the memory stays bounded by the fleet.
    const present = new Set(candidates.map(c => c.node));
    for (const [node, pool] of this.signalled) {
      if (!present.has(node) || !this.hotPools.has(pool)) this.signalled.delete(node);
    }
    while (this.spent.length > 0 && now - this.spent[0].at >= this.policy.windowMs) this.spent.shift();
    let budget = this.policy.movesPerWindow - this.spent.reduce((a, s) => a + s.members, 0);
    const signals: DisruptionSignal[] = [];
    const ordered = candidates
      .filter(c => this.hotPools.has(c.pool) && c.members > 0 && !this.signalled.has(c.node))
      .sort((a, b) => b.risk - a.risk || (a.node < b.node ? -1 : 1));
    for (const c of ordered) {
      if (c.members > budget) continue;
      budget -= c.members;
      this.spent.push({ at: now, members: c.members });
      this.signalled.set(c.node, c.pool);
      signals.push({ node: c.node, reason: 'prediction' });
    }
    return signals;
  }

  /** Proactive members still allowed in the current window. */
  budgetLeft(now: number): number {
    const used = this.spent.filter(s => now - s.at < this.policy.windowMs).reduce((a, s) => a + s.members, 0);
    return this.policy.movesPerWindow - used;
  }
}
