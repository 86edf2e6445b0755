/* Valkey/Redis members as processes in testbed hosts, and the runtime the driver uses on them. */
import Valkey from 'iovalkey';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientRedirector, ValkeyMemberRuntime } from '../valkey/ValkeyDriver';
import type { ValkeyAccess, ValkeyEndpoint } from '../valkey/ValkeyAdmin';
import { Testbed } from './Testbed';

const REPO_ROOT = resolve(__dirname, '../../../..');

/** The port every member listens on, as in a pod. */
export const VALKEY_PORT = 6379;

/** ACL users the test members have; the default user is off, so auth is exercised. */
export const TEST_USERS = {
  operator: { username: 'ferry-operator', password: 'op-secret-2f8a' },
  app: { username: 'app', password: 'app-secret-91c4' },
  replication: { username: 'replicator', password: 'repl-secret-5d0e' },
};

/** What the operator uses against the test members. */
export const TEST_ACCESS: ValkeyAccess = {
  username: TEST_USERS.operator.username,
  password: TEST_USERS.operator.password,
  replicationUser: TEST_USERS.replication.username,
  replicationPassword: TEST_USERS.replication.password,
};

/** Servers the suites and the benchmark run, as scripts/lib/valkey.sh unpacks them. */
export const TEST_SERVERS = ['valkey-9.1', 'valkey-8.1', 'redis-7.0'] as const;
/** One of {@link TEST_SERVERS}. */
export type TestServer = (typeof TEST_SERVERS)[number];
/** What a suite runs when it names no server: the machine's own redis-server, as before. */
export const DEFAULT_TEST_SERVER: TestServer = 'redis-7.0';

/** The redis-server binary; tests fail (not skip) when it is missing. */
export function redisServerPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v valkey-server || command -v redis-server'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    throw new Error(
      'redis-server is not installed; scripts/ferry installs it with ferry_system_packages redis-server',
    );
  }
}

const serverCommands = new Map<TestServer, string[]>();

/**
 * The command line that runs `server` on this machine: the machine's redis-server
 * for `redis-7.0`, Valkey from scripts/lib/valkey.sh (unpacked once into
 * ~/.cache/ferry, offline afterwards) for the others. Throws, failing the test,
 * when it cannot be had.
 */
export function serverCommand(server: TestServer = DEFAULT_TEST_SERVER): string[] {
  const known = serverCommands.get(server);
  if (known) return known;
  if (!TEST_SERVERS.includes(server)) {
    throw new Error(`unknown server "${server}"; use one of ${TEST_SERVERS.join(', ')}`);
  }
  let command: string[];
  if (server === 'redis-7.0') {
    command = [redisServerPath()];
  } else {
    const release = server.replace(/^valkey-/, '');
    try {
      command = execFileSync(
        'bash',
        ['-c', `source scripts/lib/system.sh 2>/dev/null; source scripts/lib/valkey.sh && ferry_valkey_command ${release}`],
        { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      )
        .trim()
        .split(/\s+/);
    } catch (error) {
      throw new Error(`${server} is not available (scripts/lib/valkey.sh ferry_valkey_command ${release} failed): ${error}`);
    }
  }
  serverCommands.set(server, command);
  return command;
}

/** One member process. */
export interface TestMember {
  endpoint: ValkeyEndpoint;
  pid: number;
  dir: string;
}

/** Starts a member in `hostName`, in its own PID namespace, and waits until it answers. */
export async function startMember(
  bed: Testbed,
  name: string,
  hostName: string,
  extraArgs: string[] = [],
  dir: string = mkdtempSync(join(tmpdir(), `${bed.prefix}-${name}-`)),
  access: ValkeyAccess = TEST_ACCESS,
  server: TestServer = DEFAULT_TEST_SERVER,
): Promise<TestMember> {
  const u = TEST_USERS;
  const args = [
    '--port', String(VALKEY_PORT),
    '--bind', '0.0.0.0',
    '--protected-mode', 'no',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--logfile', '',
    '--enable-debug-command', 'yes',
    // Full syncs start at once and stream straight into an empty replica.
    '--repl-diskless-sync', 'yes',
    '--repl-diskless-sync-delay', '0',
    '--repl-diskless-load', 'on-empty-db',
    '--repl-backlog-size', '128mb',
    // DEBUG POPULATE's values are mostly zero bytes; LZF would shrink them 25-fold
    // and make every transfer look cheap. Real values rarely compress like that.
    '--rdbcompression', 'no',
    '--client-output-buffer-limit', 'replica 0 0 0',
    '--masteruser', u.replication.username,
    '--masterauth', u.replication.password,
    '--user', 'default', 'off',
    '--user', u.operator.username, 'on', `>${u.operator.password}`, '~*', '&*', '+@all',
    '--user', u.app.username, 'on', `>${u.app.password}`, '~*', '&*', '+@all', '-@dangerous',
    // +sync: Valkey's dual-channel replication sends SYNC on its snapshot channel.
    '--user', u.replication.username, 'on', `>${u.replication.password}`, '+psync', '+sync', '+replconf', '+ping',
    ...serverArgs(server),
    ...extraArgs,
  ];
  const [command, ...prefix] = serverCommand(server);
  const { pid } = await bed.spawnInHost(hostName, command, [...prefix, ...args]);
  const endpoint: ValkeyEndpoint = {
    name,
    node: hostName,
    host: bed.host(hostName).address,
    port: VALKEY_PORT,
  };
  await waitForPing(endpoint, undefined, access);
  return { endpoint, pid, dir };
}

/**
 * Settings of a release beyond the common ones: Valkey 8+ streams the snapshot
 * and the writes taken meanwhile on two connections (dual-channel replication),
 * so the source does not buffer the writes while the replica loads.
 */
function serverArgs(server: TestServer): string[] {
  return server.startsWith('valkey-') ? ['--dual-channel-replication-enabled', 'yes'] : [];
}

/** Resolves when the member answers PING (as the operator user). */
export async function waitForPing(
  endpoint: { host: string; port: number },
  timeoutMs = 120_000,
  access: ValkeyAccess = TEST_ACCESS,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const client = adminClient(endpoint, access);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch (error) {
      client.disconnect();
      if (Date.now() > until) throw error;
      await new Promise(r => setTimeout(r, 50));
    }
  }
}

/** A plain operator connection for test assertions. */
export function adminClient(endpoint: { host: string; port: number }, access: ValkeyAccess = TEST_ACCESS): Valkey {
  const client = new Valkey({
    host: endpoint.host,
    port: endpoint.port,
    ...TEST_USERS.operator,
    tls: access.tls,
    lazyConnect: true,
    connectTimeout: 1000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => {});
  return client;
}

/** The driver's view of the testbed: members are processes, the redirector points a Service. */
export class TestbedValkeyRuntime implements ValkeyMemberRuntime, ClientRedirector {
  readonly members = new Map<string, TestMember>();
  private routedTo?: string;
  /** Fault injection: throws instead of starting a member on these hosts. */
  readonly failStartOn = new Set<string>();

  constructor(
    private readonly bed: Testbed,
    readonly serviceAddress: string,
    readonly server: TestServer = DEFAULT_TEST_SERVER,
  ) {}

  /** Registers a member started by the test (the workload's existing primary). */
  adopt(member: TestMember): void {
    this.members.set(member.endpoint.name, member);
  }

  async resolveMember(pod: string): Promise<ValkeyEndpoint> {
    const member = this.members.get(pod);
    if (!member) throw new Error(`no member ${pod}`);
    return member.endpoint;
  }

  async startMember(name: string, node: string): Promise<ValkeyEndpoint> {
    const existing = this.members.get(name);
    if (existing) return existing.endpoint;
    if (this.failStartOn.has(node) || !this.bed.hosts.has(node)) {
      throw new Error(`node ${node} cannot start pods`);
    }
    const member = await startMember(this.bed, name, node, [], undefined, TEST_ACCESS, this.server);
    this.members.set(name, member);
    return member.endpoint;
  }

  async stopMember(member: ValkeyEndpoint): Promise<void> {
    const known = this.members.get(member.name);
    if (known) {
      try {
        process.kill(known.pid, 'SIGKILL');
      } catch {
        // Already gone with its host.
      }
      rmSync(known.dir, { recursive: true, force: true });
      this.members.delete(member.name);
    }
  }

  async fenceMember(member: ValkeyEndpoint): Promise<void> {
    if (this.routedTo === member.name) {
      await this.bed.stopService(this.serviceAddress);
      this.routedTo = undefined;
    }
    await this.stopMember(member);
  }

  async pointTo(member: ValkeyEndpoint): Promise<void> {
    // A Service: clients already connected stay on the old member until the
    // switch closes their connections, as behind kube-proxy.
    await this.bed.forwardService(this.serviceAddress, member.node);
    this.routedTo = member.name;
  }

  async current(): Promise<string | undefined> {
    return this.routedTo;
  }

  /** Stops every member the runtime knows. */
  async stopAll(): Promise<void> {
    for (const member of [...this.members.values()]) {
      await this.stopMember(member.endpoint);
    }
  }
}
