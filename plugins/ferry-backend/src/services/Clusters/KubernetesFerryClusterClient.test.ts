import { mockServices } from '@backstage/backend-test-utils';
import { SpotPolicySpec } from '@ferry/plugin-ferry-node';
import http from 'node:http';
import net, { AddressInfo } from 'node:net';
import { KubernetesFerryClusterClient } from './KubernetesFerryClusterClient';

/** A few routes of a Kubernetes API server, enough for what the portal asks. */
function fakeApiServer() {
  const policies = new Map<string, any>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', chunk => (body += chunk));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const p = url.pathname;
      if (p === '/apis/apps/v1/namespaces/payments/statefulsets') {
        return send(200, {
          items:
            url.searchParams.get('labelSelector') ===
            'backstage.io/kubernetes-id=session-store'
              ? [
                  {
                    metadata: {
                      name: 'session-store',
                      namespace: 'payments',
                      labels: { 'backstage.io/kubernetes-id': 'session-store' },
                    },
                    spec: { replicas: 3 },
                    status: { readyReplicas: 2 },
                  },
                ]
              : [],
        });
      }
      if (p === '/apis/apps/v1/namespaces/payments/deployments')
        return send(200, { items: [] });
      const single =
        /^\/apis\/ferry\.dev\/v1alpha1\/namespaces\/([^/]+)\/spotpolicies\/([^/]+)$/.exec(
          p,
        );
      if (single && req.method === 'GET') {
        const policy = policies.get(`${single[1]}/${single[2]}`);
        return policy
          ? send(200, policy)
          : send(404, { kind: 'Status', code: 404, reason: 'NotFound' });
      }
      /** Answers 422, as the CRD's schema makes the API server do, and says whether it did. */
      const invalid = (policy: any) => {
        if (!(policy.spec.permanentRatio > 1)) return false;
        send(422, {
          kind: 'Status',
          code: 422,
          reason: 'Invalid',
          message: `SpotPolicy.ferry.dev "${policy.metadata.name}" is invalid: spec.permanentRatio: Invalid value: ${policy.spec.permanentRatio}: spec.permanentRatio in body should be less than or equal to 1`,
        });
        return true;
      };
      if (single && req.method === 'PUT') {
        const policy = JSON.parse(body);
        if (invalid(policy)) return undefined;
        const stored = policies.get(`${single[1]}/${single[2]}`);
        if (
          stored?.metadata.resourceVersion !== policy.metadata.resourceVersion
        ) {
          return send(409, {
            kind: 'Status',
            code: 409,
            reason: 'Conflict',
            message: `Operation cannot be fulfilled on spotpolicies.ferry.dev "${single[2]}": the object has been modified; please apply your changes to the latest version and try again`,
          });
        }
        policies.set(`${single[1]}/${single[2]}`, policy);
        return send(200, policy);
      }
      if (
        /^\/apis\/ferry\.dev\/v1alpha1\/namespaces\/[^/]+\/spotpolicies$/.test(
          p,
        ) &&
        req.method === 'POST'
      ) {
        const policy = JSON.parse(body);
        if (invalid(policy)) return undefined;
        policy.metadata.resourceVersion = '1';
        policies.set(
          `${policy.metadata.namespace}/${policy.metadata.name}`,
          policy,
        );
        return send(201, policy);
      }
      if (p === '/apis/ferry.dev/v1alpha1/namespaces/vault/migrations') {
        return send(403, {
          kind: 'Status',
          code: 403,
          reason: 'Forbidden',
          message:
            'migrations.ferry.dev is forbidden: User "system:serviceaccount:backstage:ferry-portal" cannot list resource "migrations" in API group "ferry.dev" in the namespace "vault"',
        });
      }
      if (p === '/apis/ferry.dev/v1alpha1/spotpolicies')
        return send(200, { items: [...policies.values()] });
      if (p === '/apis/ferry.dev/v1alpha1/migrations') {
        return send(200, {
          items: [
            {
              metadata: {
                name: 'm1',
                namespace: 'payments',
                creationTimestamp: '2026-11-01T00:00:00Z',
              },
              spec: {
                workloadRef: { kind: 'StatefulSet', name: 'session-store' },
              },
            },
            {
              metadata: {
                name: 'm0',
                namespace: 'payments',
                creationTimestamp: '2025-01-01T00:00:00Z',
              },
              spec: {
                workloadRef: { kind: 'StatefulSet', name: 'session-store' },
              },
            },
          ],
        });
      }
      return send(500, { message: `unexpected ${req.method} ${p}` });
    });
  });
  return { server, requests, policies };
}

describe('KubernetesFerryClusterClient', () => {
  const api = fakeApiServer();
  let client: KubernetesFerryClusterClient;

  beforeAll(async () => {
    await new Promise<void>(resolve =>
      api.server.listen(0, '127.0.0.1', resolve),
    );
    const { port } = api.server.address() as AddressInfo;
    client = new KubernetesFerryClusterClient(
      {
        name: 'test',
        url: `http://127.0.0.1:${port}`,
        skipTLSVerify: true,
        serviceAccountToken: 'token',
      },
      mockServices.logger.mock(),
    );
  });
  afterAll(() => new Promise(resolve => api.server.close(resolve)));

  it('finds workloads by label in a namespace', async () => {
    expect(
      await client.listWorkloads({
        namespace: 'payments',
        labelSelector: { 'backstage.io/kubernetes-id': 'session-store' },
      }),
    ).toEqual([
      {
        kind: 'StatefulSet',
        namespace: 'payments',
        name: 'session-store',
        labels: { 'backstage.io/kubernetes-id': 'session-store' },
        replicas: 3,
        readyReplicas: 2,
      },
    ]);
  });

  it('creates a SpotPolicy, then replaces its spec keeping its metadata', async () => {
    const spec: SpotPolicySpec = {
      workloadRef: { kind: 'StatefulSet', name: 'session-store' },
      enabled: true,
      permanentRatio: 0.34,
      availabilityTarget: 0.999,
      migration: 'valkey',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    };
    expect(
      await client.getSpotPolicy('payments', 'session-store'),
    ).toBeUndefined();
    await client.applySpotPolicy('payments', 'session-store', spec, {
      'ferry.dev/entity-ref': 'component:default/session-store',
    });
    const updated = await client.applySpotPolicy(
      'payments',
      'session-store',
      { ...spec, permanentRatio: 0.5 },
      { 'ferry.dev/policy-source': 'portal' },
    );
    expect(updated.spec.permanentRatio).toBe(0.5);
    expect(updated.metadata).toMatchObject({
      resourceVersion: '1',
      annotations: {
        'ferry.dev/entity-ref': 'component:default/session-store',
        'ferry.dev/policy-source': 'portal',
      },
    });
    expect(api.requests.filter(r => !r.startsWith('GET'))).toEqual([
      'POST /apis/ferry.dev/v1alpha1/namespaces/payments/spotpolicies?fieldManager=ferry-backend',
      'PUT /apis/ferry.dev/v1alpha1/namespaces/payments/spotpolicies/session-store?fieldManager=ferry-backend',
    ]);
    expect(await client.listSpotPolicies()).toHaveLength(1);
  });

  it('lists migrations since a time', async () => {
    const migrations = await client.listMigrations({
      since: '2026-01-01T00:00:00Z',
    });
    expect(migrations.map(m => m.metadata.name)).toEqual(['m1']);
  });

  describe('refusals of the API server', () => {
    const spec: SpotPolicySpec = {
      workloadRef: { kind: 'StatefulSet', name: 'orders-db' },
      enabled: true,
      permanentRatio: 0.34,
      availabilityTarget: 0.999,
      migration: 'auto',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    };

    it('are InputErrors with the API server’s sentence when it finds the spec invalid', async () => {
      await expect(
        client.applySpotPolicy('payments', 'orders-db', {
          ...spec,
          permanentRatio: 1.5,
        }),
      ).rejects.toMatchObject({
        name: 'InputError',
        message:
          'The cluster test refused SpotPolicy payments/orders-db: SpotPolicy.ferry.dev "orders-db" is invalid: spec.permanentRatio: Invalid value: 1.5: spec.permanentRatio in body should be less than or equal to 1',
      });
    });

    it('are ConflictErrors when the policy changed since it was read', async () => {
      await client.applySpotPolicy('payments', 'orders-db', spec);
      const stale = await client.getSpotPolicy('payments', 'orders-db');
      api.policies.get('payments/orders-db').metadata.resourceVersion = '2';
      const read = jest
        .spyOn(client, 'getSpotPolicy')
        .mockResolvedValueOnce(stale);
      await expect(
        client.applySpotPolicy('payments', 'orders-db', {
          ...spec,
          permanentRatio: 0.5,
        }),
      ).rejects.toMatchObject({
        name: 'ConflictError',
        message: expect.stringContaining(
          'SpotPolicy payments/orders-db changed in the cluster test while Ferry was writing it (Operation cannot be fulfilled',
        ),
      });
      read.mockRestore();
    });

    it('name what was refused when the portal lacks the rights', async () => {
      await expect(
        client.listMigrations({ namespace: 'vault' }),
      ).rejects.toThrow(
        'The cluster test answered 403 to the Migrations: migrations.ferry.dev is forbidden',
      );
    });

    it('leave 5xx answers as they are, for ClusterRegistry to answer 503', async () => {
      await expect(
        client.listWorkloads({
          namespace: 'nowhere',
          labelSelector: { app: 'x' },
        }),
      ).rejects.toMatchObject({ code: 500 });
    });
  });

  it('gives up on a cluster that accepts connections and never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer(socket => sockets.push(socket));
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const frozen = new KubernetesFerryClusterClient(
      {
        name: 'frozen',
        url: `http://127.0.0.1:${port}`,
        skipTLSVerify: true,
        serviceAccountToken: 'token',
      },
      mockServices.logger.mock(),
      { requestTimeoutMs: 200 },
    );
    try {
      await expect(frozen.listMigrations()).rejects.toMatchObject({
        name: 'ClusterUnavailableError',
        message: 'no answer to the Migrations within 200 ms',
      });
    } finally {
      sockets.forEach(socket => socket.destroy());
      await new Promise(resolve => silent.close(resolve));
    }
  });
});
