/**
 * Parsers for the spot-market data the simulator replays, in the formats of the
 * project's data directory (see `operator/data/README.md`): AWS spot price change
 * logs, on-demand price tables, the Spot Instance Advisor feed flattened to CSV,
 * and the SkyPilot spot availability/preemption traces. Bad input fails with a
 * message that names the source, the line and what to fix.
 */

/** One change of a pool's spot price: from `at` the pool's price is `priceUsdPerHour`. */
export interface SpotPriceChange {
  at: number;
  region: string;
  zone: string;
  instanceType: string;
  priceUsdPerHour: number;
}

/** An instance type's size and its Spot Instance Advisor entry in one region. */
export interface AdvisorEntry {
  region: string;
  instanceType: string;
  /** Interruption frequency band 0 (`<5%`) .. 4 (`>20%`). */
  band: number;
  savingsPct: number;
  vcpus: number;
  memoryGiB: number;
}

/** A measured spot trace: one value per tick since its start. */
export interface SpotTrace {
  /** Where it came from, for messages and reports. */
  source: string;
  cloud: 'aws' | 'gcp' | 'azure';
  zone: string;
  instanceType: string;
  startAt: number;
  tickMs: number;
  /** Per tick: true when spot capacity was not available (the node was preempted). */
  unavailable: boolean[];
  /** Spot price per tick (USD/h), when the trace has it. */
  pricesUsdPerHour?: number[];
}

/** Splits a small CSV (no quoted commas in these files) into header-keyed rows. */
export function parseCsv(text: string, source: string, required: readonly string[]): Record<string, string>[] {
  const lines = text.split(/\r?\n/).filter(l => l.trim() !== '');
  if (lines.length === 0) throw new Error(`${source} is empty; expected a CSV with the columns ${required.join(', ')}`);
  const header = lines[0].split(',').map(h => h.trim());
  const missing = required.filter(r => !header.includes(r));
  if (missing.length > 0) {
    throw new Error(
      `${source} lacks the column(s) ${missing.join(', ')}; its header is "${lines[0]}". Use a file in the format of operator/data/README.md`,
    );
  }
  return lines.slice(1).map((line, i) => {
    const cells = line.split(',');
    if (cells.length < header.length) {
      throw new Error(`${source} line ${i + 2} has ${cells.length} cells, the header has ${header.length}: "${line}"`);
    }
    const row: Record<string, string> = {};
    header.forEach((h, j) => (row[h] = cells[j]));
    return row;
  });
}

function number(row: Record<string, string>, column: string, source: string, line: number): number {
  const value = Number(row[column]);
  if (row[column] === undefined || row[column] === '' || !Number.isFinite(value)) {
    throw new Error(`${source} line ${line}: ${column} is "${row[column]}", not a number`);
  }
  return value;
}

function time(value: string, source: string, line: number): number {
  const at = Date.parse(value);
  if (!Number.isFinite(at)) throw new Error(`${source} line ${line}: "${value}" is not an ISO-8601 time`);
  return at;
}

/**
 * An AWS spot price history CSV (`timestamp_utc, region, availability_zone` or
 * `availability_zone_id`, `instance_type, spot_price_usd_per_hour`), sorted by time.
 */
export function parseSpotPriceHistory(text: string, source: string): SpotPriceChange[] {
  const header = text.slice(0, text.indexOf('\n'));
  const zoneColumn = header.includes('availability_zone_id') ? 'availability_zone_id' : 'availability_zone';
  const rows = parseCsv(text, source, ['timestamp_utc', 'region', zoneColumn, 'instance_type', 'spot_price_usd_per_hour']);
  const changes = rows.map((row, i) => ({
    at: time(row.timestamp_utc, source, i + 2),
    region: row.region,
    zone: row[zoneColumn],
    instanceType: row.instance_type,
    priceUsdPerHour: number(row, 'spot_price_usd_per_hour', source, i + 2),
  }));
  return changes.sort((a, b) => a.at - b.at);
}

/** An on-demand price table (`instance_type, ondemand_usd_per_hour`): USD per hour by instance type. */
export function parseOnDemandPrices(text: string, source: string): Map<string, number> {
  const rows = parseCsv(text, source, ['instance_type', 'ondemand_usd_per_hour']);
  return new Map(rows.map((row, i) => [row.instance_type, number(row, 'ondemand_usd_per_hour', source, i + 2)]));
}

/** The flattened Spot Instance Advisor CSV: entries keyed `region/instanceType`. */
export function parseSpotAdvisor(text: string, source: string): Map<string, AdvisorEntry> {
  const rows = parseCsv(text, source, [
    'region',
    'instance_type',
    'interruption_range_index',
    'savings_vs_ondemand_pct',
    'vcpus',
    'memory_gib',
  ]);
  const out = new Map<string, AdvisorEntry>();
  rows.forEach((row, i) => {
    const band = number(row, 'interruption_range_index', source, i + 2);
    if (!(band >= 0 && band <= 4)) throw new Error(`${source} line ${i + 2}: interruption_range_index ${band} is not 0..4`);
    out.set(`${row.region}/${row.instance_type}`, {
      region: row.region,
      instanceType: row.instance_type,
      band,
      savingsPct: number(row, 'savings_vs_ondemand_pct', source, i + 2),
      vcpus: number(row, 'vcpus', source, i + 2),
      memoryGiB: number(row, 'memory_gib', source, i + 2),
    });
  });
  return out;
}

/** What a trace file does not say about itself: where and when it was measured. */
export interface SpotTraceMetadata {
  cloud: 'aws' | 'gcp' | 'azure';
  zone: string;
  instanceType: string;
  startAt: number;
}

/**
 * A SkyPilot single-node trace (`{"metadata": {"gap_seconds": G}, "data": [0|1...]}`,
 * 1 = no spot / preempted). Multi-node traces are refused: their values' meaning
 * is not established (see the data README).
 */
export function parseSpotTrace(text: string, source: string, meta: SpotTraceMetadata): SpotTrace {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not JSON (${(e as Error).message}); expected a SkyPilot trace {"metadata": {"gap_seconds": G}, "data": [...]}`);
  }
  const trace = parsed as { metadata?: { gap_seconds?: unknown }; data?: unknown; prices?: unknown };
  const gap = trace.metadata?.gap_seconds;
  if (typeof gap !== 'number' || !(gap > 0)) throw new Error(`${source}: metadata.gap_seconds must be a positive number`);
  if (!Array.isArray(trace.data) || trace.data.length === 0) throw new Error(`${source}: data must be a non-empty array`);
  const bad = trace.data.findIndex(v => v !== 0 && v !== 1);
  if (bad >= 0) {
    throw new Error(
      `${source}: value ${JSON.stringify(trace.data[bad])} at tick ${bad} is not 0 or 1; only single-node traces (1 = preempted) can be replayed`,
    );
  }
  const prices = Array.isArray(trace.prices) && trace.prices.length === trace.data.length ? (trace.prices as number[]) : undefined;
  return {
    source,
    ...meta,
    tickMs: gap * 1000,
    unavailable: (trace.data as number[]).map(v => v === 1),
    pricesUsdPerHour: prices,
  };
}

/** A row of the SkyPilot trace index CSV. */
export interface SpotTraceIndexEntry extends SpotTraceMetadata {
  file: string;
  nodes: string;
}

/** The SkyPilot trace index (`trace_file, nodes, cloud, zone, instance_type, start_date`). */
export function parseSpotTraceIndex(text: string, source: string): SpotTraceIndexEntry[] {
  const rows = parseCsv(text, source, ['trace_file', 'nodes', 'cloud', 'zone', 'instance_type', 'start_date']);
  return rows.map((row, i) => {
    const cloud = row.cloud as SpotTraceMetadata['cloud'];
    if (!['aws', 'gcp', 'azure'].includes(cloud)) throw new Error(`${source} line ${i + 2}: cloud "${row.cloud}" is not aws, gcp or azure`);
    return {
      file: row.trace_file,
      nodes: row.nodes,
      cloud,
      zone: row.zone,
      instanceType: normaliseTraceInstanceType(row.instance_type),
      startAt: time(`${row.start_date}T00:00:00Z`, source, i + 2),
    };
  });
}

// The index writes the 1×K80 type as "p2 1xK80 (README: p2.2xlarge)"; AWS sells it as p2.xlarge.
function normaliseTraceInstanceType(label: string): string {
  return label.startsWith('p2 1xK80') ? 'p2.xlarge' : label;
}

/** The region of a zone name (`eu-west-1a` → `eu-west-1`, `us-central1-a` → `us-central1`). */
export function regionOfZone(zone: string): string {
  if (/^[a-z]+-[a-z]+\d+-[a-z]$/.test(zone)) return zone.slice(0, zone.lastIndexOf('-'));
  return zone.replace(/[a-z]$/, '');
}
