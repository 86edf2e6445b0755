import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CONTAINERD_IMAGE_NAME,
  OCI_MEDIA_TYPES,
  OCI_REF_NAME,
  referenceTag,
  writeOciArchive,
  writeTar,
} from './OciImageLayout';

describe('writeOciArchive', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-oci-'));
    const root = path.join(dir, 'root');
    await fs.mkdir(path.join(root, 'usr', 'bin'), { recursive: true });
    await fs.writeFile(
      path.join(root, 'usr', 'bin', 'hello'),
      '#!/bin/sh\necho hello\n',
      { mode: 0o755 },
    );
    await fs.symlink('usr/bin', path.join(root, 'bin'));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  async function build(name: string) {
    const layer = path.join(dir, `${name}.layer.tar`);
    await writeTar(path.join(dir, 'root'), layer);
    const out = path.join(dir, `${name}.tar`);
    const digest = await writeOciArchive({
      layer,
      out,
      references: ['localhost/ferry/hello:1.0', 'docker.io/library/hello:1'],
      config: {
        entrypoint: ['hello'],
        cmd: ['--loud'],
        env: ['PATH=/usr/bin'],
        exposedPorts: ['80/tcp'],
      },
    });
    const unpacked = path.join(dir, `${name}.unpacked`);
    await fs.mkdir(unpacked);
    execFileSync('tar', ['-xf', out, '-C', unpacked]);
    const blob = async (digestOf: string) =>
      fs.readFile(
        path.join(unpacked, 'blobs', 'sha256', digestOf.replace('sha256:', '')),
      );
    return { digest, unpacked, blob };
  }

  it('writes a layout containerd imports under every reference, with its start in the config', async () => {
    const { digest, unpacked, blob } = await build('a');
    expect(
      JSON.parse(await fs.readFile(path.join(unpacked, 'oci-layout'), 'utf8')),
    ).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    const index = JSON.parse(
      await fs.readFile(path.join(unpacked, 'index.json'), 'utf8'),
    );
    expect(
      index.manifests.map((m: any) => [
        m.digest,
        m.annotations[CONTAINERD_IMAGE_NAME],
        m.annotations[OCI_REF_NAME],
      ]),
    ).toEqual([
      [digest, 'localhost/ferry/hello:1.0', '1.0'],
      [digest, 'docker.io/library/hello:1', '1'],
    ]);
    const manifest = JSON.parse((await blob(digest)).toString());
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe(OCI_MEDIA_TYPES.layer);
    const config = JSON.parse((await blob(manifest.config.digest)).toString());
    expect(config.config).toEqual({
      Entrypoint: ['hello'],
      Cmd: ['--loud'],
      Env: ['PATH=/usr/bin'],
      ExposedPorts: { '80/tcp': {} },
    });
    // Uncompressed: the layer's digest is its diff id.
    expect(config.rootfs.diff_ids).toEqual([manifest.layers[0].digest]);
    const listing = execFileSync('tar', ['-tvf', '-'], {
      input: await blob(manifest.layers[0].digest),
    }).toString();
    expect(listing).toMatch(/bin -> usr\/bin/);
    expect(listing).toMatch(/-rwxr-xr-x 0\/0 .* usr\/bin\/hello/);
  });

  it('lets two builds of one image write it at once, and leaves only the archive', async () => {
    const layer = path.join(dir, 'layer.tar');
    await writeTar(path.join(dir, 'root'), layer);
    const out = path.join(dir, 'same.tar');
    const write = () =>
      writeOciArchive({
        layer,
        out,
        references: ['localhost/ferry/hello:1.0'],
        config: { entrypoint: ['hello'], env: ['PATH=/usr/bin'] },
      });
    const [first, second] = await Promise.all([write(), write()]);
    expect(second).toBe(first);
    expect(await fs.readdir(dir)).toEqual(expect.arrayContaining(['same.tar']));
    expect(
      (await fs.readdir(dir)).filter(n => n.startsWith('same.tar')),
    ).toEqual(['same.tar']);
    const unpacked = path.join(dir, 'same.unpacked');
    await fs.mkdir(unpacked);
    execFileSync('tar', ['-xf', out, '-C', unpacked]);
    expect(
      JSON.parse(await fs.readFile(path.join(unpacked, 'index.json'), 'utf8'))
        .manifests[0].digest,
    ).toBe(first);
  });

  it('writes the same bytes for the same content', async () => {
    const first = await build('a');
    await new Promise(resolve => setTimeout(resolve, 1100));
    const root = path.join(dir, 'root', 'usr', 'bin', 'hello');
    await fs.utimes(root, new Date(), new Date());
    const second = await build('b');
    expect(second.digest).toBe(first.digest);
  });

  it('refuses a reference without a tag', () => {
    expect(() => referenceTag('localhost/ferry/hello')).toThrow(/has no tag/);
    expect(referenceTag('localhost:5000/ferry/hello:2')).toBe('2');
  });
});
