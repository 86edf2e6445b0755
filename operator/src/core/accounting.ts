/**
 * Cost and availability accounting, accrued interval by interval at the prices
 * and readiness of that interval, so history is never re-priced.
 */
import type { CapacityType } from '../api/v1alpha1';

/** What one member cost over one interval. */
export interface ReplicaCostSample {
  capacityType: CapacityType;
  /** USD per node-hour of the member's node at the time. */
  nodePriceUsdPerHour: number;
  /** USD per node-hour of the same instance type on demand at the time. */
  onDemandPriceUsdPerHour: number;
  /** Share of the node the member's requests take (0..1). */
  nodeShare: number;
}

/** Spend of a workload, with the on-demand counterfactual. */
export interface CostTotals {
  spendUsd: number;
  onDemandSpendUsd: number;
  savingsUsd: number;
  /** Spend as a share of the on-demand counterfactual (1 when nothing was spent). */
  costRatio: number;
}

const MS_PER_HOUR = 3_600_000;

/** Accrues a workload's spend and what on-demand would have cost. */
export class CostLedger {
  private spend = 0;
  private onDemand = 0;

  /** Adds an interval of `elapsedMs` with these members running. */
  accrue(elapsedMs: number, replicas: readonly ReplicaCostSample[]): void {
    if (elapsedMs <= 0) return;
    const hours = elapsedMs / MS_PER_HOUR;
    for (const r of replicas) {
      this.spend += r.nodePriceUsdPerHour * r.nodeShare * hours;
      this.onDemand += r.onDemandPriceUsdPerHour * r.nodeShare * hours;
    }
  }

  /** Spend, counterfactual and savings so far. */
  totals(): CostTotals {
    return {
      spendUsd: this.spend,
      onDemandSpendUsd: this.onDemand,
      savingsUsd: this.onDemand - this.spend,
      costRatio: this.onDemand === 0 ? 1 : this.spend / this.onDemand,
    };
  }
}

/** Availability of a workload against its target. */
export interface AvailabilityTotals {
  observedMs: number;
  /** Time with fewer ready members than required. */
  downMs: number;
  /** Share of observed time with at least the required members ready (1 before any time passed). */
  availability: number;
  /** Share of the error budget left: 1 untouched, 0 spent, below 0 target missed. */
  errorBudgetRemaining: number;
  /** Separate spells below the requirement. */
  outages: number;
}

/** Accrues the time a workload had its required ready members. */
export class AvailabilityLedger {
  private observed = 0;
  private down = 0;
  private outages = 0;
  private wasDown = false;

  constructor(private readonly target: number) {
    if (!(target > 0 && target <= 1)) {
      throw new Error(`availability target must be in (0, 1], got ${target}; use a share such as 0.999`);
    }
  }

  /** Adds an interval of `elapsedMs` during which `ready` of `required` members were ready. */
  observe(elapsedMs: number, ready: number, required: number): void {
    if (elapsedMs <= 0) return;
    this.observed += elapsedMs;
    const isDown = ready < required;
    if (isDown) {
      this.down += elapsedMs;
      if (!this.wasDown) this.outages += 1;
    }
    this.wasDown = isDown;
  }

  /** Availability, outages and error budget so far. */
  totals(): AvailabilityTotals {
    const availability = this.observed === 0 ? 1 : 1 - this.down / this.observed;
    // A target of 1 has no budget: untouched until the first outage, then spent without bound.
    let errorBudgetRemaining = 1 - (1 - availability) / (1 - this.target);
    if (this.target >= 1) errorBudgetRemaining = this.down === 0 ? 1 : -Infinity;
    return {
      observedMs: this.observed,
      downMs: this.down,
      availability,
      errorBudgetRemaining,
      outages: this.outages,
    };
  }
}
