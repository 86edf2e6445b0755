import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeAgent } from './NodeAgent';
import { AgentUnreachableError, NodeAgentClient } from './NodeAgentClient';
import { TLS_SERVER_NAME, makeCertificates } from '../migration/__testUtils__/tls';

// makeCertificates runs openssl several times: seconds on a busy two-core machine.
jest.setTimeout(30_000);

describe('NodeAgent', () => {
  let dir: string;
  let agent: NodeAgent;
  let url: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-agent-test-'));
    // `echo` stands in for criu: these tests are about the agent's own rules.
    agent = new NodeAgent({ node: 'spot-a', criu: ['echo', 'criu 4.2.1'], imagesDir: dir, host: '127.0.0.1', token: 's3cret' });
    url = `http://127.0.0.1:${await agent.start()}`;
  });

  afterEach(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers only requests that carry its token', async () => {
    await expect(new NodeAgentClient(url, 'wrong').health()).rejects.toThrow(/401/);
    expect(await new NodeAgentClient(url, 's3cret').health()).toEqual({
      node: 'spot-a',
      criu: 'criu 4.2.1 --version',
      imagesFreeBytes: expect.any(Number),
    });
  });

  it('refuses image ids that are not plain names', async () => {
    await expect(new NodeAgentClient(url, 's3cret').image('Images;rm')).rejects.toThrow(/400/);
  });

  it('refuses a hibernation watch it could not keep, saying what is wrong', async () => {
    const client = new NodeAgentClient(url, 's3cret');
    await expect(client.watchForHibernation('h1', { containerId: 'a;b', ports: [6379], idleMs: 10_000 })).rejects.toThrow(
      /400 container id 'a;b' must match/,
    );
    await expect(client.watchForHibernation('h1', { containerId: 'abc', ports: [], idleMs: 10_000 })).rejects.toThrow(
      /400 ports must be a non-empty list of TCP ports, got \[\]/,
    );
    await expect(client.watchForHibernation('h1', { containerId: 'abc', ports: [70000], idleMs: 10_000 })).rejects.toThrow(
      /400 ports must be/,
    );
    await expect(client.watchForHibernation('h1', { containerId: 'abc', ports: [6379], idleMs: 10 })).rejects.toThrow(
      /400 idleMs must be a whole number of milliseconds, at least 1000, got 10/,
    );
    await expect(client.hibernation('h1')).rejects.toThrow(/404 h1 is not watched on spot-a/);
  });

  it('refuses to dump init or a non-number', async () => {
    await expect(new NodeAgentClient(url, 's3cret').checkpoint('m1', 1, url)).rejects.toThrow(/not a process/);
  });

  it('refuses container ids that are not plain names, and containers without a runc root', async () => {
    const client = new NodeAgentClient(url, 's3cret');
    await expect(client.inspectContainer('m1', '../etc')).rejects.toThrow(/400.*container id/);
    await expect(client.checkpointContainer('m1', 'abc;rm', url)).rejects.toThrow(/400/);
    await expect(client.inspectContainer('m1', 'abc123')).rejects.toThrow(/without --runc-root/);
  });

  it('will not restore what it never received', async () => {
    await expect(new NodeAgentClient(url, 's3cret').restore('m1')).rejects.toThrow(/no complete images/);
  });

  it("stops the lazy-pages daemon of the images it deletes, and no other's", async () => {
    // Stand-ins with a lazy-pages daemon's command line: `criu lazy-pages ... -D <images>`.
    const daemonOf = (images: string) =>
      spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'lazy-pages', '--page-server', '-D', images], {
        stdio: 'ignore',
      });
    const moving = daemonOf(join(dir, 'm1'));
    const other = daemonOf(join(dir, 'm2'));
    try {
      await Promise.all([moving, other].map(p => new Promise(resolve => p.once('spawn', resolve))));
      const exited = new Promise(resolve => moving.once('exit', (_code, signal) => resolve(signal)));
      await new NodeAgentClient(url, 's3cret').deleteImages('m1');
      expect(await exited).toBe('SIGKILL');
      expect(other.exitCode).toBeNull();
      expect(other.signalCode).toBeNull();
    } finally {
      moving.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });

  it('reports an agent on a node that is gone as unreachable, quickly', async () => {
    await agent.stop();
    await expect(new NodeAgentClient(url, 's3cret').health()).rejects.toBeInstanceOf(AgentUnreachableError);
  });
});

describe('NodeAgent over HTTPS', () => {
  it('serves its API only over TLS, to clients that trust its CA', async () => {
    const certs = makeCertificates();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-agent-tls-'));
    const agent = new NodeAgent({
      node: 'spot-b',
      criu: ['echo', 'criu 4.2.1'],
      imagesDir: dir,
      host: '127.0.0.1',
      token: 's3cret',
      tls: { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
    });
    try {
      const port = await agent.start();
      const trusted = new NodeAgentClient(`https://127.0.0.1:${port}`, 's3cret', certs.ca, TLS_SERVER_NAME);
      expect(await trusted.health()).toMatchObject({ node: 'spot-b' });
      const wrongName = new NodeAgentClient(`https://127.0.0.1:${port}`, 's3cret', certs.ca, 'spot-x.internal');
      await expect(wrongName.health()).rejects.toThrow(/altnames|Hostname/i);
      const plain = new NodeAgentClient(`http://127.0.0.1:${port}`, 's3cret');
      await expect(plain.health()).rejects.toThrow();
      const untrusted = new NodeAgentClient(`https://127.0.0.1:${port}`, 's3cret');
      await expect(untrusted.health()).rejects.toThrow(/self.signed|certificate/i);
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
      certs.remove();
    }
  });
});
