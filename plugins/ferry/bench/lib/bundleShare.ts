/**
 * Ferry's share of the app bundle, measured from the build's source maps; used
 * by the `ui` and `ui-frontend` benchmarks.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decode } from '@jridgewell/sourcemap-codec';

/** Packages in the bundle only because Ferry draws charts. */
const CHART_PACKAGES = [
  'recharts',
  'recharts-scale',
  'react-smooth',
  'victory-vendor',
  'decimal.js-light',
];
/** Generated code from Ferry's own packages. */
function isOwnSource(source: string) {
  return /plugins\/ferry(-common)?\/src\//.test(source);
}

/** Generated code from the charting packages only Ferry brings. */
function isChartSource(source: string) {
  return CHART_PACKAGES.some(p => source.includes(`node_modules/${p}/`));
}

/** The generated code of one file that its source map attributes to `pick`. */
function generatedCodeOf(
  code: string,
  map: { sources: string[]; mappings: string },
  pick: (s: string) => boolean,
) {
  const wanted = map.sources.map(pick);
  const lines = code.split('\n');
  const decoded = decode(map.mappings);
  let out = '';
  decoded.forEach((segments, lineIndex) => {
    const line = lines[lineIndex] ?? '';
    segments.forEach((segment, i) => {
      if (segment.length < 4 || !wanted[segment[1]!]) return;
      const end = i + 1 < segments.length ? segments[i + 1][0] : line.length;
      out += line.slice(segment[0], end);
    });
  });
  return out;
}

/**
 * Ferry's share of a built app (packages/app/dist), gzipped: the code its source
 * maps attribute to plugins/ferry and plugins/ferry-common, plus the charting
 * packages only Ferry brings.
 */
export function bundleShare(distDir: string) {
  const staticDir = join(distDir, 'static');
  let own = '';
  let charts = '';
  let appGzip = 0;
  for (const file of readdirSync(staticDir)) {
    if (extname(file) !== '.js') continue;
    const code = readFileSync(join(staticDir, file), 'utf8');
    appGzip += gzipSync(code).length;
    const mapFile = join(staticDir, `${file}.map`);
    if (!existsSync(mapFile)) continue;
    const map = JSON.parse(readFileSync(mapFile, 'utf8'));
    own += generatedCodeOf(code, map, isOwnSource);
    charts += generatedCodeOf(code, map, isChartSource);
  }
  const kib = (s: string) => gzipSync(s).length / 1024;
  return {
    ownGzipKiB: kib(own),
    chartsGzipKiB: kib(charts),
    bundleGzipKiB: kib(own + charts),
    appGzipKiB: appGzip / 1024,
  };
}
