/**
 * Correlated reclaims drawn from the data's own statistics. Real reclaims come
 * in bursts: when one pool is reclaimed, other pools of the same zone, and of
 * the same instance family, often follow within minutes. The statistics are
 * measured on the interruption traces (which pools of one measurement campaign
 * went down within `BURST_WINDOW_MS` of each other, and for how long), and the
 * generator replays them on any set of pools at a realistic base rate: the
 * pool's Spot Instance Advisor band (the share of a type's capacity reclaimed
 * per month in its region).
 */
import { ADVISOR_BAND_MONTHLY_FREQUENCY } from '../core/risk';
import type { SpotTrace } from './marketData';
import { regionOfZone } from './marketData';

/** Reclaims within this window of a burst's first belong to it (co-interruptions fall within 3 min). */
export const BURST_WINDOW_MS = 3 * 60_000;

const MONTH_MS = 30 * 24 * 3_600_000;

/** What the traces say about bursts. */
export interface ReclaimStatistics {
  /** Bursts seen (a burst starts at a reclaim with no other in the window before it). */
  bursts: number;
  /** Share of bursts that hit more than one pool. */
  multiPoolShare: number;
  /** Given a burst, the chance that another traced pool of the same zone and family is hit too. */
  sameZoneSameFamily: number;
  /** ... of the same zone and another family. */
  sameZoneOtherFamily: number;
  /** ... of another zone of the region, same family. */
  otherZoneSameFamily: number;
  /** Share of bursts in a zone with several traced pools that hit every one of them. */
  zoneWideShare: number;
  /** Share of co-interruptions (a pool hit in a burst after its first) in the first pool's zone and type. */
  coInterruptionsSameZoneAndType: number;
  /** Delays of a burst's later reclaims after its first. */
  followDelaysMs: number[];
  /** How long a reclaimed pool stayed without capacity. */
  outagesMs: number[];
}

/** The family of an instance type: `r5` of `r5.large`, `c3` of `c3-highcpu-88`. */
export function familyOf(instanceType: string): string {
  return instanceType.split(/[.-]/)[0];
}

interface TraceReclaim {
  trace: SpotTrace;
  at: number;
  outageMs: number;
}

/** Measures burst statistics over traces; traces of one campaign (cloud and start) are compared with each other. */
export function reclaimStatisticsOf(traces: readonly SpotTrace[]): ReclaimStatistics {
  const campaigns = new Map<string, SpotTrace[]>();
  for (const t of traces) {
    const key = `${t.cloud}/${t.startAt}`;
    campaigns.set(key, [...(campaigns.get(key) ?? []), t]);
  }
  const tally = { sz: [0, 0], so: [0, 0], oz: [0, 0] };
  let bursts = 0;
  let multi = 0;
  let zoneWideTrials = 0;
  let zoneWide = 0;
  let followers = 0;
  let followersSameZoneType = 0;
  const followDelaysMs: number[] = [];
  const outagesMs: number[] = [];
  for (const group of campaigns.values()) {
    const reclaims: TraceReclaim[] = group.flatMap(t => reclaimsOf(t)).sort((a, b) => a.at - b.at);
    for (const r of reclaims) outagesMs.push(r.outageMs);
    let i = 0;
    while (i < reclaims.length) {
      const first = reclaims[i];
      let j = i + 1;
      while (j < reclaims.length && reclaims[j].at - first.at <= BURST_WINDOW_MS) j++;
      const hit = new Set(reclaims.slice(i, j).map(r => r.trace));
      bursts++;
      if (hit.size > 1) multi++;
      for (const r of reclaims.slice(i + 1, j)) {
        if (r.trace === first.trace) continue;
        followers++;
        followDelaysMs.push(r.at - first.at);
        if (r.trace.zone === first.trace.zone && r.trace.instanceType === first.trace.instanceType) followersSameZoneType++;
      }
      const seed = first.trace;
      const sameZone = group.filter(t => t !== seed && t.zone === seed.zone);
      for (const other of group) {
        if (other === seed || regionOfZone(other.zone) !== regionOfZone(seed.zone)) continue;
        const sameFamily = familyOf(other.instanceType) === familyOf(seed.instanceType);
        let slot = sameFamily ? tally.oz : undefined;
        if (other.zone === seed.zone) slot = sameFamily ? tally.sz : tally.so;
        if (!slot) continue;
        slot[0]++;
        if (hit.has(other)) slot[1]++;
      }
      if (sameZone.length > 0) {
        zoneWideTrials++;
        if (sameZone.every(t => hit.has(t))) zoneWide++;
      }
      i = j;
    }
  }
  const share = ([trials, hits]: number[]) => (trials === 0 ? 0 : hits / trials);
  return {
    bursts,
    multiPoolShare: bursts === 0 ? 0 : multi / bursts,
    sameZoneSameFamily: share(tally.sz),
    sameZoneOtherFamily: share(tally.so),
    otherZoneSameFamily: share(tally.oz),
    zoneWideShare: zoneWideTrials === 0 ? 0 : zoneWide / zoneWideTrials,
    coInterruptionsSameZoneAndType: followers === 0 ? 0 : followersSameZoneType / followers,
    followDelaysMs: followDelaysMs.length > 0 ? followDelaysMs : [0],
    outagesMs: outagesMs.length > 0 ? outagesMs : [30 * 60_000],
  };
}

function reclaimsOf(trace: SpotTrace): TraceReclaim[] {
  const out: TraceReclaim[] = [];
  const u = trace.unavailable;
  for (let k = 1; k < u.length; k++) {
    if (!u[k] || u[k - 1]) continue;
    let end = k;
    while (end < u.length && u[end]) end++;
    out.push({ trace, at: trace.startAt + k * trace.tickMs, outageMs: (end - k) * trace.tickMs });
  }
  return out;
}

/** A pool the generator reclaims. */
export interface GeneratorPool {
  id: string;
  instanceType: string;
  zone: string;
  advisorBand: number;
}

/** One generated reclaim. */
export interface GeneratedReclaim {
  pool: string;
  reclaimAt: number;
  restoredAt: number;
  /** The burst it belongs to (its first reclaim's pool and time). */
  burst: string;
}

/** How to generate. */
export interface ReclaimGeneratorOptions {
  startAt: number;
  endAt: number;
  random: () => number;
  /** Multiplies every pool's base rate (1: the advisor band's frequency). */
  rateScale?: number;
}

/**
 * Reclaims of the pools over the window: bursts start in a pool at its band's
 * rate (thinned so that, with the followers a burst brings, each pool is
 * reclaimed about as often as its band says), and take other pools of the zone
 * and family with the measured chances, after measured delays.
 */
export function generateReclaims(pools: readonly GeneratorPool[], stats: ReclaimStatistics, options: ReclaimGeneratorOptions): GeneratedReclaim[] {
  const { random, startAt, endAt } = options;
  const scale = options.rateScale ?? 1;
  const followChance = (seed: GeneratorPool, other: GeneratorPool): number => {
    if (regionOfZone(other.zone) !== regionOfZone(seed.zone)) return 0;
    const sameFamily = familyOf(other.instanceType) === familyOf(seed.instanceType);
    if (other.zone === seed.zone) return sameFamily ? stats.sameZoneSameFamily : stats.sameZoneOtherFamily;
    return sameFamily ? stats.otherZoneSameFamily : 0;
  };
  const out: GeneratedReclaim[] = [];
  const downUntil = new Map<string, number>();
  const pick = (list: readonly number[]) => list[Math.floor(random() * list.length)];
  const seeds: { pool: GeneratorPool; at: number }[] = [];
  for (const pool of pools) {
    // Expected reclaims of a pool per burst anywhere: its own bursts plus those it follows.
    const followed = pools.reduce((a, other) => (other === pool ? a : a + followChance(other, pool)), 0);
    const monthly = ADVISOR_BAND_MONTHLY_FREQUENCY[pool.advisorBand] ?? ADVISOR_BAND_MONTHLY_FREQUENCY[1];
    const ratePerMs = (scale * -Math.log(1 - monthly)) / MONTH_MS / (1 + followed);
    for (let at = startAt + exponential(random, ratePerMs); at < endAt; at += exponential(random, ratePerMs)) seeds.push({ pool, at });
  }
  seeds.sort((a, b) => a.at - b.at || (a.pool.id < b.pool.id ? -1 : 1));
  const reclaim = (pool: GeneratorPool, at: number, burst: string) => {
    if ((downUntil.get(pool.id) ?? -Infinity) > at || at >= endAt) return;
    const restoredAt = Math.min(endAt, at + Math.max(60_000, pick(stats.outagesMs)));
    downUntil.set(pool.id, restoredAt);
    out.push({ pool: pool.id, reclaimAt: at, restoredAt, burst });
  };
  for (const { pool, at } of seeds) {
    const burst = `${pool.id}@${new Date(at).toISOString()}`;
    reclaim(pool, at, burst);
    const zoneWide = random() < stats.zoneWideShare;
    for (const other of pools) {
      if (other === pool) continue;
      const chance = zoneWide && other.zone === pool.zone ? 1 : followChance(pool, other);
      if (random() < chance) reclaim(other, at + Math.min(BURST_WINDOW_MS, pick(stats.followDelaysMs)), burst);
    }
  }
  return out.sort((a, b) => a.reclaimAt - b.reclaimAt || (a.pool < b.pool ? -1 : 1));
}

function exponential(random: () => number, ratePerMs: number): number {
  if (!(ratePerMs > 0)) return Infinity;
  return -Math.log(1 - random()) / ratePerMs;
}
