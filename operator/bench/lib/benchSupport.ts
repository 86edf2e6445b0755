/**
 * What the operator's benchmarks share: where the data is, their arguments
 * (`--prices <csv>`, `--trace <json or directory>`, repeatable), and writing
 * `bench/results/<name>.json`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { listJson } from '../../src/cloud/marketFiles';
import { parseSpotTraceIndex } from '../../src/cloud/marketData';

/** The repository root: the directory holding `scripts/bench.sh`. */
export function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'bench.sh'))) return dir;
  }
  throw new Error('cannot find the repository root (a directory with scripts/bench.sh) above the benchmark');
}

/** The spot-market data directory beside the repository (`../shared/data`). */
export function sharedDataDir(): string {
  const dir = path.resolve(repoRoot(), '..', 'shared', 'data');
  if (!fs.existsSync(dir)) {
    throw new Error(`the spot-market data is not at ${dir}; pass --prices and --trace with files in its formats`);
  }
  return dir;
}

/** Parsed benchmark arguments. */
export interface BenchArgs {
  prices: string[];
  traces: string[];
  options: Map<string, string>;
}

/** Reads `--prices`, `--trace` (a file or a directory of traces) and other `--key value` options. */
export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const out: BenchArgs = { prices: [], traces: [], options: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"; use --prices <csv>, --trace <json|dir> or --<option> <value>`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`${arg} needs a value`);
    i++;
    const resolved = path.resolve(process.env.INIT_CWD ?? process.cwd(), value);
    if (arg === '--prices') out.prices.push(resolved);
    else if (arg === '--trace') out.traces.push(...(fs.statSync(resolved).isDirectory() ? listJson(resolved) : [resolved]));
    else out.options.set(arg.slice(2), value);
  }
  return out;
}

/** A numeric option, or its default. */
export function numberOption(args: BenchArgs, name: string, fallback: number): number {
  const raw = args.options.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got "${raw}"`);
  return value;
}

/** A path option resolved against the directory the command was run from, or undefined. */
export function pathOption(args: BenchArgs, name: string): string | undefined {
  const raw = args.options.get(name);
  return raw === undefined ? undefined : path.resolve(process.env.INIT_CWD ?? process.cwd(), raw);
}

/** The single-node traces of a SkyPilot data directory, optionally of one cloud. */
export function singleNodeTraces(dataDir: string, cloud?: string): string[] {
  const indexFile = path.join(dataDir, 'skypilot_spot_traces_index.csv');
  const index = parseSpotTraceIndex(fs.readFileSync(indexFile, 'utf8'), indexFile);
  return index
    .filter(e => e.nodes === '1-node' && (!cloud || e.cloud === cloud))
    .map(e => path.join(dataDir, 'skypilot_spot_traces', e.file))
    .sort();
}

/** Writes the benchmark's JSON where `scripts/bench.sh` says, and returns the path. */
export function writeResults(name: string, results: unknown): string {
  const dir = process.env.FERRY_BENCH_RESULTS ?? path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** Rounds for printing and for JSON that compares well across runs. */
export function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
