import { InputError } from '@backstage/errors';

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** The range when `from` is absent. */
export const DEFAULT_RANGE_MS = 7 * DAY_MS;
/** The longest range a series can cover: a year and a month. */
export const MAX_RANGE_MS = 400 * DAY_MS;
/** Ranges up to this length get hourly buckets by default, longer ones daily. */
export const HOURLY_UP_TO_MS = 14 * DAY_MS;
/** The most buckets one answer holds. */
export const MAX_BUCKETS = 1000;

/** A validated range of a series. */
export interface TimeRange {
  from: number;
  to: number;
  bucket: 'hour' | 'day';
  bucketMs: number;
}

/**
 * Reads `from`, `to` and `bucket`. `to` defaults to now, or to just after the
 * workload's latest report when that is later (the demo's simulated clock runs
 * ahead of the wall clock).
 */
export function parseTimeRange(
  query: { from?: string; to?: string; bucket?: string },
  latestReport?: number,
): TimeRange {
  const to =
    query.to !== undefined
      ? parseTime('to', query.to)
      : Math.max(Date.now(), (latestReport ?? 0) + 1);
  const from =
    query.from !== undefined
      ? parseTime('from', query.from)
      : to - DEFAULT_RANGE_MS;
  if (from >= to) {
    throw new InputError(
      `from (${new Date(from).toISOString()}) must be before to (${new Date(
        to,
      ).toISOString()})`,
    );
  }
  if (to - from > MAX_RANGE_MS) {
    throw new InputError(
      'The range is longer than 400 days; ask for a shorter range',
    );
  }
  const defaultBucket = to - from <= HOURLY_UP_TO_MS ? 'hour' : 'day';
  const bucket =
    query.bucket === 'hour' || query.bucket === 'day'
      ? query.bucket
      : defaultBucket;
  const bucketMs = bucket === 'hour' ? HOUR_MS : DAY_MS;
  if ((to - from) / bucketMs > MAX_BUCKETS) {
    throw new InputError(
      `The range holds more than ${MAX_BUCKETS} ${bucket}s; use bucket=day or a shorter range`,
    );
  }
  return { from, to, bucket, bucketMs };
}

/**
 * An ISO-8601 date, or a time with its offset: what the contract's pattern for
 * `from` and `to` allows. Date.parse alone takes `2026-12-01junk` and rolls
 * `2026-02-30` over into March.
 */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2})))?$/;

function parseTime(name: string, text: string): number {
  const refuse = (why: string) =>
    new InputError(
      `${name} is '${text}'${why}; use an ISO-8601 date such as 2026-11-01 or a time with its offset such as 2026-11-01T00:00:00Z`,
    );
  const parts = ISO_TIME.exec(text);
  if (!parts) throw refuse('');
  const [year, month, day, hour = 0, minute = 0, second = 0] = parts
    .slice(1, 7)
    .map(p => (p === undefined ? undefined : Number(p)));
  const [offsetHours, offsetMinutes] = [parts[8], parts[9]].map(Number);
  const calendar = new Date(Date.UTC(year!, month! - 1, day!));
  if (
    calendar.getUTCFullYear() !== year ||
    calendar.getUTCMonth() !== month! - 1 ||
    calendar.getUTCDate() !== day
  ) {
    throw refuse(`, a day that ${year}-${parts[2]} does not have`);
  }
  if (hour > 23 || minute > 59 || second > 59) {
    throw refuse(', a time of day that does not exist');
  }
  if (
    parts[7] !== 'Z' &&
    parts[7] &&
    (offsetHours > 23 || offsetMinutes > 59)
  ) {
    throw refuse(', an offset that does not exist');
  }
  return Date.parse(text);
}
