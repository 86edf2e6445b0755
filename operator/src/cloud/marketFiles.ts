/**
 * Reading market data from files: the data the product ships in
 * `operator/data/` (demo mode) or any files in the same formats (benchmarks,
 * `--prices` / `--trace`).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  parseOnDemandPrices,
  parseSpotAdvisor,
  parseSpotPriceHistory,
  parseSpotTrace,
  parseSpotTraceIndex,
  SpotTrace,
  SpotTraceIndexEntry,
  SpotTraceMetadata,
} from './marketData';
import type { SimulatedMarketData } from './SimulatedSpotMarket';

/** Files to replay. */
export interface MarketFiles {
  prices: readonly string[];
  traces: readonly string[];
  onDemand: string;
  advisor: string;
  /** The SkyPilot trace index; found beside the traces when omitted. */
  traceIndex?: string;
}

// The operator is not a Backstage backend plugin (resolvePackagePath is theirs): its
// bundle, dist/main.cjs, finds the data beside itself, the sources two levels up.
// eslint-disable-next-line no-restricted-syntax
const HERE = __dirname;

/** The data directory the operator ships (`operator/data`), from the sources (`src/cloud`) or the bundle (`dist`). */
export const SHIPPED_DATA_DIR =
  [path.resolve(HERE, '..', '..', 'data'), path.resolve(HERE, '..', 'data')].find(dir =>
    fs.existsSync(path.join(dir, 'aws_spot_advisor_linux_2025-06.csv')),
  ) ?? path.resolve(HERE, '..', '..', 'data');

/** The files of the shipped data directory (see its README for their sources). */
export function shippedMarketFiles(dir = SHIPPED_DATA_DIR): MarketFiles {
  const traceDir = path.join(dir, 'skypilot_spot_traces');
  return {
    prices: [path.join(dir, 'aws_spot_price_history_eu-west-1_2021-12_2022-06.csv')],
    traces: listJson(traceDir),
    onDemand: path.join(dir, 'aws_ondemand_prices_us-east-1_2026-07.csv'),
    advisor: path.join(dir, 'aws_spot_advisor_linux_2025-06.csv'),
    traceIndex: path.join(dir, 'skypilot_spot_traces_index.csv'),
  };
}

/** Every `.json` file under a directory, sorted. */
export function listJson(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listJson(full));
    else if (entry.name.endsWith('.json')) out.push(full);
  }
  return out.sort();
}

/** Reads and parses the files. */
export function loadMarketData(files: MarketFiles): SimulatedMarketData {
  const prices = files.prices.flatMap(f => parseSpotPriceHistory(read(f), f)).sort((a, b) => a.at - b.at);
  const indexFile =
    files.traceIndex ?? (files.traces.length > 0 ? findTraceIndex(files.traces[0]) : undefined);
  const index = indexFile ? parseSpotTraceIndex(read(indexFile), indexFile) : [];
  const traces = files.traces.map(f => parseSpotTrace(read(f), f, traceMetadata(f, index)));
  return {
    prices,
    onDemand: parseOnDemandPrices(read(files.onDemand), files.onDemand),
    advisor: parseSpotAdvisor(read(files.advisor), files.advisor),
    traces,
  };
}

/** Loads only traces (for the risk model's evaluation). */
export function loadTraces(files: readonly string[], traceIndex?: string): SpotTrace[] {
  const indexFile = traceIndex ?? (files.length > 0 ? findTraceIndex(files[0]) : undefined);
  const index = indexFile ? parseSpotTraceIndex(read(indexFile), indexFile) : [];
  return files.map(f => parseSpotTrace(read(f), f, traceMetadata(f, index)));
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}; pass an existing file`);
  }
}

function findTraceIndex(trace: string): string | undefined {
  for (let dir = path.dirname(path.resolve(trace)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'skypilot_spot_traces_index.csv');
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

const TRACE_TYPE_BY_FILE_SUFFIX: Record<string, string> = {
  v100_1: 'p3.2xlarge',
  v100_8: 'p3.16xlarge',
  k80_1: 'p2.xlarge',
  k80_8: 'p2.16xlarge',
  'c3-88': 'c3-highcpu-88',
};

/** Where and when a trace was measured: from the index, else from its path (`<cloud>-<MM-DD-YYYY>/<zone>_<type>.json`). */
function traceMetadata(file: string, index: readonly SpotTraceIndexEntry[]): SpotTraceMetadata {
  const normalised = file.split(path.sep).join('/');
  const entry = index.find(e => normalised.endsWith(`/${e.file}`) || normalised === e.file);
  if (entry) return { cloud: entry.cloud, zone: entry.zone, instanceType: entry.instanceType, startAt: entry.startAt };
  const match = /\/(aws|gcp|azure)-(\d{2})-(\d{2})-(\d{4})\/([a-z0-9-]+)_([A-Za-z0-9_-]+)\.json$/.exec(normalised);
  const instanceType = match && TRACE_TYPE_BY_FILE_SUFFIX[match[6]];
  if (!match || !instanceType) {
    throw new Error(
      `cannot tell where and when ${file} was measured: it is not in skypilot_spot_traces_index.csv and its path is not <cloud>-<MM-DD-YYYY>/<zone>_<type>.json; add it to the index`,
    );
  }
  return {
    cloud: match[1] as SpotTraceMetadata['cloud'],
    zone: match[5],
    instanceType,
    startAt: Date.parse(`${match[4]}-${match[2]}-${match[3]}T00:00:00Z`),
  };
}
