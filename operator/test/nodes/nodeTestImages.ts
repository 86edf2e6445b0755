import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { imageSpec } from '../../src/images/images';

/** An image as a node imports it: an OCI layout tarball, and the name pods use. */
export interface NodeImage {
  tar: string;
  name: string;
}

const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * The tarballs of Ferry's images by builder name: from `FERRY_NODE_IMAGES`
 * (`<name> <tarball>` lines, as scripts/lib/nodes.sh's ferry_nodes_test sets it), else
 * built (or found in the cache) by scripts/lib/images.sh's ferry_images.
 */
function imageTarballs(names: string[]): Map<string, string> {
  const listed =
    process.env.FERRY_NODE_IMAGES ??
    execFileSync(
      'bash',
      [
        '-c',
        'source scripts/lib/system.sh && source scripts/lib/images.sh && ferry_images "$@"',
        'ferry_images',
        ...names,
      ],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
  const tarballs = new Map(
    listed
      .trim()
      .split('\n')
      .map(line => line.trim().split(/\s+/) as [string, string]),
  );
  const missing = names.filter(name => !tarballs.has(name));
  if (missing.length > 0) {
    throw new Error(
      `no tarball for the images ${missing.join(', ')} in FERRY_NODE_IMAGES; ` +
        `build them with: bash -c 'source scripts/lib/system.sh && source scripts/lib/images.sh && ferry_images ${names.join(
          ' ',
        )}'`,
    );
  }
  return tarballs;
}

/**
 * The images the real-node suites run: Ferry's pause for every pod sandbox, and
 * Valkey 9.1 under the name the post's manifests use (`valkey/valkey:9`).
 */
export function nodeTestImages(): { pause: NodeImage; valkey: NodeImage } {
  const tarballs = imageTarballs(['pause', 'valkey-9.1']);
  return {
    pause: {
      tar: tarballs.get('pause')!,
      name: imageSpec('pause').references[0],
    },
    valkey: {
      tar: tarballs.get('valkey-9.1')!,
      name: 'docker.io/valkey/valkey:9',
    },
  };
}
