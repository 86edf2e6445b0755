/**
 * Ferry's container images: what each is made of and how it starts. The image builder
 * (build.ts) makes them from this list without Docker or a registry; the Containerfile
 * of each (operator/images/<containerfile>/Containerfile) makes the same image with a
 * builder, and Containerfile.test.ts holds the two in step.
 */

/** The version of Ferry's own images (operator, agent): the chart's appVersion. */
export const FERRY_IMAGE_VERSION = '0.1.0';
/** The registry-less prefix of Ferry's images: never pulled, always imported. */
export const FERRY_IMAGE_PREFIX = 'localhost/ferry';

/** How a container of the image starts (the OCI image config's fields). */
export interface ImageRuntimeConfig {
  entrypoint?: string[];
  cmd?: string[];
  env: string[];
  exposedPorts?: string[];
  workingDir?: string;
}

/** One file of the repository or of a build input, copied to a path in the image. */
export interface ImageCopy {
  /**
   * `repo:<path>` (a file of this repository) or `input:<name>` (a build input,
   * scripts/lib/images.sh `ferry_image_input`: node, pause, operator-bundle, agent-bundle).
   */
  from: string;
  /** Absolute path in the image. */
  to: string;
}

/** One image: its root filesystem and its start. */
export interface ImageSpec {
  /** The builder's name for it (`ferry images <name>`) and its tarball's. */
  name: string;
  /** Fully qualified names it is imported under (containerd's, as the CRI looks them up). */
  references: string[];
  /** The directory under operator/images holding its Containerfile. */
  containerfile: string;
  /** Build arguments the Containerfile takes for this image (e.g. the Debian suite). */
  buildArgs?: Record<string, string>;
  /** The Debian tree (scripts/lib/images.sh `ferry_image_tree`) the root filesystem starts from. */
  debianTree?: string;
  /** Files copied in after the tree, before operator/images/rootfs.sh finishes it. */
  copies: ImageCopy[];
  config: ImageRuntimeConfig;
}

/** The PATH of every image, as Debian's and the official images' is. */
export const IMAGE_PATH =
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const valkeyConfig: ImageRuntimeConfig = {
  entrypoint: ['valkey-entrypoint'],
  cmd: ['valkey-server'],
  env: [IMAGE_PATH],
  exposedPorts: ['6379/tcp'],
  workingDir: '/data',
};
const valkeyCopies: ImageCopy[] = [
  {
    from: 'repo:operator/images/valkey/entrypoint.sh',
    to: '/usr/local/bin/valkey-entrypoint',
  },
];

/** Every image Ferry builds. */
export const FERRY_IMAGES: ImageSpec[] = [
  {
    name: 'pause',
    references: [`${FERRY_IMAGE_PREFIX}/pause:1.0`],
    containerfile: 'pause',
    copies: [{ from: 'input:pause', to: '/pause' }],
    config: { entrypoint: ['/pause'], env: [IMAGE_PATH] },
  },
  {
    name: 'valkey-9.1',
    // The name the post's manifests use; containerd keeps it normalised, as the CRI asks for it.
    references: [
      `${FERRY_IMAGE_PREFIX}/valkey:9.1`,
      'docker.io/valkey/valkey:9',
    ],
    containerfile: 'valkey',
    buildArgs: { SUITE: 'unstable' },
    debianTree: 'valkey-9.1',
    copies: valkeyCopies,
    config: valkeyConfig,
  },
  {
    name: 'valkey-8.1',
    references: [`${FERRY_IMAGE_PREFIX}/valkey:8.1`],
    containerfile: 'valkey',
    buildArgs: { SUITE: 'trixie' },
    debianTree: 'valkey-8.1',
    copies: valkeyCopies,
    config: valkeyConfig,
  },
  {
    name: 'redis-7',
    references: [`${FERRY_IMAGE_PREFIX}/redis:7`],
    containerfile: 'redis',
    debianTree: 'redis-7',
    copies: [],
    config: {
      cmd: ['redis-server', '--protected-mode', 'no'],
      env: [IMAGE_PATH],
      exposedPorts: ['6379/tcp'],
      workingDir: '/data',
    },
  },
  {
    name: 'operator',
    references: [`${FERRY_IMAGE_PREFIX}/operator:${FERRY_IMAGE_VERSION}`],
    containerfile: 'operator',
    debianTree: 'operator',
    // Where operator/chart's Deployment runs it: node /opt/ferry/main.cjs; the bundle
    // finds the shipped market data beside itself, one level up (src/cloud/marketFiles.ts).
    copies: [
      { from: 'input:node', to: '/usr/local/bin/node' },
      { from: 'input:operator-bundle', to: '/opt/ferry/main.cjs' },
      { from: 'repo:operator/data', to: '/opt/data' },
    ],
    config: {
      entrypoint: ['node', '/opt/ferry/main.cjs'],
      env: [IMAGE_PATH, 'NODE_ENV=production'],
      exposedPorts: ['8080/tcp', '9443/tcp'],
      workingDir: '/opt/ferry',
    },
  },
  {
    name: 'agent',
    references: [`${FERRY_IMAGE_PREFIX}/agent:${FERRY_IMAGE_VERSION}`],
    containerfile: 'agent',
    debianTree: 'agent',
    copies: [
      { from: 'input:node', to: '/usr/local/bin/node' },
      { from: 'input:agent-bundle', to: '/opt/ferry/agent.cjs' },
    ],
    config: {
      entrypoint: ['node', '/opt/ferry/agent.cjs'],
      // CRIU runs natively here: the image's libc is the one it was built for.
      env: [IMAGE_PATH, 'NODE_ENV=production', 'FERRY_CRIU=criu'],
      exposedPorts: ['7444/tcp'],
      workingDir: '/opt/ferry',
    },
  },
];

/** The image of that name, or an error naming the ones there are. */
export function imageSpec(name: string): ImageSpec {
  const spec = FERRY_IMAGES.find(image => image.name === name);
  if (!spec) {
    throw new Error(
      `no image '${name}'; Ferry builds ${FERRY_IMAGES.map(
        image => image.name,
      ).join(', ')}`,
    );
  }
  return spec;
}
