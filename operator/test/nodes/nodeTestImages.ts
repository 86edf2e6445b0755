import path from 'node:path';

/** An image as a node imports it: an OCI layout tarball, and the name it carries. */
export interface NodeImage {
  tar: string;
  name: string;
}

/** The images the real-node suites run: the pod sandbox's pause, and Valkey. */
export function nodeTestImages(): { pause: NodeImage; valkey: NodeImage } {
  const dir = process.env.FERRY_NODES_DEV_IMAGES ?? '/tmp/nodes-dev';
  return {
    pause: {
      tar: path.join(dir, 'pause.tar'),
      name: 'ferry.local/dev/pause:1',
    },
    valkey: {
      tar: path.join(dir, 'redis.tar'),
      name: 'ferry.local/dev/redis:1',
    },
  };
}
