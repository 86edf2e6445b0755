import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ImageRuntimeConfig } from './images';

/** Media types of the OCI image spec (v1.1) that the layout uses. */
export const OCI_MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** The annotation containerd's `ctr images import` names an image by. */
export const CONTAINERD_IMAGE_NAME = 'io.containerd.image.name';
/** The OCI layout's own name annotation: the tag, for tools that read the layout (skopeo, umoci). */
export const OCI_REF_NAME = 'org.opencontainers.image.ref.name';
/** Every file in a layer and an archive gets this time, so equal content gives equal digests. */
const EPOCH = '@0';

/** A blob's descriptor as manifests and indexes reference it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** GNU tar's options for byte-for-byte reproducible archives of a directory. */
export const REPRODUCIBLE_TAR_OPTIONS = [
  '--sort=name',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  `--mtime=${EPOCH}`,
  '--format=posix',
  '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
];

/** The sha256 digest (`sha256:<hex>`) and size of a file. */
export async function fileDigest(
  file: string,
): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Runs a command; rejects with its stderr when it fails. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', chunk => (stdout += chunk));
    child.stderr.on('data', chunk => (stderr += chunk));
    child.on('error', reject);
    child.on('close', code =>
      code === 0
        ? resolve(stdout)
        : reject(
            new Error(
              `${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`,
            ),
          ),
    );
  });
}

/** Writes `dir`'s contents (not `dir` itself) as an uncompressed, reproducible tar. */
export async function writeTar(dir: string, out: string): Promise<void> {
  const entries = (await fs.readdir(dir)).sort();
  await run('tar', [
    '--create',
    `--file=${out}`,
    `--directory=${dir}`,
    ...REPRODUCIBLE_TAR_OPTIONS,
    '--',
    ...entries,
  ]);
}

/** The OCI image config (the "application/vnd.oci.image.config.v1+json" blob). */
export function imageConfig(
  config: ImageRuntimeConfig,
  diffId: string,
): object {
  const runtime: Record<string, unknown> = { Env: config.env };
  if (config.entrypoint) runtime.Entrypoint = config.entrypoint;
  if (config.cmd) runtime.Cmd = config.cmd;
  if (config.workingDir) runtime.WorkingDir = config.workingDir;
  if (config.exposedPorts?.length) {
    runtime.ExposedPorts = Object.fromEntries(
      config.exposedPorts.map(port => [port, {}]),
    );
  }
  return {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: runtime,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [
      {
        created: '1970-01-01T00:00:00Z',
        created_by: 'ferry images (operator/src/images/build.ts)',
      },
    ],
  };
}

/** The tag part of a reference (`docker.io/valkey/valkey:9` -> `9`). */
export function referenceTag(reference: string): string {
  const lastSlash = reference.lastIndexOf('/');
  const colon = reference.indexOf(':', lastSlash + 1);
  if (colon < 0) {
    throw new Error(
      `image reference '${reference}' has no tag; give one, e.g. '${reference}:1.0'`,
    );
  }
  return reference.slice(colon + 1);
}

async function writeBlob(
  blobs: string,
  content: string,
): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  await fs.writeFile(path.join(blobs, digest.slice('sha256:'.length)), content);
  return { digest, size: Buffer.byteLength(content) };
}

/**
 * Writes an OCI image layout as one tarball (`out`): a single uncompressed layer (the
 * tar at `layer`), its config, its manifest, and an index naming the manifest once per
 * reference, with both containerd's and the OCI layout's name annotations.
 * Returns the manifest's digest.
 */
export async function writeOciArchive(options: {
  layer: string;
  config: ImageRuntimeConfig;
  references: string[];
  out: string;
}): Promise<string> {
  // A directory and a tarball of this writer's own: two builds of one image at
  // once (two suites, or the playground beside them, on a cold cache) must not
  // write into each other's layout. The rename at the end is atomic, and both
  // write the same bytes.
  const work = await fs.mkdtemp(`${options.out}.layout-`);
  const partial = `${work}.tar`;
  const blobs = path.join(work, 'blobs', 'sha256');
  await fs.mkdir(blobs, { recursive: true });
  try {
    const layer = await fileDigest(options.layer);
    // A hard link: the layer may be hundreds of megabytes.
    await fs.link(
      options.layer,
      path.join(blobs, layer.digest.slice('sha256:'.length)),
    );
    const config = await writeBlob(
      blobs,
      JSON.stringify(imageConfig(options.config, layer.digest)),
    );
    const manifest = await writeBlob(
      blobs,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MEDIA_TYPES.manifest,
        config: { mediaType: OCI_MEDIA_TYPES.config, ...config },
        layers: [{ mediaType: OCI_MEDIA_TYPES.layer, ...layer }],
      }),
    );
    const index = {
      schemaVersion: 2,
      mediaType: OCI_MEDIA_TYPES.index,
      manifests: options.references.map(reference => ({
        mediaType: OCI_MEDIA_TYPES.manifest,
        ...manifest,
        annotations: {
          [CONTAINERD_IMAGE_NAME]: reference,
          [OCI_REF_NAME]: referenceTag(reference),
        },
      })),
    };
    await fs.writeFile(path.join(work, 'index.json'), JSON.stringify(index));
    await fs.writeFile(
      path.join(work, 'oci-layout'),
      JSON.stringify({ imageLayoutVersion: '1.0.0' }),
    );
    await writeTar(work, partial);
    await fs.rename(partial, options.out);
    return manifest.digest;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    await fs.rm(partial, { force: true });
  }
}
