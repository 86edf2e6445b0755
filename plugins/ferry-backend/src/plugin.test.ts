import {
  createBackendModule,
  createServiceFactory,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import permissionBackend from '@backstage/plugin-permission-backend';
import SwaggerParser from '@apidevtools/swagger-parser';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import {
  AuthorizeResult,
  isPermission,
} from '@backstage/plugin-permission-common';
import {
  PolicyQuery,
  PolicyQueryUser,
} from '@backstage/plugin-permission-node';
import { policyExtensionPoint } from '@backstage/plugin-permission-node/alpha';
import { ferryPolicyReadPermission } from '@ferry/plugin-ferry-common';
import ferryDemoModule from '@ferry/plugin-ferry-backend-module-demo';
import request from 'supertest';
import {
  onBehalfOfAwareHttpAuthFactory,
  TEST_ENTITIES,
  testUserInfoFactory,
} from './__testUtils__/fixtures';
import { ferryPermissionPolicyModule } from './permissions/permissionPolicyModule';
import { ferryPlugin } from './plugin';
import {
  createFerryConditionalDecision,
  ferryConditions,
} from './permissions/rules';

jest.setTimeout(60_000);

const guest = mockCredentials.user.header('user:default/guest');
const dana = mockCredentials.user.header('user:default/dana');
const BASE = '/api/ferry';
const entity = (name: string) => `${BASE}/entities/component/default/${name}`;

async function startFerry(config: object, { demoModule = true } = {}) {
  return startTestBackend({
    features: [
      ferryPlugin,
      ...(demoModule ? [ferryDemoModule] : []),
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
            ...config,
          },
        },
      }),
    ],
  });
}

describe('ferry plugin in demo mode', () => {
  let server: Awaited<ReturnType<typeof startFerry>>['server'];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const backend = await startFerry({
      // No random reclaims: the test reclaims.
      demo: {
        enabled: true,
        seed: 7,
        speedup: 600,
        reclaimEveryMinutes: 1_000_000,
        historyDays: 0,
      },
    });
    server = backend.server;
    stop = () => backend.stop();
  });
  afterAll(async () => stop());

  it('reports health without a token', async () => {
    const res = await request(server).get(`${BASE}/health`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      mode: 'demo',
      clusters: [{ name: 'demo', reachable: true }],
    });
  });

  it('asks for a token everywhere else', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/status`)
      .set('Authorization', mockCredentials.none.header());
    expect(res.status).toBe(401);
  });

  it('serves the status of an entity opted in from its annotations', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/status`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      entityRef: 'component:default/session-store',
      workload: {
        cluster: 'demo',
        namespace: 'payments',
        kind: 'StatefulSet',
        name: 'session-store',
      },
      policy: {
        enabled: true,
        permanentRatio: 0.34,
        availabilityTarget: 0.999,
        migration: 'valkey',
      },
      policySource: 'catalog',
      availability: { target: 0.999 },
    });
    expect(res.body.replicas).toHaveLength(3);
    expect(Date.parse(res.body.updatedAt)).not.toBeNaN();
  });

  it('answers 304 when the client already holds the same status', async () => {
    const url = `${entity('session-store')}/status`;
    const first = await request(server).get(url).set('Authorization', guest);
    expect(first.headers.etag).toBeDefined();
    const again = await request(server)
      .get(url)
      .set('Authorization', guest)
      .set('If-None-Match', first.headers.etag);
    expect(again.status).toBe(304);
    expect(again.headers.etag).toBe(first.headers.etag);
  });

  it('says what is wrong with an unknown entity, one with no Kubernetes mapping, and one with no workload', async () => {
    const unknown = await request(server)
      .get(`${entity('no-such-thing')}/status`)
      .set('Authorization', guest);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(
      /No entity component:default\/no-such-thing in the catalog/,
    );

    const unmapped = await request(server)
      .get(`${entity('plain-service')}/status`)
      .set('Authorization', guest);
    expect(unmapped.status).toBe(404);
    expect(unmapped.body.error.message).toMatch(
      /has no Kubernetes mapping: add the backstage.io\/kubernetes-id annotation/,
    );

    const missing = await request(server)
      .get(`${entity('typo-store')}/status`)
      .set('Authorization', guest);
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toMatch(
      /No Deployment or StatefulSet labelled backstage.io\/kubernetes-id=typo-store/,
    );
  });

  it('reports malformed annotations in the policy view without failing it', async () => {
    const res = await request(server)
      .get(`${entity('typo-store')}/policy`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    expect(res.body.annotationErrors).toEqual([
      "ferry.dev/spot is 'yes'; use 'enabled' or 'disabled'",
      "ferry.dev/permanent-ratio is 'lots'; use a number from 0 to 1, the share of replicas kept on permanent nodes (e.g. '0.3')",
    ]);
    expect(res.body.canUpdate).toBe(false);
  });

  it('lets an owner change a policy and records who, when, from where, before and after', async () => {
    const res = await request(server)
      .put(`${entity('job-queue')}/policy`)
      .set('Authorization', guest)
      .send({ permanentRatio: 0.5, migration: 'valkey' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      policy: {
        enabled: true,
        permanentRatio: 0.5,
        availabilityTarget: 0.995,
        migration: 'valkey',
      },
      source: 'portal',
      canUpdate: true,
      overriddenAnnotations: [
        'ferry.dev/permanent-ratio',
        'ferry.dev/migration',
      ],
    });
    expect(res.body.history[0]).toMatchObject({
      source: 'portal',
      changedBy: 'user:default/guest',
      before: { permanentRatio: 0.3, migration: 'checkpoint' },
      after: { permanentRatio: 0.5, migration: 'valkey' },
    });
    expect(Date.parse(res.body.history[0].changedAt)).not.toBeNaN();

    // The catalog's unchanged annotations do not undo the portal's change.
    const again = await request(server)
      .get(`${entity('job-queue')}/policy`)
      .set('Authorization', guest);
    expect(again.body.policy.permanentRatio).toBe(0.5);
    const status = await request(server)
      .get(`${entity('job-queue')}/status`)
      .set('Authorization', guest);
    expect(status.body).toMatchObject({
      policy: { permanentRatio: 0.5 },
      policySource: 'portal',
    });
  });

  it('refuses a change from someone who does not own the entity, and keeps the policy', async () => {
    const before = await request(server)
      .get(`${entity('agent-memory')}/policy`)
      .set('Authorization', guest);
    expect(before.body).toMatchObject({
      canUpdate: false,
      policy: { enabled: false },
    });
    expect(before.body.readOnlyReason).toMatch(
      /Only the owners of component:default\/agent-memory \(group:default\/data-team\)/,
    );

    const denied = await request(server)
      .put(`${entity('agent-memory')}/policy`)
      .set('Authorization', guest)
      .send({ enabled: true });
    expect(denied.status).toBe(403);
    expect(denied.body.error.name).toBe('NotAllowedError');

    const after = await request(server)
      .get(`${entity('agent-memory')}/policy`)
      .set('Authorization', guest);
    expect(after.body.policy).toEqual(before.body.policy);

    const owner = await request(server)
      .put(`${entity('agent-memory')}/policy`)
      .set('Authorization', dana)
      .send({ enabled: true });
    expect(owner.status).toBe(200);
    expect(owner.body.policy.enabled).toBe(true);
    expect(owner.body.history[0]).toMatchObject({
      changedBy: 'user:default/dana',
      source: 'portal',
    });
  });

  it('rejects bad policy changes with a 400 that says what to fix, and loses nothing', async () => {
    const url = `${entity('session-store')}/policy`;
    const before = (await request(server).get(url).set('Authorization', guest))
      .body.policy;
    const cases: [object | string, RegExp][] = [
      [
        { permanentRatio: 1.5 },
        /^Invalid request: request body permanentRatio must be <= 1\. The contract is at/,
      ],
      [{ permanentRatio: -0.1 }, /permanentRatio must be >= 0/],
      [{ availabilityTarget: 0 }, /availabilityTarget must be > 0/],
      [
        { migration: 'teleport' },
        /migration must be equal to one of the allowed values/,
      ],
      [{ enabled: 'yes' }, /enabled must be boolean/],
      [{ replicas: 9 }, /must NOT have additional properties/],
      [{}, /must NOT have fewer than 1 properties/],
      ['{"enabled":', /JSON|Unexpected|Expected/],
    ];
    for (const [body, message] of cases) {
      const req = request(server)
        .put(url)
        .set('Authorization', guest)
        .set('Content-Type', 'application/json');
      const res = await req.send(
        typeof body === 'string' ? body : JSON.stringify(body),
      );
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(res.body.error.message).toMatch(message);
    }
    const huge = await request(server)
      .put(url)
      .set('Authorization', guest)
      .send({ migration: 'auto', padding: 'x'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.message).toMatch(/Ferry accepts at most 16384/);

    const after = (await request(server).get(url).set('Authorization', guest))
      .body.policy;
    expect(after).toEqual(before);
  });

  it('rejects bad query parameters', async () => {
    const bad = [
      `${entity('session-store')}/cost?from=yesterday`,
      `${entity(
        'session-store',
      )}/cost?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z`,
      `${entity(
        'session-store',
      )}/availability?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`,
      `${entity('session-store')}/availability?bucket=week`,
      `${entity('session-store')}/migrations?reason=boredom`,
      `${entity('session-store')}/migrations?limit=0`,
    ];
    for (const url of bad) {
      const res = await request(server).get(url).set('Authorization', guest);
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
      expect(res.body.error.name).toBe('InputError');
    }
  });

  it('answers 400 saying what a kind, namespace and name may hold to paths the catalog cannot parse', async () => {
    const paths = [
      `${BASE}/entities/%3Ax/default/x/status`,
      `${BASE}/entities/a%2Fb/default/x/status`,
      `${BASE}/entities/component/%2F/x/status`,
      `${BASE}/entities/component/default/%F0%9F%9A%80/policy`,
      `${BASE}/entities/component/default/a%00b/cost`,
      `${BASE}/entities/component/default/${'x'.repeat(64)}/status`,
      `${BASE}/entities/%3Ax/default/x/policy`,
    ];
    for (const path of paths) {
      for (const method of ['get', 'put'] as const) {
        if (method === 'put' && !path.endsWith('/policy')) continue;
        const res = await request(server)
          [method](path)
          .set('Authorization', guest)
          .send(method === 'put' ? { enabled: true } : undefined);
        expect({ path, method, status: res.status }).toEqual({
          path,
          method,
          status: 400,
        });
        expect(res.body.error.name).toBe('InputError');
        expect(res.body.error.message).toMatch(
          /path parameter (kind|namespace|name) .*(a letter, then letters and digits|letters and digits in groups|starting and ending with a letter or digit)/,
        );
        // Nothing internal: no URL of another service, no stack.
        expect(JSON.stringify(res.body)).not.toMatch(/https?:\/\/|\bat \S+ \(/);
      }
    }
  });

  it('reads times written as the contract shows them, and refuses ones that do not exist', async () => {
    for (const query of [
      'from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z',
      'from=2026-11-01&to=2026-11-03',
      'from=2026-11-01T00:00:00.5%2B01:00&to=2026-11-01T06:00Z',
    ]) {
      for (const series of ['cost', 'availability']) {
        const res = await request(server)
          .get(`${entity('session-store')}/${series}?${query}`)
          .set('Authorization', guest);
        expect({ query, series, status: res.status }).toEqual({
          query,
          series,
          status: 200,
        });
      }
    }
    const refused: [string, RegExp][] = [
      ['from=2026-12-01junk', /query parameter from is not one Ferry can read/],
      [
        'from=2026-02-30',
        /from is '2026-02-30', a day that 2026-02 does not have/,
      ],
      [
        'to=2026-11-01T24:00:00Z',
        /query parameter to is not one Ferry can read/,
      ],
      [
        'from=2026-11-01T00:00:00',
        /query parameter from is not one Ferry can read/,
      ],
      ['from=', /query parameter from is empty; leave it out/],
      ['to=', /query parameter to is empty/],
      ['bucket=', /query parameter bucket is empty/],
    ];
    for (const [query, message] of refused) {
      const res = await request(server)
        .get(`${entity('session-store')}/cost?${query}`)
        .set('Authorization', guest);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.body.error.message).toMatch(message);
    }
    // A cursor-shaped string that names no page is no page: 404.
    const unknownCursor = await request(server)
      .get(`${entity('session-store')}/migrations?cursor=not-a-cursor`)
      .set('Authorization', guest);
    expect(unknownCursor.status).toBe(404);
    expect(unknownCursor.body.error.message).toMatch(
      /cursor is not one this API gave out/,
    );
    for (const query of ['limit=', 'cursor=']) {
      const res = await request(server)
        .get(`${entity('session-store')}/migrations?${query}`)
        .set('Authorization', guest);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
      expect(res.body.error.message).toMatch(/is empty; leave it out/);
    }
  });

  it('serves a valid OpenAPI 3.0 contract to a signed-in caller', async () => {
    const anonymous = await request(server)
      .get(`${BASE}/openapi.json`)
      .set('Authorization', mockCredentials.none.header());
    expect(anonymous.status).toBe(401);
    const res = await request(server)
      .get(`${BASE}/openapi.json`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\.0\./);
    // Throws with every way the document breaks the OpenAPI 3.0 schema.
    await SwaggerParser.validate(structuredClone(res.body));
  });

  it('answers 413 to a body too large, with what the endpoint reads, and 405 to an undeclared method', async () => {
    const policy = await request(server)
      .put(`${entity('session-store')}/policy`)
      .set('Authorization', guest)
      .send({ migration: 'auto', padding: 'x'.repeat(20_000) });
    expect(policy.status).toBe(413);
    expect(policy.body.error.message).toMatch(
      /Ferry accepts at most 16384\. Send only the policy fields to change/,
    );
    const reclaim = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({ node: 'x'.repeat(20_000) });
    expect(reclaim.status).toBe(413);
    expect(reclaim.body.error.message).toMatch(/the node to reclaim/);
    expect(reclaim.body.error.message).not.toMatch(/policy/);

    for (const [method, path, allow] of [
      ['delete', `${entity('session-store')}/policy`, 'GET, PUT, HEAD'],
      ['post', `${entity('session-store')}/status`, 'GET, HEAD'],
      ['get', `${BASE}/demo/reclaim`, 'POST'],
      ['patch', `${BASE}/fleet`, 'GET, HEAD'],
    ] as const) {
      const res = await request(server)
        [method](path)
        .set('Authorization', guest);
      expect({ method, path, status: res.status }).toEqual({
        method,
        path,
        status: 405,
      });
      expect(res.headers.allow).toBe(allow);
      expect(res.body.error.message).toMatch(/is not an operation of/);
    }
  });

  it('reclaims a spot node in demo mode and shows the migrations it caused', async () => {
    // Replicas reach spot nodes as simulated time passes; until then there is nothing to reclaim (409).
    let res = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({});
    for (let i = 0; i < 60 && res.status === 409; i++) {
      await new Promise(resolve => setTimeout(resolve, 500));
      res = await request(server)
        .post(`${BASE}/demo/reclaim`)
        .set('Authorization', guest)
        .send({});
    }
    expect(`${res.status} ${res.body.error?.message ?? ''}`).toBe('200 ');
    expect(res.body.migrations.length).toBeGreaterThan(0);
    // The reclaim may also start other moves (the planner keeps the quorum); one leaves the node.
    const moved = res.body.migrations.find(
      (m: { sourceNode: string }) => m.sourceNode === res.body.node,
    );
    expect(moved).toMatchObject({ reason: 'notice', cluster: 'demo' });

    const name = moved.entityRef.split('/')[1];
    const page = await request(server)
      .get(`${entity(name)}/migrations?limit=100`)
      .set('Authorization', guest);
    expect(page.status).toBe(200);
    expect(page.body.items.map((m: { id: string }) => m.id)).toContain(
      moved.id,
    );
    const status = await request(server)
      .get(`${entity(name)}/status`)
      .set('Authorization', guest);
    expect(status.body.migrationsTotal).toBeGreaterThan(0);

    // The node now has a termination notice: naming it again starts nothing, so
    // 409 says so; once its replicas have left (the demo's clock runs a minute a
    // second, so on a busy machine that can come first), 404 says that instead.
    const again = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({ node: res.body.node });
    expect(`${again.status} ${again.body.error.message}`).toMatch(
      new RegExp(
        `^(409 ${res.body.node} is already being reclaimed|404 No spot node named ${res.body.node} runs Ferry-managed replicas)`,
      ),
    );
    // Without a node, a reclaim picks one that can still be reclaimed, or says why none can.
    const next = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({});
    expect(
      next.status === 200
        ? `200 ${
            next.body.node === res.body.node ? 'the same node' : 'another'
          }`
        : `${next.status} ${next.body.error.message}`,
    ).toMatch(/^(200 another|409 .*already being reclaimed)/);

    const unknown = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({ node: 'no-such-node' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(
      /No spot node named no-such-node/,
    );
  });

  it('serves cost and availability series and the fleet', async () => {
    const cost = await request(server)
      .get(`${entity('session-store')}/cost`)
      .set('Authorization', guest);
    expect(cost.status).toBe(200);
    expect(cost.body).toMatchObject({
      entityRef: 'component:default/session-store',
      bucket: 'hour',
    });
    expect(Array.isArray(cost.body.points)).toBe(true);

    const availability = await request(server)
      .get(`${entity('session-store')}/availability?bucket=day`)
      .set('Authorization', guest);
    expect(availability.status).toBe(200);
    expect(availability.body).toMatchObject({ bucket: 'day', target: 0.999 });

    const fleet = await request(server)
      .get(`${BASE}/fleet`)
      .set('Authorization', guest);
    expect(fleet.status).toBe(200);
    expect(
      fleet.body.services.map((s: { entityRef: string }) => s.entityRef),
    ).toEqual(
      expect.arrayContaining([
        'component:default/session-store',
        'component:default/job-queue',
      ]),
    );
    expect(fleet.body.totals.services).toBe(fleet.body.services.length);
    expect(fleet.body.riskiestPools.length).toBeGreaterThan(0);
  });
});

describe('ferry plugin without the demo module', () => {
  it('refuses to start in demo mode, naming the module to add', async () => {
    await expect(
      startFerry({ demo: { enabled: true } }, { demoModule: false }),
    ).rejects.toThrow(/@ferry\/plugin-ferry-backend-module-demo/);
  });

  it('runs with no cluster and no simulator', async () => {
    const backend = await startFerry({}, { demoModule: false });
    try {
      const res = await request(backend.server).get(`${BASE}/health`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        status: 'ok',
        mode: 'kubernetes',
        clusters: [],
      });
      const reclaim = await request(backend.server)
        .post(`${BASE}/demo/reclaim`)
        .set('authorization', guest)
        .send({});
      expect(reclaim.status).toBe(404);
    } finally {
      await backend.stop();
    }
  });
});

/** A policy under which only an entity's owners may read its Ferry data. */
const ownersReadModule = createBackendModule({
  pluginId: 'permission',
  moduleId: 'ferry-owners-read',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy }) {
        policy.setPolicy({
          async handle(query: PolicyQuery, user?: PolicyQueryUser) {
            if (
              user &&
              isPermission(query.permission, ferryPolicyReadPermission)
            ) {
              return createFerryConditionalDecision(
                query.permission,
                ferryConditions.isEntityOwner({
                  claims: user.info.ownershipEntityRefs,
                }),
              );
            }
            return { result: AuthorizeResult.ALLOW };
          },
        });
      },
    });
  },
});

const DEMO_CONFIG = {
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
};

describe('ferry plugin where only owners may read', () => {
  let server: Awaited<ReturnType<typeof startFerry>>['server'];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const backend = await startTestBackend({
      features: [
        ferryPlugin,
        ferryDemoModule,
        permissionBackend,
        ownersReadModule,
        catalogServiceMock.factory({ entities: TEST_ENTITIES }),
        testUserInfoFactory,
        onBehalfOfAwareHttpAuthFactory,
        mockServices.rootConfig.factory({
          data: { permission: { enabled: true }, ferry: DEMO_CONFIG },
        }),
      ],
    });
    server = backend.server;
    stop = () => backend.stop();
  });
  afterAll(async () => stop());

  it('lists in /fleet only the services whose entity the caller may read, with their totals', async () => {
    // dana (data-team) opts agent-memory in; guest (platform-team) owns session-store and job-queue.
    const optIn = await request(server)
      .put(`${entity('agent-memory')}/policy`)
      .set('Authorization', dana)
      .send({ enabled: true });
    expect(optIn.status).toBe(200);
    for (const name of ['session-store', 'job-queue']) {
      const status = await request(server)
        .get(`${entity(name)}/status`)
        .set('Authorization', guest);
      expect(status.status).toBe(200);
    }
    const refs = async (who: string) => {
      const res = await request(server)
        .get(`${BASE}/fleet`)
        .set('Authorization', who);
      expect(res.status).toBe(200);
      expect(res.body.totals.services).toBe(res.body.services.length);
      return res.body.services
        .map((s: { entityRef: string }) => s.entityRef)
        .sort();
    };
    expect(await refs(guest)).toEqual([
      'component:default/job-queue',
      'component:default/session-store',
    ]);
    expect(await refs(dana)).toEqual(['component:default/agent-memory']);
    const denied = await request(server)
      .get(`${entity('session-store')}/status`)
      .set('Authorization', dana);
    expect(denied.status).toBe(403);
  });
});

describe('ferry plugin when a catalog entity is removed', () => {
  let server: Awaited<ReturnType<typeof startFerry>>['server'];
  let stop: () => Promise<void>;
  // A catalog the test can remove an entity from while the backend runs.
  const catalog = catalogServiceMock({
    entities: TEST_ENTITIES.map(e => ({
      ...e,
      metadata: { ...e.metadata, uid: `uid-${e.metadata.name}` },
    })),
  });

  beforeAll(async () => {
    const backend = await startTestBackend({
      features: [
        ferryPlugin,
        ferryDemoModule,
        mockServices.permissions.factory({ result: AuthorizeResult.ALLOW }),
        createServiceFactory({
          service: catalogServiceRef,
          deps: {},
          factory: () => catalog,
        }),
        mockServices.rootConfig.factory({ data: { ferry: DEMO_CONFIG } }),
      ],
    });
    server = backend.server;
    stop = () => backend.stop();
  });
  afterAll(async () => stop());

  it('keeps its SpotPolicy and calls it orphaned in /fleet', async () => {
    const status = await request(server)
      .get(`${entity('job-queue')}/status`)
      .set('Authorization', guest);
    expect(status.status).toBe(200);
    const orphans = async () => {
      const res = await request(server)
        .get(`${BASE}/fleet`)
        .set('Authorization', guest);
      return res.body.services
        .filter((s: { orphaned?: boolean }) => s.orphaned)
        .map((s: { entityRef: string }) => s.entityRef);
    };
    expect(await orphans()).toEqual([]);

    await catalog.removeEntityByUid('uid-job-queue');
    // The fleet is rebuilt within RESPONSE_CACHE_MS.
    let seen: string[] = [];
    for (let i = 0; i < 40 && seen.length === 0; i++) {
      await new Promise(resolve => setTimeout(resolve, 500));
      seen = await orphans();
    }
    expect(seen).toEqual(['component:default/job-queue']);
    // The policy stays in force in the cluster, and its data stays readable.
    const kept = await request(server)
      .get(`${entity('job-queue')}/status`)
      .set('Authorization', guest);
    expect(kept.status).toBe(200);
    expect(kept.body.policy.enabled).toBe(true);
  });
});

describe('ferry plugin with a cluster that is down', () => {
  let server: Awaited<ReturnType<typeof startFerry>>['server'];
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const backend = await startTestBackend({
      features: [
        ferryPlugin,
        catalogServiceMock.factory({ entities: TEST_ENTITIES }),
        mockServices.permissions.factory({ result: 'ALLOW' as any }),
        mockServices.rootConfig.factory({
          data: {
            kubernetes: {
              clusterLocatorMethods: [
                {
                  type: 'config',
                  clusters: [
                    {
                      name: 'prod',
                      url: 'https://127.0.0.1:9',
                      skipTLSVerify: true,
                      authProvider: 'serviceAccount',
                      serviceAccountToken: 't',
                    },
                  ],
                },
              ],
            },
            ferry: {
              catalogSync: {
                schedule: { frequency: { hours: 24 }, timeout: { minutes: 1 } },
              },
              ingestion: {
                schedule: { frequency: { hours: 24 }, timeout: { minutes: 1 } },
              },
            },
          },
        }),
      ],
    });
    server = backend.server;
    stop = () => backend.stop();
  });
  afterAll(async () => stop());

  it('is not in demo mode, so the demo reclaim is a 404', async () => {
    const health = await request(server).get(`${BASE}/health`);
    expect(health.body.mode).toBe('kubernetes');
    const res = await request(server)
      .post(`${BASE}/demo/reclaim`)
      .set('Authorization', guest)
      .send({});
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/not in demo mode/);
  });

  it('answers 503 with what to do when the cluster does not answer', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/status`)
      .set('Authorization', guest);
    expect(
      `${res.status} ${res.body.error?.name}: ${res.body.error?.message}`,
    ).toMatch(/^503 ServiceUnavailableError/);
    expect(res.body.error.message).toMatch(
      /cluster prod did not answer.*try again/i,
    );
    const health = await request(server).get(`${BASE}/health`);
    expect(health.body.clusters).toEqual([
      expect.objectContaining({ name: 'prod', reachable: false }),
    ]);
  });
});

describe('ferry plugin in demo mode with the replayed month', () => {
  const DAY = 24 * 3_600_000;
  let server: Awaited<ReturnType<typeof startFerry>>['server'];
  let stop: () => Promise<void>;
  let startedAt: number;
  const range = () =>
    `from=${new Date(startedAt - 31 * DAY).toISOString()}&to=${new Date(
      startedAt + DAY,
    ).toISOString()}&bucket=day`;

  beforeAll(async () => {
    startedAt = Date.now();
    // The portal's demo as `npm start` runs it, without the random reclaims.
    const backend = await startFerry({
      demo: {
        enabled: true,
        seed: 14,
        historyDays: 30,
        reclaimEveryMinutes: 1_000_000,
      },
    });
    server = backend.server;
    stop = () => backend.stop();
  }, 180_000);
  afterAll(async () => stop());

  it('serves a month of cost, less than the same replicas on demand', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/cost?${range()}`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    const times: number[] = res.body.points.map((p: { time: string }) =>
      Date.parse(p.time),
    );
    // A point a day for thirty days, the first a month before the start.
    expect(times.length).toBeGreaterThanOrEqual(30);
    expect(Math.min(...times)).toBeLessThanOrEqual(startedAt - 29 * DAY);
    expect(res.body.savingsUsd).toBeGreaterThan(0);
    expect(res.body.totalUsd).toBeLessThan(res.body.onDemandUsd);
  });

  it('lists the reclaims Ferry moved through that month', async () => {
    const res = await request(server)
      .get(
        `${entity(
          'session-store',
        )}/migrations?reason=notice&outcome=succeeded&limit=100`,
      )
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    expect(res.body.totalCount).toBeGreaterThan(10);
    const started: number[] = res.body.items.map((m: { startedAt: string }) =>
      Date.parse(m.startedAt),
    );
    expect(Math.min(...started)).toBeGreaterThanOrEqual(startedAt - 31 * DAY);
    expect(Math.max(...started)).toBeLessThanOrEqual(Date.now() + DAY);
  });

  it('shows the moment of risk that month and an error budget kept', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/availability?${range()}`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    expect(res.body.points.length).toBeGreaterThanOrEqual(30);
    expect(res.body.atRisk).toEqual([
      expect.objectContaining({ readyMembers: 2, requiredMembers: 2 }),
    ]);
    expect(res.body.observed).toBe(1);
    expect(res.body.errorBudgetRemaining).toBe(1);
  });

  it('records the catalog sync opting the service in when the month began', async () => {
    const res = await request(server)
      .get(`${entity('session-store')}/policy`)
      .set('Authorization', guest);
    expect(res.status).toBe(200);
    const created = res.body.history[res.body.history.length - 1];
    expect(created).toMatchObject({
      source: 'catalog',
      changedBy: 'plugin:ferry/catalog-sync',
      after: { enabled: true, permanentRatio: 0.3 },
    });
    expect(created.before).toBeUndefined();
    expect(
      Math.abs(Date.parse(created.changedAt) - (startedAt - 30 * DAY)),
    ).toBeLessThan(DAY);
  });
});
