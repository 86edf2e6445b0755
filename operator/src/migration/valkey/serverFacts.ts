import type { ServerFacts } from '../../core/methodChoice';
import { ValkeyAccess, ValkeyAdmin, ValkeyEndpoint } from './ValkeyAdmin';

/** What `auto` reads from a live member: the server, its version, its clients, its dataset. */
export interface MeasuredServer extends ServerFacts {
  /** `used_memory_dataset` (or `used_memory` when the server does not report it). */
  datasetBytes: number;
}

/** Counts clients by `CLIENT LIST` flags: `P` subscribed (channels, patterns, shards), `b` blocked. */
export function countClientFlags(clientList: string): { pubsubClients: number; blockedClients: number } {
  let pubsubClients = 0;
  let blockedClients = 0;
  for (const line of clientList.split('\n')) {
    const flags = / flags=(\S*)/.exec(line)?.[1] ?? '';
    if (flags.includes('P')) pubsubClients++;
    if (flags.includes('b')) blockedClients++;
  }
  return { pubsubClients, blockedClients };
}

/** Reads a member's server, version, subscribed and blocked clients, and dataset size. */
export async function measureServer(endpoint: ValkeyEndpoint, access: ValkeyAccess): Promise<MeasuredServer> {
  return ValkeyAdmin.with(endpoint, access, async admin => {
    const server = await admin.info('server');
    const memory = await admin.info('memory');
    const clients = countClientFlags(String(await admin.call('CLIENT', 'LIST')));
    const valkey = server.valkey_version !== undefined || server.server_name === 'valkey';
    const [major, minor] = (server.valkey_version ?? server.redis_version ?? '0.0').split('.').map(Number);
    return {
      kind: valkey ? 'valkey' : 'redis',
      version: [major, minor],
      ...clients,
      datasetBytes: Number(memory.used_memory_dataset ?? memory.used_memory ?? 0),
    };
  });
}
