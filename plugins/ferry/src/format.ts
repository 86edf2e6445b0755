/** How figures read in the portal: one home for units and rounding. */

const usdFormat = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});

const usdPreciseFormat = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  minimumFractionDigits: 3,
  maximumFractionDigits: 3,
});

/** `$1,234.56` */
export function formatUsd(value: number): string {
  return usdFormat.format(value);
}

/** Hourly prices are small; three decimals keep spot prices apart: `$0.042/h`. */
export function formatUsdPerHour(value: number): string {
  return `${usdPreciseFormat.format(value)}/h`;
}

/** A share in [0, 1] as a percentage: `99.95 %`. Availability needs the decimals. */
export function formatPercent(value: number, digits = 1): string {
  return `${(value * 100).toFixed(digits)} %`;
}

/** Availability shares such as 0.999 read best with enough decimals to differ. */
export function formatAvailability(value: number): string {
  return formatPercent(value, value >= 0.99 ? 3 : 2);
}

/** `1.5 GiB` */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `850 ms`, `12.3 s`, `4 min 5 s` */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
}

/** A timestamp in the reader's locale, to the minute. */
export function formatDateTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** Savings as a share of the on-demand cost, 0 when there is nothing to compare. */
export function savingsShare(actual: number, onDemand: number): number {
  return onDemand > 0 ? Math.max(0, 1 - actual / onDemand) : 0;
}

/** A chart bucket's start: the day for daily buckets, with the hour for hourly ones. */
export function formatBucketTime(iso: string, bucket: 'hour' | 'day'): string {
  const date = new Date(iso);
  return bucket === 'day'
    ? date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : date.toLocaleString(undefined, {
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
      });
}
