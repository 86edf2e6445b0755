/**
 * Builds Ferry's images (images.ts) as OCI image layout tarballs, without Docker and
 * without a registry:
 *
 *   yarn tsx src/images/build.ts --out ~/.cache/ferry/images [name...]
 *
 * (scripts/lib/images.sh `ferry_images` runs it). Prints one `name path` line per image.
 * An image's tarball is named by a digest of everything that goes into it (the Debian
 * tree's package versions, every copied file's bytes, the spec, rootfs.sh and this
 * builder's sources), so an unchanged image is found in the cache and not built again.
 * Needs root: the Debian trees are unpacked by apt, and the finished root filesystem is
 * checked by running its loader under chroot.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FERRY_IMAGES, ImageSpec, imageSpec } from './images';
import { run, writeOciArchive, writeTar } from './OciImageLayout';

// Run from the sources by tsx (never bundled): the repository is three levels up.
// eslint-disable-next-line no-restricted-syntax
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const ROOTFS_SCRIPT = path.join(REPO_ROOT, 'operator', 'images', 'rootfs.sh');
const IMAGES_SH = path.join(REPO_ROOT, 'scripts', 'lib', 'images.sh');
/** The builder's own sources: a change to how images are written is a new key too. */
const BUILDER_SOURCES = ['build.ts', 'OciImageLayout.ts'].map(file =>
  path.join(REPO_ROOT, 'operator', 'src', 'images', file),
);

/** Runs a function of scripts/lib/images.sh and returns the last line it prints. */
async function shell(fn: string, argument: string): Promise<string> {
  const out = await run('bash', [
    '-c',
    `source "${IMAGES_SH}" && ${fn} "$1"`,
    'ferry-images',
    argument,
  ]);
  const lines = out.trim().split('\n');
  return lines[lines.length - 1];
}

async function hashPath(
  hash: ReturnType<typeof createHash>,
  file: string,
): Promise<void> {
  const stat = await fs.lstat(file);
  hash.update(`${path.basename(file)} ${stat.mode}\n`);
  if (stat.isDirectory()) {
    for (const entry of (await fs.readdir(file)).sort()) {
      await hashPath(hash, path.join(file, entry));
    }
  } else if (stat.isSymbolicLink()) {
    hash.update(await fs.readlink(file));
  } else {
    for await (const chunk of createReadStream(file))
      hash.update(chunk as Buffer);
  }
}

interface ResolvedImage {
  spec: ImageSpec;
  tree?: string;
  copies: { source: string; to: string }[];
  key: string;
}

async function resolve(spec: ImageSpec): Promise<ResolvedImage> {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(spec));
  for (const file of [ROOTFS_SCRIPT, ...BUILDER_SOURCES]) {
    await hashPath(hash, file);
  }
  let tree: string | undefined;
  if (spec.debianTree) {
    tree = await shell('ferry_image_tree', spec.debianTree);
    hash.update(await fs.readFile(path.join(tree, '.packages'), 'utf8'));
  }
  const copies = [];
  for (const copy of spec.copies) {
    const [kind, name] = copy.from.split(/:(.*)/s);
    const source =
      kind === 'repo'
        ? path.join(REPO_ROOT, name)
        : await shell('ferry_image_input', name);
    await hashPath(hash, source);
    copies.push({ source, to: copy.to });
  }
  return { spec, tree, copies, key: hash.digest('hex').slice(0, 16) };
}

/** Every dynamically linked program in the image finds its libraries inside the image. */
async function checkLinks(root: string): Promise<void> {
  const missing: string[] = [];
  for (const dir of ['usr/bin', 'usr/sbin', 'usr/local/bin']) {
    const entries = await fs
      .readdir(path.join(root, dir))
      .catch(() => [] as string[]);
    for (const entry of entries) {
      const file = path.join(root, dir, entry);
      const stat = await fs.lstat(file);
      if (!stat.isFile()) continue;
      const head = Buffer.alloc(4);
      const handle = await fs.open(file, 'r');
      await handle.read(head, 0, 4, 0);
      await handle.close();
      if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) continue;
      const out = await run('chroot', [
        root,
        '/lib64/ld-linux-x86-64.so.2',
        '--list',
        `/${dir}/${entry}`,
        // The loader lists what is not found, or stops at the first library it cannot open.
      ]).catch((error: Error) =>
        error.message.includes('not a dynamic executable') ? '' : error.message,
      );
      for (const line of out
        .split('\n')
        .filter(l =>
          /not found|cannot open shared object|error while loading/.test(l),
        )) {
        missing.push(`/${dir}/${entry}: ${line.trim()}`);
      }
    }
  }
  if (missing.length) {
    throw new Error(
      `libraries missing from the image (add their Debian packages to its tree):\n${missing.join(
        '\n',
      )}`,
    );
  }
}

async function build(image: ResolvedImage, out: string): Promise<void> {
  const work = await fs.mkdtemp(
    path.join(path.dirname(out), `.${image.spec.name}-`),
  );
  try {
    const root = path.join(work, 'rootfs');
    await fs.mkdir(root);
    if (image.tree) {
      await run('cp', ['-a', '--reflink=auto', `${image.tree}/.`, root]);
    }
    for (const copy of image.copies) {
      const target = path.join(root, copy.to);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await run('cp', ['-a', '--reflink=auto', copy.source, target]);
    }
    await run('sh', [ROOTFS_SCRIPT, root]);
    if (image.tree) {
      await checkLinks(root);
    }
    const layer = path.join(work, 'layer.tar');
    await writeTar(root, layer);
    await writeOciArchive({
      layer,
      config: image.spec.config,
      references: image.spec.references,
      out,
    });
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Builds (or finds in `outDir`) one image; returns its tarball's path. */
export async function buildImage(
  spec: ImageSpec,
  outDir: string,
): Promise<{ path: string; built: boolean }> {
  const image = await resolve(spec);
  const out = path.join(outDir, `${spec.name}-${image.key}.tar`);
  const exists = await fs.stat(out).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await build(image, out);
  }
  return { path: out, built: !exists };
}

/** Where images are kept unless told otherwise (scripts/lib/images.sh's cache). */
export function defaultImagesDir(): string {
  return path.join(
    process.env.FERRY_CACHE ?? path.join(os.homedir(), '.cache', 'ferry'),
    'images',
  );
}

/**
 * Builds (or finds) the named images, all of them by default, and returns each one's
 * tarball by name, e.g. for importing into a node's containerd.
 */
export async function ferryImages(
  names: string[] = FERRY_IMAGES.map(image => image.name),
  outDir = defaultImagesDir(),
): Promise<Record<string, string>> {
  await fs.mkdir(outDir, { recursive: true });
  const tarballs: Record<string, string> = {};
  for (const name of names) {
    tarballs[name] = (await buildImage(imageSpec(name), outDir)).path;
  }
  return tarballs;
}

async function main(argv: string[]): Promise<void> {
  const outIndex = argv.indexOf('--out');
  if (outIndex < 0 || !argv[outIndex + 1]) {
    throw new Error(
      '--out <directory> is required: where the image tarballs go (e.g. ~/.cache/ferry/images)',
    );
  }
  const outDir = path.resolve(argv[outIndex + 1]);
  const names = argv.filter((_, i) => i !== outIndex && i !== outIndex + 1);
  const specs = names.length ? names.map(imageSpec) : FERRY_IMAGES;
  await fs.mkdir(outDir, { recursive: true });
  for (const spec of specs) {
    const started = Date.now();
    const result = await buildImage(spec, outDir);
    const { size } = await fs.stat(result.path);
    process.stderr.write(
      `ferry images: ${spec.name} ${result.built ? 'built' : 'cached'} in ${(
        (Date.now() - started) /
        1000
      ).toFixed(1)} s, ` +
        `${(size / 1e6).toFixed(1)} MB (${spec.references.join(', ')})\n`,
    );
    process.stdout.write(`${spec.name} ${result.path}\n`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch(error => {
    process.stderr.write(`ferry images: ${error?.message ?? error}\n`);
    process.exit(1);
  });
}
