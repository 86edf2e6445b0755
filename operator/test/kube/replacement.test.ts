/* eslint-disable @backstage/no-relative-monorepo-imports -- the owner changes
   the policy through the portal backend's REST API, as the portal does; the
   operator cannot depend on the backend, so this suite reaches it by path, as
   portalClusterClient.test.ts does. */
/**
 * Re-placement on a real cluster, driven from the portal: an owner opts a
 * five-member Deployment in, raises its permanent floor from 30 % to 60 %, and
 * opts out again, each through the portal backend's REST API. The leader moves
 * the running members after each change (Migrations with reason `policy`, the
 * `reschedule` method, the webhook placing each replacement), one at a time, so
 * that the quorum of ready members always stands.
 */
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { AppsV1Api, CoreV1Api, V1Pod } from '@kubernetes/client-node';
import request from 'supertest';
import { ferryPlugin } from '../../../plugins/ferry-backend/src/plugin';
import type { Migration, SpotPolicy } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { permanentFloor, quorumOf } from '../../src/core/quorum';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubePodEvictor } from '../../src/kube/runtimes/reschedule/KubePodEvictor';
import { Reflector } from '../../src/kube/informers/Reflector';
import {
  MIGRATIONS,
  PODS,
  SPOT_POLICIES,
} from '../../src/kube/client/resources';
import { isReady } from '../../src/kube/state/workloadViews';
import { isFinalPhase } from '../../src/migration/MigrationStateMachine';
import { RescheduleDriver } from '../../src/migration/reschedule/RescheduleDriver';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { portalToken } from './portalAccess';
import { startOperator } from './startOperator';
import { until } from './until';
import { migrationsIn } from './migrations';

// Every policy change is a few serial evictions and replacements on a busy two-core machine.
jest.setTimeout(240_000);

const NAMESPACE = 'shop';
const REPLICAS = 5;
const KUBERNETES_ID = 'backstage.io/kubernetes-id';
const OWNER = 'user:default/guest';
const POLICY_URL = '/api/ferry/entities/component/default/sessions/policy';
/** A policy change is a few serial evictions and replacements, each a few seconds on a busy machine. */
const POLICY_CHANGE_TIMEOUT_MS = 150_000;

/** Two spot and two on-demand nodes in each of three zones: room for every member on either. */
const FLEET: FakeNodeSpec[] = zonalFleet({ onDemand: 2 });

describe('re-placement of running members when the owner changes the policy in the portal', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let operator: Awaited<ReturnType<typeof startOperator>>['operator'];
  let pods: Reflector<V1Pod>;
  let portal: Awaited<ReturnType<typeof startTestBackend>>;
  /** Fewest ready members seen at any change of the members' pods, once all were up. */
  let fewestReady: number | undefined;
  let migrationWatch: Reflector<Migration>;
  /** Most Migrations not finished at once, at any change of them. */
  let mostOpenMoves = 0;
  let warnings: string[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    ({ operator, warnings } = await startOperator(
      cluster,
      {
        drivers: [
          new RescheduleDriver({
            evictor: new KubePodEvictor(kc),
            clock: systemClock,
          }),
        ],
        pools: async () => poolsOf(FLEET),
        replacement: {},
        statusRefreshMs: 1_000,
      },
      { webhooks: true },
    ));

    // Before opting in, the members run on permanent capacity, one per node.
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: {
          name: 'sessions',
          labels: { [KUBERNETES_ID]: 'sessions' },
        },
        spec: {
          replicas: REPLICAS,
          selector: { matchLabels: { app: 'sessions' } },
          template: {
            metadata: { labels: { app: 'sessions' } },
            spec: {
              nodeSelector: { 'karpenter.sh/capacity-type': 'on-demand' },
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    {
                      topologyKey: 'kubernetes.io/hostname',
                      labelSelector: { matchLabels: { app: 'sessions' } },
                    },
                  ],
                },
              },
              containers: [
                {
                  name: 'valkey',
                  image: 'valkey/valkey:8',
                  resources: { requests: { cpu: '500m', memory: '1Gi' } },
                },
              ],
            },
          },
        },
      },
    });

    pods = new Reflector<V1Pod>({
      kubeConfig: kc,
      type: PODS,
      namespace: NAMESPACE,
      labelSelector: 'app=sessions',
      onChange: () => {
        const ready = pods
          .list()
          .filter(pod => !pod.metadata?.deletionTimestamp && isReady(pod));
        if (fewestReady === undefined && ready.length < REPLICAS) return;
        fewestReady = Math.min(fewestReady ?? Infinity, ready.length);
      },
    });
    await pods.start();
    migrationWatch = new Reflector<Migration>({
      kubeConfig: kc,
      type: MIGRATIONS,
      namespace: NAMESPACE,
      onChange: () => {
        const open = migrationWatch
          .list()
          .filter(m => !isFinalPhase(m.status?.phase ?? 'Planned')).length;
        mostOpenMoves = Math.max(mostOpenMoves, open);
      },
    });
    await migrationWatch.start();

    portal = await startTestBackend({
      features: [
        ferryPlugin,
        catalogServiceMock.factory({
          entities: [
            {
              apiVersion: 'backstage.io/v1alpha1',
              kind: 'Component',
              metadata: {
                name: 'sessions',
                namespace: 'default',
                annotations: {
                  [KUBERNETES_ID]: 'sessions',
                  'backstage.io/kubernetes-namespace': NAMESPACE,
                },
              },
              spec: { type: 'service', lifecycle: 'production', owner: OWNER },
              relations: [{ type: 'ownedBy', targetRef: OWNER }],
            },
          ],
        }),
        mockServices.permissions.factory({ result: AuthorizeResult.ALLOW }),
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
    await until('five ready members on permanent capacity', () =>
      placement().then(p => p.ready === REPLICAS && p.onDemand === REPLICAS),
    );
  }, 300_000);

  afterAll(async () => {
    await portal?.stop();
    pods?.stop();
    migrationWatch?.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  /** Where the live members run now, by capacity type. */
  async function placement() {
    const nodes = new Map(
      (await core.listNode()).items.map(n => [
        n.metadata!.name!,
        n.metadata!.labels!['karpenter.sh/capacity-type'],
      ]),
    );
    const live = pods
      .list()
      .filter(pod => !pod.metadata?.deletionTimestamp && pod.spec?.nodeName);
    return {
      ready: live.filter(isReady).length,
      onDemand: live.filter(p => nodes.get(p.spec!.nodeName!) === 'on-demand')
        .length,
      spot: live.filter(p => nodes.get(p.spec!.nodeName!) === 'spot').length,
    };
  }

  const migrations = async () =>
    await migrationsIn(cluster.kubeConfig(), NAMESPACE);

  const policy = () =>
    apiRequest<SpotPolicy>(
      cluster.kubeConfig(),
      'GET',
      `${collectionPath(SPOT_POLICIES, NAMESPACE)}/sessions`,
    );

  /** Changes the policy as the portal's opt-in form does, and waits for the members to follow it. */
  async function changePolicy(
    update: Record<string, unknown>,
    expected: { onDemand: number; spot: number },
  ): Promise<Migration[]> {
    const before = new Set((await migrations()).map(m => m.metadata.name));
    const res = await request(portal.server)
      .put(POLICY_URL)
      .set('Authorization', mockCredentials.user.header(OWNER))
      .send(update);
    expect([res.status, res.body.error?.message]).toEqual([200, undefined]);
    const generation = (await policy()).metadata.generation;
    await until(
      `the members to follow ${JSON.stringify(update)} (${JSON.stringify(
        expected,
      )})`,
      async () => {
        const now = await placement();
        const placed = (await policy()).status?.placedGeneration;
        const open = (await migrations()).filter(
          m =>
            !['Succeeded', 'RolledBack', 'Failed'].includes(
              m.status?.phase ?? '',
            ),
        );
        return (
          placed === generation &&
          open.length === 0 &&
          now.ready === REPLICAS &&
          now.onDemand === expected.onDemand &&
          now.spot === expected.spot
        );
      },
      {
        timeoutMs: POLICY_CHANGE_TIMEOUT_MS,
        detail: async () =>
          `members ${JSON.stringify(
            await placement(),
          )}, Migrations ${JSON.stringify(
            (
              await migrations()
            ).map(m => [
              m.spec.pod,
              m.spec.reason,
              m.status?.phase,
              m.status?.message,
            ]),
          )}, placed generation ${
            (
              await policy()
            ).status?.placedGeneration
          }; warnings: ${warnings.join('; ')}`,
      },
    );
    const moves = (await migrations()).filter(
      m => !before.has(m.metadata.name),
    );
    for (const move of moves) {
      expect([move.spec.reason, move.spec.driver, move.status?.phase]).toEqual([
        'policy',
        'reschedule',
        'Succeeded',
      ]);
    }
    return moves;
  }

  it('moves members to spot when the owner opts in at 30 %, down to the floor', async () => {
    const moves = await changePolicy(
      { enabled: true, permanentRatio: 0.3, migration: 'reschedule' },
      {
        onDemand: permanentFloor(REPLICAS, 0.3),
        spot: REPLICAS - permanentFloor(REPLICAS, 0.3),
      },
    );
    expect(moves).toHaveLength(REPLICAS - permanentFloor(REPLICAS, 0.3));
  });

  it('moves the right number back to permanent capacity when the floor goes from 30 to 60 %', async () => {
    const moves = await changePolicy(
      { permanentRatio: 0.6 },
      {
        onDemand: permanentFloor(REPLICAS, 0.6),
        spot: REPLICAS - permanentFloor(REPLICAS, 0.6),
      },
    );
    expect(moves).toHaveLength(
      permanentFloor(REPLICAS, 0.6) - permanentFloor(REPLICAS, 0.3),
    );
  });

  it('brings every member back to permanent capacity when the owner opts out', async () => {
    const moves = await changePolicy(
      { enabled: false },
      { onDemand: REPLICAS, spot: 0 },
    );
    expect(moves).toHaveLength(REPLICAS - permanentFloor(REPLICAS, 0.6));
  });

  it('never had fewer ready members than the quorum, and moved one member at a time', async () => {
    expect(fewestReady).toBeGreaterThanOrEqual(quorumOf(REPLICAS));
    // Serial: at most one member down at once.
    expect(fewestReady).toBeGreaterThanOrEqual(REPLICAS - 1);
    const all = await migrations();
    expect(all.every(m => m.spec.reason === 'policy')).toBe(true);
    expect(all).toHaveLength(REPLICAS - permanentFloor(REPLICAS, 0.3) + 1 + 2);
    // No two moves of the workload were open at once, as the watch saw them.
    expect(mostOpenMoves).toBe(1);
  });
});
