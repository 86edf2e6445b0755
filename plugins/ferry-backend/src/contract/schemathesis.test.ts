import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import permissionBackend from '@backstage/plugin-permission-backend';
import ferryDemoModule from '@ferry/plugin-ferry-backend-module-demo';
import { spawn } from 'node:child_process';
import { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  onBehalfOfAwareHttpAuthFactory,
  TEST_ENTITIES,
  testUserInfoFactory,
} from '../__testUtils__/fixtures';
import { ferryPermissionPolicyModule } from '../permissions/permissionPolicyModule';
import { ferryPlugin } from '../plugin';

// Schemathesis against the contract the running backend serves, with its default
// checks: no 5xx, every answer as the contract says, bad input refused, good
// input accepted (a range's rules aside, see schemathesis.toml), undeclared
// methods 405. The `st` command comes from
// scripts/lib/schemathesis.sh (FERRY_SCHEMATHESIS), which `npm test` sets.

/** Examples per operation and phase: enough to find the edge, bounded in time. */
const MAX_EXAMPLES = 15;
/** How long the whole run may take on a loaded two-core machine. */
const RUN_TIMEOUT_MS = 240_000;

const st = process.env.FERRY_SCHEMATHESIS;
if (!st && process.env.CI) {
  throw new Error(
    'FERRY_SCHEMATHESIS is not set: run `source scripts/lib/schemathesis.sh && export FERRY_SCHEMATHESIS=$(ferry_schemathesis)` first (npm test does)',
  );
}
const describeWithSchemathesis = st ? describe : describe.skip;

jest.setTimeout(RUN_TIMEOUT_MS + 60_000);

describeWithSchemathesis('the served contract under schemathesis', () => {
  let backend: Awaited<ReturnType<typeof startTestBackend>>;

  beforeAll(async () => {
    backend = await startTestBackend({
      features: [
        ferryPlugin,
        ferryDemoModule,
        permissionBackend,
        ferryPermissionPolicyModule,
        catalogServiceMock.factory({ entities: TEST_ENTITIES }),
        testUserInfoFactory,
        onBehalfOfAwareHttpAuthFactory,
        mockServices.rootConfig.factory({
          data: {
            permission: { enabled: true },
            ferry: {
              catalogSync: {
                schedule: { frequency: { hours: 24 }, timeout: { minutes: 1 } },
              },
              ingestion: {
                schedule: { frequency: { hours: 24 }, timeout: { minutes: 1 } },
              },
              demo: {
                enabled: true,
                seed: 7,
                speedup: 600,
                reclaimEveryMinutes: 1_000_000,
                historyDays: 0,
              },
            },
          },
        }),
      ],
    });
  });
  afterAll(async () => backend?.stop());

  it('finds no server error and no answer that breaks the contract', async () => {
    const { port } = backend.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    const args = [
      '--config-file',
      path.join(__dirname, 'schemathesis.toml'),
      'run',
      `${base}/api/ferry/openapi.json`,
      '--url',
      base,
      '--header',
      `Authorization: ${mockCredentials.user.header('user:default/guest')}`,
      '--max-examples',
      String(MAX_EXAMPLES),
      '--workers',
      '1',
      '--seed',
      '17',
      '--no-color',
    ];
    const { code, output } = await new Promise<{
      code: number | null;
      output: string;
    }>((resolve, reject) => {
      const child = spawn(st!, args, {
        env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' },
      });
      let text = '';
      child.stdout.on('data', chunk => (text += chunk));
      child.stderr.on('data', chunk => (text += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      child.on('error', reject);
      child.on('close', exit => {
        clearTimeout(timer);
        resolve({ code: exit, output: text });
      });
    });
    // The whole report on failure: which check, which request, how to replay it.
    expect(`exit ${code}\n${output}`).toMatch(/^exit 0\n/);
  });
});
