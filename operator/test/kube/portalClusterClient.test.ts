/* eslint-disable @backstage/no-relative-monorepo-imports -- the operator cannot
   depend on the portal backend (which depends on it); this suite tests the
   backend's cluster client on the operator's local control plane. */
import fs from 'node:fs';
import path from 'node:path';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
} from '@kubernetes/client-node';
import {
  FERRY_API_VERSION,
  FERRY_GROUP,
  FERRY_VERSION,
  SpotPolicySpec,
} from '../../src/api/v1alpha1';
import type { KubernetesClusterConfig } from '../../../plugins/ferry-backend/src/config';
import { ClusterRegistry } from '../../../plugins/ferry-backend/src/services/Clusters/ClusterRegistry';
import { KubernetesFerryClusterClient } from '../../../plugins/ferry-backend/src/services/Clusters/KubernetesFerryClusterClient';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { portalToken, silentLogger } from './portalAccess';

// The portal backend's Kubernetes client (plugins/ferry-backend) against a real API
// server, with a least-privilege service account as app-config would give it.

jest.setTimeout(60_000);

const NAMESPACE = 'payments';
const KUBERNETES_ID = 'backstage.io/kubernetes-id';
const spec: SpotPolicySpec = {
  workloadRef: { kind: 'StatefulSet', name: 'session-store' },
  enabled: true,
  permanentRatio: 0.34,
  availabilityTarget: 0.999,
  migration: 'valkey',
  maxConcurrentMoves: 1,
  predictionHorizonMinutes: 20,
};

function labelledStatefulSet(name: string, kubernetesId: string) {
  const labels = { app: name, [KUBERNETES_ID]: kubernetesId };
  return {
    metadata: { name, namespace: NAMESPACE, labels },
    spec: {
      replicas: 3,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'valkey', image: 'valkey/valkey:8' }] },
      },
    },
  };
}

/** A request timeout short enough for a test, long enough for a busy machine's answers. */
const FROZEN_TIMEOUT_MS = 2_000;

/** The pid of this cluster's kube-apiserver, found by the certificate directory only it was given. */
function apiServerPid(workDir: string): number {
  const flag = `--cert-dir=${workDir}/apiserver-certs`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs
        .readFileSync(`/proc/${entry}/cmdline`, 'utf8')
        .split('\0');
      if (args.includes(flag)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  throw new Error(`no kube-apiserver with ${flag}`);
}

/** What the client threw, so a test can look at it. */
async function failure(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail, and it succeeded');
}

describe('the portal backend’s cluster client on a real API server', () => {
  let cluster: LocalControlPlane;
  let objects: CustomObjectsApi;
  let client: KubernetesFerryClusterClient;
  let clusterConfig: KubernetesClusterConfig;

  const readPolicy = (name: string) =>
    objects.getNamespacedCustomObject({
      group: FERRY_GROUP,
      version: FERRY_VERSION,
      namespace: NAMESPACE,
      plural: 'spotpolicies',
      name,
    });

  beforeAll(async () => {
    cluster = await LocalControlPlane.start({
      controllerManager: false,
      scheduler: false,
      kwok: false,
    });
    const kc = cluster.kubeConfig();
    await installFerryCrds(kc);
    await kc
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const apps = kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: labelledStatefulSet('session-store', 'session-store'),
    });
    await apps.createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: labelledStatefulSet('session-store-canary', 'session-store-canary'),
    });
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: {
          name: 'checkout',
          namespace: NAMESPACE,
          labels: { [KUBERNETES_ID]: 'checkout' },
        },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'checkout' } },
          template: {
            metadata: { labels: { app: 'checkout' } },
            spec: { containers: [{ name: 'app', image: 'checkout:1' }] },
          },
        },
      },
    });
    objects = kc.makeApiClient(CustomObjectsApi);

    // As readFerryConfig reads a cluster of kubernetes.clusterLocatorMethods:
    // caData is the base64 of the CA's PEM, as in a kubeconfig.
    clusterConfig = {
      name: 'local',
      url: cluster.server,
      serviceAccountToken: await portalToken(kc),
      skipTLSVerify: false,
      caData: Buffer.from(cluster.caPem).toString('base64'),
    };
    client = new KubernetesFerryClusterClient(clusterConfig, silentLogger);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('finds a workload by its kubernetes-id label, and not the others', async () => {
    const found = await client.listWorkloads({
      labelSelector: { [KUBERNETES_ID]: 'session-store' },
    });
    expect(found).toEqual([
      {
        kind: 'StatefulSet',
        namespace: NAMESPACE,
        name: 'session-store',
        labels: { app: 'session-store', [KUBERNETES_ID]: 'session-store' },
        replicas: 3,
        readyReplicas: 0,
      },
    ]);
    expect(
      await client.listWorkloads({
        namespace: NAMESPACE,
        labelSelector: { [KUBERNETES_ID]: 'checkout' },
      }),
    ).toEqual([
      expect.objectContaining({ kind: 'Deployment', name: 'checkout' }),
    ]);
    expect(
      await client.listWorkloads({
        namespace: 'elsewhere',
        labelSelector: { [KUBERNETES_ID]: 'session-store' },
      }),
    ).toEqual([]);
  });

  it('creates a SpotPolicy that the API server validated and stored', async () => {
    expect(
      await client.getSpotPolicy(NAMESPACE, 'session-store'),
    ).toBeUndefined();
    const written = await client.applySpotPolicy(
      NAMESPACE,
      'session-store',
      spec,
      { 'ferry.dev/entity-ref': 'component:default/session-store' },
    );
    expect(written.metadata.resourceVersion).toBeTruthy();

    const stored = await readPolicy('session-store');
    expect(stored).toMatchObject({
      apiVersion: FERRY_API_VERSION,
      kind: 'SpotPolicy',
      metadata: {
        uid: written.metadata.uid,
        annotations: {
          'ferry.dev/entity-ref': 'component:default/session-store',
        },
        managedFields: [expect.objectContaining({ manager: 'ferry-backend' })],
      },
      spec,
    });
    expect(await client.listSpotPolicies()).toEqual([
      expect.objectContaining({ spec }),
    ]);
    expect(await client.listSpotPolicies('elsewhere')).toEqual([]);
  });

  it('updates the spec of an existing policy and keeps the operator’s status', async () => {
    const status = {
      observedGeneration: 1,
      replicas: [],
      cost: {
        hourlyCostUsd: 0.07,
        onDemandHourlyCostUsd: 0.144,
        spendToDateUsd: 1.2,
        savingsToDateUsd: 2.5,
      },
      migrationsTotal: 4,
      conditions: [],
    };
    // The operator writes status through the subresource, as it does in a cluster.
    await objects.patchNamespacedCustomObjectStatus({
      group: FERRY_GROUP,
      version: FERRY_VERSION,
      namespace: NAMESPACE,
      plural: 'spotpolicies',
      name: 'session-store',
      body: [{ op: 'add', path: '/status', value: status }],
    });
    const before = await readPolicy('session-store');

    const updated = await client.applySpotPolicy(
      NAMESPACE,
      'session-store',
      { ...spec, permanentRatio: 0.5, migration: 'checkpoint' },
      { 'ferry.dev/policy-source': 'portal' },
    );
    expect(updated.spec).toMatchObject({
      permanentRatio: 0.5,
      migration: 'checkpoint',
    });

    const after = await readPolicy('session-store');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    expect(after.spec).toEqual({
      ...spec,
      permanentRatio: 0.5,
      migration: 'checkpoint',
    });
    expect(after.status).toEqual(status);
    expect(after.metadata.annotations).toEqual({
      'ferry.dev/entity-ref': 'component:default/session-store',
      'ferry.dev/policy-source': 'portal',
    });
  });

  it('surfaces the API server’s refusal of an invalid spec', async () => {
    const error = await failure(() =>
      client.applySpotPolicy(NAMESPACE, 'session-store', {
        ...spec,
        permanentRatio: 1.5,
      }),
    );
    // An InputError (400) with the API server's own sentence, not client-node's
    // dump of the HTTP exchange.
    expect(error.name).toBe('InputError');
    expect(error.message).toBe(
      'The cluster local refused SpotPolicy payments/session-store: ' +
        'SpotPolicy.ferry.dev "session-store" is invalid: spec.permanentRatio: ' +
        'Invalid value: 1.5: spec.permanentRatio in body should be less than or equal to 1',
    );
    // A new policy is refused the same way, and nothing is created.
    const created = await failure(() =>
      client.applySpotPolicy(NAMESPACE, 'refused', {
        ...spec,
        permanentRatio: 1.5,
      }),
    );
    expect(created.name).toBe('InputError');
    expect(created.message).toContain('spec.permanentRatio');
    expect(await client.getSpotPolicy(NAMESPACE, 'refused')).toBeUndefined();
    expect((await readPolicy('session-store')).spec.permanentRatio).toBe(0.5);
  });

  it('does not overwrite a change made since it read the policy', async () => {
    const stale = await client.getSpotPolicy(NAMESPACE, 'session-store');
    // Another writer (the catalog sync of another portal replica) gets there first.
    await client.applySpotPolicy(NAMESPACE, 'session-store', {
      ...spec,
      permanentRatio: 0.6,
      migration: 'checkpoint',
    });
    const read = jest
      .spyOn(client, 'getSpotPolicy')
      .mockResolvedValueOnce(stale);
    const error = await failure(() =>
      client.applySpotPolicy(NAMESPACE, 'session-store', {
        ...spec,
        permanentRatio: 0.2,
      }),
    );
    read.mockRestore();
    expect(error.name).toBe('ConflictError');
    expect(error.message).toContain(
      'SpotPolicy payments/session-store changed in the cluster local while Ferry was writing it',
    );
    expect(error.message).toContain('the object has been modified');
    expect((await readPolicy('session-store')).spec.permanentRatio).toBe(0.6);
  });

  it('lists a Migration created in the cluster', async () => {
    await objects.createNamespacedCustomObject({
      group: FERRY_GROUP,
      version: FERRY_VERSION,
      namespace: NAMESPACE,
      plural: 'migrations',
      body: {
        apiVersion: FERRY_API_VERSION,
        kind: 'Migration',
        metadata: { name: 'session-store-1-notice', namespace: NAMESPACE },
        spec: {
          workloadRef: { kind: 'StatefulSet', name: 'session-store' },
          pod: 'session-store-1',
          sourceNode: 'spot-m5-large-us-east-1a',
          reason: 'notice',
          driver: 'valkey',
        },
      },
    });
    const all = await client.listMigrations();
    expect(all.map(m => m.metadata.name)).toEqual(['session-store-1-notice']);
    expect(all[0].spec.workloadRef.name).toBe('session-store');
    expect(
      (
        await client.listMigrations({
          namespace: NAMESPACE,
          workloadName: 'session-store',
          since: '2000-01-01T00:00:00Z',
        })
      ).map(m => m.metadata.name),
    ).toEqual(['session-store-1-notice']);
    expect(await client.listMigrations({ workloadName: 'checkout' })).toEqual(
      [],
    );
  });

  it('trusts the CA from caFile too, and names a token the API server does not accept', async () => {
    const caFile = path.join(cluster.workDir, 'portal-ca.crt');
    fs.writeFileSync(caFile, cluster.caPem);
    const { caData, ...withoutCaData } = clusterConfig;
    expect(caData).toBeTruthy();
    const fromFile = new KubernetesFerryClusterClient(
      { ...withoutCaData, caFile },
      silentLogger,
    );
    expect(await fromFile.listSpotPolicies(NAMESPACE)).toHaveLength(1);

    const badToken = new KubernetesFerryClusterClient(
      { ...clusterConfig, serviceAccountToken: 'not-a-token' },
      silentLogger,
    );
    const error = await failure(() => badToken.listSpotPolicies());
    expect(error.message).toBe(
      "The cluster local did not accept Ferry's service account token (serviceAccountToken in kubernetes.clusterLocatorMethods) for the SpotPolicies: Unauthorized",
    );
  });

  it('calls a frozen API server unavailable after the request timeout, and answers again once it thaws', async () => {
    const apiServer = apiServerPid(cluster.workDir);
    const registry = new ClusterRegistry([
      {
        name: 'local',
        client: new KubernetesFerryClusterClient(clusterConfig, silentLogger, {
          requestTimeoutMs: FROZEN_TIMEOUT_MS,
        }),
      },
    ]);
    const list = () =>
      registry.call(registry.list()[0], c =>
        c.listWorkloads({
          labelSelector: { [KUBERNETES_ID]: 'session-store' },
        }),
      );
    // The kernel still accepts connections for a stopped process; nothing answers.
    process.kill(apiServer, 'SIGSTOP');
    let error: Error;
    const started = Date.now();
    try {
      error = await failure(list);
    } finally {
      process.kill(apiServer, 'SIGCONT');
    }
    expect(Date.now() - started).toBeLessThan(FROZEN_TIMEOUT_MS * 5);
    expect(error.name).toBe('ServiceUnavailableError');
    expect(error.message).toContain(
      `Cluster local did not answer: no answer to the workloads labelled ${KUBERNETES_ID}=session-store within ${FROZEN_TIMEOUT_MS} ms`,
    );
    expect(registry.reachabilityOf()[0].reachable).toBe(false);

    expect(await list()).toHaveLength(1);
    expect(registry.reachabilityOf()[0].reachable).toBe(true);
  });

  it('fails with the error the backend answers 503 with once the API server is gone', async () => {
    const registry = new ClusterRegistry([{ name: 'local', client }]);
    await cluster.stop();
    const error = await failure(() =>
      registry.call(registry.list()[0], c =>
        c.listWorkloads({
          labelSelector: { [KUBERNETES_ID]: 'session-store' },
        }),
      ),
    );
    expect(error.name).toBe('ServiceUnavailableError');
    expect(error.message).toContain('Cluster local did not answer');
    expect(registry.reachabilityOf()).toEqual([
      expect.objectContaining({ name: 'local', reachable: false }),
    ]);
  });
});
