/**
 * The interruption risk of the cluster's spot pools: the decision core's
 * `InterruptionRiskModel` with the shipped coefficients, each pool's Spot
 * Instance Advisor band from the shipped table, spot prices when EC2 gives them,
 * and the interruptions, recoveries and rebalance recommendations the operator
 * itself observes. Every replica keeps one (the webhook ranks pools by it on any
 * replica); the leader also feeds it the cloud's signals and persists its
 * history (`PoolRiskHistoryStore`), so that a restart does not forget a pool's
 * record.
 */
import fs from 'node:fs';
import type { MigrationReason } from '../../api/v1alpha1';
import {
  AdvisorEntry,
  parseSpotAdvisor,
  regionOfZone,
} from '../../cloud/marketData';
import { shippedMarketFiles } from '../../cloud/marketFiles';
import { Clock, systemClock } from '../../core/clock';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import { NodeView, PoolKey, poolIdOf } from '../../core/model';
import {
  InterruptionRiskModel,
  RECENCY_DECAY_MS,
  RiskCoefficients,
  UNKNOWN_ADVISOR_BAND,
} from '../../core/risk';
// The coefficients trained on the shipped traces; demo mode and the cluster use the same ones.
import { SHIPPED_RISK_COEFFICIENTS } from '../../core/shippedRiskCoefficients';
import type { PriceBook } from './PoolPriceFeed';

/**
 * Interruptions older than this, relative to a pool's newest, no longer count
 * for its zone's co-interruption feature (the model forgets them after four
 * decay times), so the history keeps only the count of those.
 */
const RECENT_INTERRUPTIONS_MS = 4 * RECENCY_DECAY_MS;

/** The version of `PoolRiskHistory`'s shape; a store holding another is ignored. */
export const POOL_RISK_HISTORY_VERSION = 1;

/** What the operator observed of one spot pool, compactly. */
export interface PoolRecord {
  instanceType: string;
  zone: string;
  /** When the operator first saw the pool (ms since the epoch): its observation time starts here. */
  firstSeenAt: number;
  /** Interruptions observed since `firstSeenAt`. */
  interruptions: number;
  /** Times of the newest interruptions (within `RECENT_INTERRUPTIONS_MS` of the newest), ascending. */
  recentInterruptionsAt: number[];
  lastRecoveryAt?: number;
  lastRebalanceAt?: number;
}

/** The feed's memory, as persisted. */
export interface PoolRiskHistory {
  version: number;
  pools: PoolRecord[];
  /** Nodes whose notice or rebalance was counted already (so that a restart does not count it again), by reason. */
  counted: Record<string, MigrationReason[]>;
}

/** The Spot Instance Advisor bands the operator ships, by `region/instanceType`. */
export function shippedAdvisorBands(): ReadonlyMap<string, AdvisorEntry> {
  const file = shippedMarketFiles().advisor;
  return parseSpotAdvisor(fs.readFileSync(file, 'utf8'), file);
}

/** The advisor band of a pool: its region's row for its instance type; undefined when the table has none. */
export function advisorBandOf(
  advisor: ReadonlyMap<string, AdvisorEntry>,
  pool: PoolKey,
): number | undefined {
  return advisor.get(`${regionOfZone(pool.zone)}/${pool.instanceType}`)?.band;
}

/** The risk of the cluster's spot pools, from what the operator observes. */
export class PoolRiskFeed {
  private model: InterruptionRiskModel;
  private readonly records = new Map<string, PoolRecord>();
  private readonly counted = new Map<string, Set<MigrationReason>>();
  private readonly lastPrice = new Map<string, number>();
  /** Nodes seen so far; a node new to a pool after an interruption is capacity coming back. */
  private readonly nodesSeen = new Set<string>();
  private baselined = false;
  private readonly clock: Clock;
  private readonly advisor: ReadonlyMap<string, AdvisorEntry>;
  /** Changed since `history()` was last read (for the store to write). */
  dirty = false;

  constructor(
    private readonly options: {
      coefficients?: RiskCoefficients;
      /** The prediction horizon; the model's default (20 min) when omitted. */
      horizonMs?: number;
      /** Advisor bands by `region/instanceType`; the shipped table when omitted. */
      advisor?: ReadonlyMap<string, AdvisorEntry>;
      /**
       * Spot prices to follow (their rise and volatility are features). Only a
       * source that moves belongs here, EC2's (`PoolPriceFeed` with the AWS
       * provider): a fixed table's last price changes nothing but would show a
       * jump when the live price replaces it.
       */
      spotPrices?: () => PriceBook;
      clock?: Clock;
      onError?: (error: unknown) => void;
    } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.advisor = options.advisor ?? loadShippedAdvisor(options.onError);
    this.model = this.newModel();
  }

  /** The advisor band the model uses for a pool: the table's, else `UNKNOWN_ADVISOR_BAND`. */
  bandOf(pool: PoolKey): number {
    return advisorBandOf(this.advisor, pool) ?? UNKNOWN_ADVISOR_BAND;
  }

  /** The advisor's average savings of spot over on-demand for the pool's region and type, if the table has them. */
  private savingsOf(pool: PoolKey): number | undefined {
    return this.advisor.get(`${regionOfZone(pool.zone)}/${pool.instanceType}`)?.savingsPct;
  }

  /**
   * Takes in the cluster as it is now: spot pools to track, a notice on a
   * node counted once as an interruption of its pool, a rebalance
   * recommendation likewise, a node new to a pool after an interruption as a
   * recovery, and the pools' spot prices.
   */
  observe(
    nodes: readonly NodeView[],
    signals: readonly DisruptionSignal[],
  ): void {
    const now = this.clock.now();
    const byName = new Map(nodes.map(node => [node.name, node]));
    for (const node of nodes)
      if (node.capacityType === 'spot') this.track(node, now);
    // Signals first: a replacement seen in the same look as the reclaim it replaces is a recovery.
    for (const signal of signals) {
      const node = byName.get(signal.node);
      if (node) this.signalled(node, signal.reason, now);
    }
    const reclaimed = new Set(
      signals.filter(s => s.reason === 'notice').map(s => s.node),
    );
    for (const node of nodes) {
      if (node.capacityType !== 'spot' || this.nodesSeen.has(node.name))
        continue;
      this.nodesSeen.add(node.name);
      // Nodes present at the first look are the cluster as found, not capacity coming back.
      if (!this.baselined || reclaimed.has(node.name)) continue;
      const record = this.track(node, now);
      const last =
        record.recentInterruptionsAt[record.recentInterruptionsAt.length - 1];
      if (
        last !== undefined &&
        (record.lastRecoveryAt === undefined || record.lastRecoveryAt < last)
      ) {
        record.lastRecoveryAt = now;
        this.model.recordRecovery(poolIdOf(node), now);
        this.dirty = true;
      }
    }
    this.baselined = true;
    for (const name of this.nodesSeen)
      if (!byName.has(name)) this.nodesSeen.delete(name);
    for (const name of this.counted.keys())
      if (!byName.has(name)) this.counted.delete(name);
    this.recordPrices(now);
  }

  /** A signal about a node from the cloud (the leader's interruption queue), counted as `observe` counts a node's. */
  cloudSignal(node: NodeView | undefined, reason: MigrationReason): void {
    if (node?.capacityType === 'spot')
      this.signalled(node, reason, this.clock.now());
  }

  /** Probability that the pool is interrupted within the horizon; 0 for permanent capacity. */
  riskOf(pool: PoolKey & { capacityType: string }): number {
    if (pool.capacityType !== 'spot') return 0;
    const now = this.clock.now();
    this.track(pool, now);
    return this.model.risk(poolIdOf(pool), now);
  }

  /** The risk of every spot pool seen, by pool. */
  risks(): { pool: PoolKey; risk: number }[] {
    const now = this.clock.now();
    return [...this.records.values()].map(record => ({
      pool: { instanceType: record.instanceType, zone: record.zone },
      risk: this.model.risk(poolIdOf(record), now),
    }));
  }

  /** The feed's memory, to persist; clears `dirty`. */
  history(): PoolRiskHistory {
    this.dirty = false;
    return {
      version: POOL_RISK_HISTORY_VERSION,
      pools: [...this.records.values()].map(record => ({
        ...record,
        recentInterruptionsAt: [...record.recentInterruptionsAt],
      })),
      counted: Object.fromEntries(
        [...this.counted].map(([node, reasons]) => [node, [...reasons].sort()]),
      ),
    };
  }

  /**
   * Merges a persisted history into what the feed has observed itself (a pool
   * known to both keeps the longer record), and rebuilds the model from it.
   */
  restore(history: PoolRiskHistory): void {
    if (history.version !== POOL_RISK_HISTORY_VERSION) {
      this.options.onError?.(
        new Error(
          `pool risk history has version ${history.version}, this operator reads ${POOL_RISK_HISTORY_VERSION}; starting afresh`,
        ),
      );
      return;
    }
    for (const stored of history.pools) {
      const id = poolIdOf(stored);
      const own = this.records.get(id);
      this.records.set(
        id,
        own
          ? mergeRecords(own, stored)
          : {
              ...stored,
              recentInterruptionsAt: [...stored.recentInterruptionsAt],
            },
      );
    }
    for (const [node, reasons] of Object.entries(history.counted)) {
      const known = this.counted.get(node) ?? new Set<MigrationReason>();
      reasons.forEach(reason => known.add(reason));
      this.counted.set(node, known);
    }
    this.rebuild();
  }

  private signalled(
    node: NodeView,
    reason: MigrationReason,
    now: number,
  ): void {
    if (reason !== 'notice' && reason !== 'recommendation') return;
    let reasons = this.counted.get(node.name);
    if (!reasons) this.counted.set(node.name, (reasons = new Set()));
    if (reasons.has(reason)) return;
    reasons.add(reason);
    const record = this.track(node, now);
    const id = poolIdOf(node);
    if (reason === 'notice') {
      record.interruptions += 1;
      record.recentInterruptionsAt = [
        ...record.recentInterruptionsAt.filter(
          at => now - at <= RECENT_INTERRUPTIONS_MS,
        ),
        now,
      ];
      this.model.recordInterruption(id, now);
    } else {
      record.lastRebalanceAt = now;
      this.model.recordRebalance(id, now);
    }
    this.dirty = true;
  }

  private track(pool: PoolKey, now: number): PoolRecord {
    const id = poolIdOf(pool);
    let record = this.records.get(id);
    if (!record) {
      record = {
        instanceType: pool.instanceType,
        zone: pool.zone,
        firstSeenAt: now,
        interruptions: 0,
        recentInterruptionsAt: [],
      };
      this.records.set(id, record);
      this.model.track(
        { pool: id, zone: pool.zone, advisorBand: this.bandOf(pool), advisorSavingsPct: this.savingsOf(pool) },
        now,
      );
      this.dirty = true;
    }
    return record;
  }

  private recordPrices(now: number): void {
    const book = this.options.spotPrices?.();
    if (!book) return;
    for (const [id, record] of this.records) {
      const price = book.priceOf({
        ...record,
        capacityType: 'spot',
      })?.usdPerHour;
      if (price === undefined || price === this.lastPrice.get(id)) continue;
      this.lastPrice.set(id, price);
      const onDemand = book.onDemandPriceOf(record)?.usdPerHour;
      if (onDemand !== undefined) this.model.recordOnDemandPrice(id, onDemand);
      this.model.recordPrice(id, now, price);
    }
  }

  private newModel(): InterruptionRiskModel {
    return new InterruptionRiskModel(
      this.options.coefficients ?? SHIPPED_RISK_COEFFICIENTS,
      this.options.horizonMs,
    );
  }

  /** A new model replaying the records: interruptions in time order across pools, as they happened. */
  private rebuild(): void {
    const model = this.newModel();
    const events: { id: string; at: number }[] = [];
    for (const [id, record] of this.records) {
      model.track(
        { pool: id, zone: record.zone, advisorBand: this.bandOf(record), advisorSavingsPct: this.savingsOf(record) },
        record.firstSeenAt,
      );
      // Older interruptions count towards the pool's rate only; their time is not kept.
      const older = record.interruptions - record.recentInterruptionsAt.length;
      for (let i = 0; i < older; i++)
        events.push({ id, at: record.firstSeenAt });
      for (const at of record.recentInterruptionsAt) events.push({ id, at });
    }
    events.sort((a, b) => a.at - b.at);
    for (const event of events) model.recordInterruption(event.id, event.at);
    for (const [id, record] of this.records) {
      if (record.lastRecoveryAt !== undefined)
        model.recordRecovery(id, record.lastRecoveryAt);
      if (record.lastRebalanceAt !== undefined)
        model.recordRebalance(id, record.lastRebalanceAt);
    }
    this.model = model;
    // Prices are not persisted: the next observation records the current ones afresh.
    this.lastPrice.clear();
  }
}

function mergeRecords(a: PoolRecord, b: PoolRecord): PoolRecord {
  const recent = [
    ...new Set([...a.recentInterruptionsAt, ...b.recentInterruptionsAt]),
  ].sort((x, y) => x - y);
  const newest = recent[recent.length - 1] ?? 0;
  const recentInterruptionsAt = recent.filter(
    at => newest - at <= RECENT_INTERRUPTIONS_MS,
  );
  return {
    instanceType: a.instanceType,
    zone: a.zone,
    firstSeenAt: Math.min(a.firstSeenAt, b.firstSeenAt),
    // The two overlap where both saw the same interruption; the larger is the better guess.
    interruptions: Math.max(
      a.interruptions,
      b.interruptions,
      recentInterruptionsAt.length,
    ),
    recentInterruptionsAt,
    lastRecoveryAt: maxDefined(a.lastRecoveryAt, b.lastRecoveryAt),
    lastRebalanceAt: maxDefined(a.lastRebalanceAt, b.lastRebalanceAt),
  };
}

function maxDefined(a?: number, b?: number): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

function loadShippedAdvisor(
  onError?: (error: unknown) => void,
): ReadonlyMap<string, AdvisorEntry> {
  try {
    return shippedAdvisorBands();
  } catch (error) {
    // An image without the table still predicts, from the unknown band and what it observes.
    onError?.(
      new Error(
        `no shipped spot advisor table (${
          error instanceof Error ? error.message : error
        }); every pool gets the unknown band; copy operator/data beside the bundle (see chart README)`,
      ),
    );
    return new Map();
  }
}
