/**
 * A spot market replayed from real data: each pool's price follows a real AWS
 * price change log, and its interruptions follow a real measured SkyPilot
 * availability trace. Prices say nothing about interruptions (AWS's smooth
 * pricing since 2017), so every pool is given one of the traces, chosen and
 * offset in time by the seed, and the trace's interruptions are thinned by the
 * ratio of the pool's Spot Instance Advisor frequency to the traced type's (the
 * traces are of GPU types that AWS rates `>20%`). Same data and seed, same market.
 */
import { PoolKey, poolIdOf } from '../core/model';
import { seededRandom } from '../core/random';
import { ADVISOR_BAND_MONTHLY_FREQUENCY, UNKNOWN_ADVISOR_BAND } from '../core/risk';
import type { AdvisorEntry, SpotPriceChange, SpotTrace } from './marketData';
import { regionOfZone } from './marketData';
import { generateReclaims, reclaimStatisticsOf, ReclaimStatistics } from './reclaimGenerator';

/** A pool of the simulated market. */
export interface MarketPool extends PoolKey {
  id: string;
  region: string;
  onDemandUsdPerHour: number;
  advisorBand: number;
  vcpus: number;
  memoryGiB: number;
  /** The trace that drives its interruptions. */
  traceSource: string;
}

/** A reclaim of a pool's spot capacity, and when the cloud warns of it. */
export interface PoolInterruption {
  pool: string;
  noticeAt: number;
  reclaimAt: number;
  /** When the pool has capacity again. */
  restoredAt: number;
}

/** What the market replays. */
export interface SimulatedMarketData {
  prices: readonly SpotPriceChange[];
  /** On-demand USD per hour by instance type. */
  onDemand: ReadonlyMap<string, number>;
  /** Advisor entries keyed `region/instanceType`. */
  advisor: ReadonlyMap<string, AdvisorEntry>;
  traces: readonly SpotTrace[];
}

/** How to replay it. */
export interface SimulatedMarketOptions {
  seed: number;
  /** Lead time of termination notices. */
  noticeMs: number;
  /** Only these instance types; all types with prices, on-demand and advisor entries when omitted. */
  instanceTypes?: readonly string[];
  /** Thin trace interruptions by advisor frequency (default true). */
  scaleByAdvisorBand?: boolean;
  /**
   * Where reclaims come from: `traces` replays the measured traces (a stress
   * case: GPU pools reclaimed many times a day); `generated` draws correlated
   * bursts at each pool's advisor-band rate with the traces' burst statistics.
   */
  reclaims?: 'traces' | 'generated';
  /** With generated reclaims, multiplies every pool's base rate (default 1). */
  reclaimRateScale?: number;
  /** Replay window; the price log's span when omitted. */
  startAt?: number;
  endAt?: number;
}

/** The replayed market. */
export class SimulatedSpotMarket {
  readonly pools: MarketPool[];
  private readonly poolById: Map<string, MarketPool>;
  readonly startAt: number;
  readonly endAt: number;
  private readonly priceLog = new Map<string, { at: number[]; price: number[] }>();
  private readonly interruptionsByPool = new Map<string, PoolInterruption[]>();
  private readonly allInterruptions: PoolInterruption[];
  private readonly byRestoration: PoolInterruption[];
  /** The traces' burst statistics, when reclaims are generated. */
  readonly reclaimStatistics?: ReclaimStatistics;

  constructor(data: SimulatedMarketData, readonly options: SimulatedMarketOptions) {
    if (data.prices.length === 0) throw new Error('the simulated market needs at least one spot price change');
    if (data.traces.length === 0) throw new Error('the simulated market needs at least one interruption trace (--trace)');
    const wanted = options.instanceTypes && new Set(options.instanceTypes);
    for (const change of data.prices) {
      if (wanted && !wanted.has(change.instanceType)) continue;
      const id = poolIdOf(change);
      let log = this.priceLog.get(id);
      if (!log) this.priceLog.set(id, (log = { at: [], price: [] }));
      log.at.push(change.at);
      log.price.push(change.priceUsdPerHour);
    }
    const random = seededRandom(options.seed);
    const pools: MarketPool[] = [];
    const keys = [...this.priceLog.keys()].sort();
    for (const id of keys) {
      const [instanceType, zone] = id.split('@');
      const region = regionOfZone(zone);
      const onDemand = data.onDemand.get(instanceType);
      const advisor = data.advisor.get(`${region}/${instanceType}`);
      if (onDemand === undefined || advisor === undefined) {
        if (wanted) {
          throw new Error(
            `instance type ${instanceType} has ${onDemand === undefined ? 'no on-demand price' : 'no Spot Instance Advisor entry'} for ${region}; add it to the data or leave it out of the instance types`,
          );
        }
        continue;
      }
      const trace = data.traces[Math.floor(random() * data.traces.length)];
      pools.push({
        id,
        instanceType,
        zone,
        region,
        onDemandUsdPerHour: onDemand,
        advisorBand: advisor.band,
        vcpus: advisor.vcpus,
        memoryGiB: advisor.memoryGiB,
        traceSource: trace.source,
      });
    }
    if (pools.length === 0) throw new Error('no pool of the price data has both an on-demand price and an advisor entry');
    this.pools = pools;
    this.poolById = new Map(pools.map(p => [p.id, p]));
    const firstChange = Math.min(...[...this.priceLog.values()].map(l => l.at[0]));
    const lastChange = Math.max(...[...this.priceLog.values()].map(l => l.at[l.at.length - 1]));
    this.startAt = options.startAt ?? firstChange;
    this.endAt = options.endAt ?? lastChange;
    if (!(this.endAt > this.startAt)) throw new Error(`the replay window ${new Date(this.startAt).toISOString()} .. ${new Date(this.endAt).toISOString()} is empty`);

    const traceBySource = new Map(data.traces.map(t => [t.source, t]));
    for (const pool of pools) {
      const trace = traceBySource.get(pool.traceSource)!;
      const traceBand = data.advisor.get(`${regionOfZone(trace.zone)}/${trace.instanceType}`)?.band ?? UNKNOWN_ADVISOR_BAND;
      const keep =
        options.scaleByAdvisorBand === false
          ? 1
          : Math.min(1, ADVISOR_BAND_MONTHLY_FREQUENCY[pool.advisorBand] / ADVISOR_BAND_MONTHLY_FREQUENCY[traceBand]);
      this.interruptionsByPool.set(pool.id, this.replayTrace(pool.id, trace, random(), keep, random));
    }
    if (options.reclaims === 'generated') {
      const stats = reclaimStatisticsOf(data.traces);
      this.reclaimStatistics = stats;
      for (const pool of pools) this.interruptionsByPool.set(pool.id, []);
      const generated = generateReclaims(pools, stats, {
        startAt: this.startAt,
        endAt: this.endAt,
        random,
        rateScale: options.reclaimRateScale,
      });
      for (const r of generated) {
        this.interruptionsByPool.get(r.pool)!.push({ pool: r.pool, noticeAt: r.reclaimAt - options.noticeMs, reclaimAt: r.reclaimAt, restoredAt: r.restoredAt });
      }
      for (const list of this.interruptionsByPool.values()) list.sort((a, b) => a.noticeAt - b.noticeAt);
    }
    this.allInterruptions = [...this.interruptionsByPool.values()].flat().sort((a, b) => a.noticeAt - b.noticeAt);
    this.byRestoration = [...this.allInterruptions].sort((a, b) => a.restoredAt - b.restoredAt);
  }

  /** The pool's spot price at `at` (the last change at or before it; the first price before the log starts). */
  spotPrice(pool: string, at: number): number {
    const log = this.priceLog.get(pool);
    if (!log) throw new Error(`the simulated market has no pool ${pool}`);
    let lo = 0;
    let hi = log.at.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (log.at[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return log.price[lo];
  }

  /** Price changes of a pool in [from, to). */
  priceChanges(pool: string, from: number, to: number): { at: number; price: number }[] {
    const log = this.priceLog.get(pool);
    if (!log) return [];
    let lo = 0;
    let hi = log.at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log.at[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    const out: { at: number; price: number }[] = [];
    for (let i = lo; i < log.at.length && log.at[i] < to; i++) out.push({ at: log.at[i], price: log.price[i] });
    return out;
  }

  /** Whether the pool has spot capacity to launch at `at`: not from a notice until the capacity is back. */
  launchable(pool: string, at: number): boolean {
    for (const spell of this.interruptionsByPool.get(pool) ?? []) {
      if (spell.noticeAt > at) break;
      if (at < spell.restoredAt) return false;
    }
    return true;
  }

  /** Interruptions whose notice falls in [from, to), in time order. */
  interruptionsNoticedBetween(from: number, to: number): PoolInterruption[] {
    let lo = 0;
    let hi = this.allInterruptions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.allInterruptions[mid].noticeAt < from) lo = mid + 1;
      else hi = mid;
    }
    const out: PoolInterruption[] = [];
    for (let i = lo; i < this.allInterruptions.length && this.allInterruptions[i].noticeAt < to; i++) {
      out.push(this.allInterruptions[i]);
    }
    return out;
  }

  /** Interruptions whose capacity came back in [from, to). */
  restorationsBetween(from: number, to: number): PoolInterruption[] {
    const list = this.byRestoration;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].restoredAt < from) lo = mid + 1;
      else hi = mid;
    }
    const out: PoolInterruption[] = [];
    for (let i = lo; i < list.length && list[i].restoredAt < to; i++) out.push(list[i]);
    return out;
  }

  /** Every interruption of a pool in the replay window. */
  interruptionsOf(pool: string): readonly PoolInterruption[] {
    return this.interruptionsByPool.get(pool) ?? [];
  }

  /** The pool by id. */
  pool(id: string): MarketPool {
    const pool = this.poolById.get(id);
    if (!pool) throw new Error(`the simulated market has no pool ${id}`);
    return pool;
  }

  private replayTrace(pool: string, trace: SpotTrace, offsetShare: number, keep: number, random: () => number): PoolInterruption[] {
    const n = trace.unavailable.length;
    const offset = Math.floor(offsetShare * n);
    const ticks = Math.ceil((this.endAt - this.startAt) / trace.tickMs);
    const out: PoolInterruption[] = [];
    let previous = false;
    let open: PoolInterruption | undefined;
    for (let k = 0; k <= ticks; k++) {
      const unavailable = trace.unavailable[(offset + k) % n];
      const at = this.startAt + k * trace.tickMs;
      if (unavailable && !previous && k > 0) {
        if (random() < keep) {
          open = { pool, noticeAt: at - this.options.noticeMs, reclaimAt: at, restoredAt: Infinity };
          out.push(open);
        }
      } else if (!unavailable && previous && open) {
        open.restoredAt = at;
        open = undefined;
      }
      previous = unavailable;
    }
    if (open) open.restoredAt = this.endAt;
    return out;
  }
}
