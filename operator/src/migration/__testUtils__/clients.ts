/* Application-side connections through the stable address. */
import Valkey from 'iovalkey';
import type { ConnectionOptions } from 'node:tls';
import { TEST_USERS } from './valkeyMembers';

/** A client the way an application holds one: reconnects, resends, follows READONLY. */
export function appClient(host: string, port: number, tls?: ConnectionOptions): Valkey {
  const client = new Valkey({
    host,
    port,
    tls,
    ...TEST_USERS.app,
    connectTimeout: 1000,
    // The app user may not run INFO (it is in @dangerous).
    enableReadyCheck: false,
    maxRetriesPerRequest: null,
    retryStrategy: () => 10,
    reconnectOnError: err => (/READONLY|LOADING|MASTERDOWN/.test(err.message) ? 2 : false),
  });
  client.on('error', () => {});
  return client;
}
