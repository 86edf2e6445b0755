/* A throw-away certificate authority and server certificate for TLS tests (openssl CLI). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The name every test member's certificate carries; clients verify against it. */
export const TLS_SERVER_NAME = 'valkey.ferry.test';

/** Files for redis-server and PEM text for clients. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  remove(): void;
}

/** Creates a CA and a server certificate for {@link TLS_SERVER_NAME}, valid for a day. */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ferry-test-ca',
    '-keyout', f('ca.key'), '-out', f('ca.crt'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${TLS_SERVER_NAME}`,
    '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('server.ext'), `subjectAltName=DNS:${TLS_SERVER_NAME}\n`);
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-days', '1', '-out', f('server.crt'), '-extfile', f('server.ext'));
  return {
    dir,
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    ca: readFileSync(f('ca.crt'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
