import Valkey from 'iovalkey';
import type { ConnectionOptions } from 'node:tls';

/** How long an admin connection may take to open before the member counts as unreachable. */
export const ADMIN_CONNECT_TIMEOUT_MS = 1_000;
/** How long one admin command may take; FAILOVER and REPLICAOF return at once. */
export const ADMIN_COMMAND_TIMEOUT_MS = 3_000;

/** Where a Valkey/Redis member listens, and which pod and node it is. */
export interface ValkeyEndpoint {
  /** The member's pod name. */
  name: string;
  node: string;
  host: string;
  port: number;
}

/** Credentials and transport for the operator's admin connections. */
export interface ValkeyAccess {
  /** ACL user the operator authenticates as (needs @admin, @dangerous, @replication). */
  username?: string;
  password?: string;
  /** TLS options; when set every admin connection uses TLS. */
  tls?: ConnectionOptions;
  /** ACL user and password members use to replicate from each other (`masteruser`/`masterauth`). */
  replicationUser?: string;
  replicationPassword?: string;
}

/** The member could not be reached at all (refused, timed out, host gone). */
export class MemberUnreachableError extends Error {
  constructor(readonly endpoint: ValkeyEndpoint, cause: unknown) {
    super(
      `member ${endpoint.name} at ${endpoint.host}:${endpoint.port} is unreachable: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.name = 'MemberUnreachableError';
  }
}

/** `ROLE`-level facts the hand-off decides on, from `INFO replication`. */
export interface ReplicationInfo {
  role: 'master' | 'slave';
  replid: string;
  replid2: string;
  /** This member's own replication offset. */
  offset: number;
  /** Offset up to which the old history (`replid2`) is valid after a promotion. */
  secondOffset: number;
  masterHost?: string;
  masterPort?: number;
  masterLinkUp: boolean;
  syncInProgress: boolean;
  /** `failover_state` of a primary: `no-failover`, `waiting-for-sync`, `failover-in-progress`. */
  failoverState: string;
  connectedReplicas: number;
}

/** Parses the `key:value` lines of an INFO section. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) {
      fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
    }
  }
  return fields;
}

/** Reads the facts the hand-off needs from `INFO replication`. */
export function replicationInfo(fields: Record<string, string>): ReplicationInfo {
  const role = fields.role === 'slave' ? 'slave' : 'master';
  return {
    role,
    replid: fields.master_replid ?? '',
    replid2: fields.master_replid2 ?? '',
    offset: Number(fields.master_repl_offset ?? 0),
    secondOffset: Number(fields.second_repl_offset ?? -1),
    masterHost: fields.master_host,
    masterPort: fields.master_port ? Number(fields.master_port) : undefined,
    masterLinkUp: fields.master_link_status === 'up',
    syncInProgress: fields.master_sync_in_progress === '1',
    failoverState: fields.master_failover_state ?? 'no-failover',
    connectedReplicas: Number(fields.connected_slaves ?? 0),
  };
}

/** A short-lived admin connection to one member. */
export class ValkeyAdmin {
  private constructor(
    readonly endpoint: ValkeyEndpoint,
    private readonly client: Valkey,
  ) {}

  /** Opens a connection or throws {@link MemberUnreachableError}. */
  static async connect(
    endpoint: ValkeyEndpoint,
    access: ValkeyAccess,
  ): Promise<ValkeyAdmin> {
    const client = new Valkey({
      host: endpoint.host,
      port: endpoint.port,
      username: access.username,
      password: access.password,
      tls: access.tls,
      lazyConnect: true,
      connectTimeout: ADMIN_CONNECT_TIMEOUT_MS,
      commandTimeout: ADMIN_COMMAND_TIMEOUT_MS,
      // An admin connection that drops is a fact to act on, not something to hide.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectionName: 'ferry-operator',
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw new MemberUnreachableError(endpoint, error);
    }
    return new ValkeyAdmin(endpoint, client);
  }

  /** Runs `fn` with a connection and always closes it. */
  static async with<T>(
    endpoint: ValkeyEndpoint,
    access: ValkeyAccess,
    fn: (admin: ValkeyAdmin) => Promise<T>,
  ): Promise<T> {
    const admin = await ValkeyAdmin.connect(endpoint, access);
    try {
      return await fn(admin);
    } finally {
      admin.close();
    }
  }

  /** Runs a raw command; connection errors become {@link MemberUnreachableError}. */
  async call(command: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.client.call(command, ...args);
    } catch (error) {
      if (isConnectionError(error)) {
        throw new MemberUnreachableError(this.endpoint, error);
      }
      throw error;
    }
  }

  /** `INFO <section>` as fields. */
  async info(section: string): Promise<Record<string, string>> {
    return parseInfo(String(await this.call('INFO', section)));
  }

  /** The member's replication facts. */
  async replication(): Promise<ReplicationInfo> {
    return replicationInfo(await this.info('replication'));
  }

  /** Server version as [major, minor]. */
  async version(): Promise<[number, number]> {
    const fields = await this.info('server');
    const v = (fields.valkey_version ?? fields.redis_version ?? '0.0').split('.');
    return [Number(v[0]), Number(v[1])];
  }

  close(): void {
    this.client.disconnect();
  }
}

/**
 * An admin connection kept across the polls of one step and reopened after a
 * failure: polling with a fresh connection (and AUTH, and TLS handshake) every
 * few milliseconds would steal CPU from the very sync it watches.
 */
export class ValkeyAdminSession {
  private admin?: ValkeyAdmin;

  constructor(readonly endpoint: ValkeyEndpoint, private readonly access: ValkeyAccess) {}

  /** Runs `fn` on the kept connection, opening it first if needed. */
  async run<T>(fn: (admin: ValkeyAdmin) => Promise<T>): Promise<T> {
    try {
      this.admin ??= await ValkeyAdmin.connect(this.endpoint, this.access);
      return await fn(this.admin);
    } catch (error) {
      this.close();
      throw error;
    }
  }

  close(): void {
    this.admin?.close();
    this.admin = undefined;
  }
}

/** Whether an error means the connection, not the command, failed. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) {
    return false;
  }
  const code = (error as NodeJS.ErrnoException).code;
  return (
    /Connection is closed|Stream isn't writeable|Command timed out|connect ETIMEDOUT|ECONNRESET|EPIPE/i.test(
      error.message,
    ) ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ETIMEDOUT' ||
    code === 'ENETUNREACH'
  );
}
