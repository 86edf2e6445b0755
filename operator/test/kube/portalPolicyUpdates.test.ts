/* eslint-disable @backstage/no-relative-monorepo-imports -- the operator cannot
   depend on the portal backend (which depends on it); this suite runs the
   backend plugin against the operator's local control plane. */
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
} from '@kubernetes/client-node';
import request from 'supertest';
import { FERRY_GROUP, FERRY_VERSION, SpotPolicy } from '../../src/api/v1alpha1';
import { ferryPlugin } from '../../../plugins/ferry-backend/src/plugin';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { portalToken } from './portalAccess';

// Concurrent policy changes through the portal backend's REST API, written to a
// real API server: two PUTs to different fields must both hold afterwards.

jest.setTimeout(120_000);

const NAMESPACE = 'payments';
const WORKLOAD = 'session-store';
const POLICY_URL = `/api/ferry/entities/component/default/${WORKLOAD}/policy`;
/**
 * Rounds of two overlapping PUTs, the second started a little later each round
 * so that, in some round, it reads the policy before the first one writes and
 * writes after it; one lost update in any round fails the suite.
 */
const ROUNDS = 16;
const STAGGER_STEP_MS = 8;

describe('policy changes through the portal on a real API server', () => {
  let cluster: LocalControlPlane;
  let objects: CustomObjectsApi;
  let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
  let stopBackend: (() => Promise<void>) | undefined;

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
    const labels = { app: WORKLOAD, 'backstage.io/kubernetes-id': WORKLOAD };
    await kc.makeApiClient(AppsV1Api).createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: {
        metadata: { name: WORKLOAD, namespace: NAMESPACE, labels },
        spec: {
          replicas: 3,
          serviceName: WORKLOAD,
          selector: { matchLabels: { app: WORKLOAD } },
          template: {
            metadata: { labels: { app: WORKLOAD } },
            spec: {
              containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
            },
          },
        },
      },
    });
    objects = kc.makeApiClient(CustomObjectsApi);

    const backend = await startTestBackend({
      features: [
        ferryPlugin,
        mockServices.permissions.factory({ result: 'ALLOW' as any }),
        catalogServiceMock.factory({
          entities: [
            {
              apiVersion: 'backstage.io/v1alpha1',
              kind: 'Component',
              metadata: {
                name: WORKLOAD,
                namespace: 'default',
                annotations: {
                  'backstage.io/kubernetes-id': WORKLOAD,
                  'backstage.io/kubernetes-namespace': NAMESPACE,
                },
              },
              spec: { type: 'service', owner: 'platform-team' },
            },
          ],
        }),
        mockServices.rootConfig.factory({
          data: {
            kubernetes: {
              clusterLocatorMethods: [
                {
                  type: 'config',
                  clusters: [
                    {
                      name: 'local',
                      url: cluster.server,
                      authProvider: 'serviceAccount',
                      serviceAccountToken: await portalToken(kc),
                      caData: Buffer.from(cluster.caPem).toString('base64'),
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
    stopBackend = () => backend.stop();
  }, 240_000);

  afterAll(async () => {
    await stopBackend?.();
    await cluster?.stop();
  });

  const readSpec = async () =>
    (
      (await objects.getNamespacedCustomObject({
        group: FERRY_GROUP,
        version: FERRY_VERSION,
        namespace: NAMESPACE,
        plural: 'spotpolicies',
        name: WORKLOAD,
      })) as SpotPolicy
    ).spec;

  const put = (body: object) =>
    request(server)
      .put(POLICY_URL)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify(body));

  it('keeps both of two overlapping changes to different fields', async () => {
    const created = await put({ enabled: true });
    expect(`${created.status} ${created.body.error?.message ?? ''}`).toBe(
      '200 ',
    );
    const ratios = [0.4, 0.6];
    const methods = ['checkpoint', 'valkey'] as const;
    for (let round = 0; round < ROUNDS; round++) {
      const permanentRatio = ratios[round % 2];
      const migration = methods[round % 2];
      const [ratio, method] = await Promise.all([
        put({ permanentRatio }),
        new Promise(resolve =>
          setTimeout(resolve, (round % 8) * STAGGER_STEP_MS),
        ).then(() => put({ migration })),
      ]);
      expect([ratio.status, method.status]).toEqual([200, 200]);
      expect({ round, spec: await readSpec() }).toMatchObject({
        round,
        spec: { enabled: true, permanentRatio, migration },
      });
    }
  });
});
