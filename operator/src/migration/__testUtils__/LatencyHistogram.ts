/*
 * Latencies kept as counts per bucket instead of one number per request, so a load
 * of any rate and length holds a few hundred numbers (the benchmark at 20,000
 * writes/s with 1 GiB died spreading a million-entry array into Math.max).
 */

/** Below this many milliseconds every whole millisecond is its own bucket. */
const EXACT_BELOW_MS = 128;
/** Above it buckets grow by this factor: quantiles are within 1 % of the truth. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

/** A histogram as plain data, to cross a thread or process boundary. */
export interface LatencyHistogramData {
  /** [bucket, count] pairs. */
  counts: [number, number][];
  largest: number;
}

/** Counts of latencies (ms) by bucket; quantiles and the maximum without keeping the values. */
export class LatencyHistogram {
  /** A histogram from {@link LatencyHistogram.toData}'s output. */
  static fromData(data: LatencyHistogramData): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [bucket, n] of data.counts) {
      h.counts.set(bucket, n);
      h.total += n;
    }
    h.largest = data.largest;
    return h;
  }

  private readonly counts = new Map<number, number>();
  private total = 0;
  private largest = 0;

  /** Adds one latency in milliseconds. */
  record(ms: number): void {
    const value = Math.max(0, ms);
    const bucket = bucketOf(value);
    this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + 1);
    this.total++;
    if (value > this.largest) this.largest = value;
  }

  /** Adds every count of `other` into this histogram. */
  merge(other: LatencyHistogram): void {
    for (const [bucket, n] of other.counts) {
      this.counts.set(bucket, (this.counts.get(bucket) ?? 0) + n);
    }
    this.total += other.total;
    this.largest = Math.max(this.largest, other.largest);
  }

  /** The counts as plain data (a few hundred numbers at most). */
  toData(): LatencyHistogramData {
    return { counts: [...this.counts], largest: this.largest };
  }

  /** How many latencies were recorded. */
  get count(): number {
    return this.total;
  }

  /** The largest latency recorded, exactly; 0 when empty. */
  get max(): number {
    return this.largest;
  }

  /** The q-quantile (0..1): the bucket's upper value, never above the maximum; 0 when empty. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (const bucket of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(bucket)!;
      if (seen >= rank) return Math.min(this.largest, upperOf(bucket));
    }
    return this.largest;
  }
}

function bucketOf(ms: number): number {
  if (ms < EXACT_BELOW_MS) return Math.floor(ms);
  return EXACT_BELOW_MS + Math.floor(Math.log(ms / EXACT_BELOW_MS) / LOG_GROWTH);
}

function upperOf(bucket: number): number {
  if (bucket < EXACT_BELOW_MS) return bucket;
  return Math.ceil(EXACT_BELOW_MS * GROWTH ** (bucket - EXACT_BELOW_MS + 1));
}
