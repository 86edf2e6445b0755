/**
 * The chart's part in interruption prediction, on a real API server: the
 * configuration it writes carries the core's proactive defaults and the name of
 * the history ConfigMap, and the RBAC it renders lets the operator's service
 * account (its own token) keep the history there through `PoolRiskHistoryStore`,
 * and no other ConfigMap.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULT_PROACTIVE_POLICY } from '../../src/core/proactive';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { parseOperatorConfig } from '../../src/kube/operatorConfig';
import { PoolRiskHistory } from '../../src/kube/pools/PoolRiskFeed';
import { PoolRiskHistoryStore } from '../../src/kube/stores/PoolRiskHistoryStore';
import { controlPlaneVersion } from './controlPlaneBinaries';
import { helmBinary } from './helmBinary';
import { LocalControlPlane } from './LocalControlPlane';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const CHART = path.resolve(__dirname, '../../chart');
const NAMESPACE = 'ferry-system';

function render(template: string, ...set: string[]): string {
  return execFileSync(
    helmBinary(),
    [
      'template',
      'ferry',
      CHART,
      '--namespace',
      NAMESPACE,
      '--kube-version',
      controlPlaneVersion(),
      '--show-only',
      template,
      ...set.flatMap(value => ['--set', value]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

const HISTORY: PoolRiskHistory = {
  version: 1,
  pools: [
    {
      instanceType: 'm5.large',
      zone: 'us-east-1a',
      firstSeenAt: Date.parse('2026-11-01T00:00:00Z'),
      interruptions: 3,
      recentInterruptionsAt: [Date.parse('2026-11-01T00:05:00Z')],
      lastRecoveryAt: Date.parse('2026-11-01T00:06:00Z'),
    },
  ],
  counted: { 'spot-1': ['notice'] },
};

describe('the chart and interruption prediction', () => {
  let cluster: LocalControlPlane;
  /** The kube config of the chart's service account, with its own token. */
  let operatorKc: KubeConfig;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await core.createNamespacedServiceAccount({
      namespace: NAMESPACE,
      body: { metadata: { name: 'ferry' } },
    });
    cluster.kubectl(
      ['apply', '-f', '-'],
      render('templates/prediction-rbac.yaml'),
    );
    const { status } = await apiRequest<{ status: { token: string } }>(
      kc,
      'POST',
      `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/ferry/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      },
    );
    const server = kc.getCurrentCluster()!;
    operatorKc = new KubeConfig();
    operatorKc.loadFromOptions({
      clusters: [server],
      users: [{ name: 'ferry', token: status.token }],
      contexts: [{ name: 'ferry', cluster: server.name, user: 'ferry' }],
      currentContext: 'ferry',
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("writes the core's proactive defaults and the history ConfigMap the RBAC names", () => {
    const config = parseOperatorConfig(
      parse(render('templates/configmap.yaml')).data['config.yaml'],
    );
    expect(config.prediction).toEqual({
      proactiveMoves: true,
      policy: DEFAULT_PROACTIVE_POLICY,
      historyConfigMap: 'ferry-pool-risk',
    });
    const [role] = parseAllDocuments(render('templates/prediction-rbac.yaml'))
      .map(doc => doc.toJS())
      .filter(object => object?.kind === 'Role');
    expect(role.rules).toContainEqual({
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: [config.prediction.historyConfigMap],
      verbs: ['get', 'update'],
    });
    const tuned = parseOperatorConfig(
      parse(
        render(
          'templates/configmap.yaml',
          'prediction.proactiveMoves=false',
          'prediction.enterRisk=0.4',
          'prediction.exitRisk=0.2',
          'prediction.movesPerHour=5',
        ),
      ).data['config.yaml'],
    );
    expect(tuned.prediction).toMatchObject({
      proactiveMoves: false,
      policy: { enterRisk: 0.4, exitRisk: 0.2, movesPerWindow: 5 },
    });
  });

  it('lets the operator create, read and update its history ConfigMap with its own token', async () => {
    const store = new PoolRiskHistoryStore(
      operatorKc,
      NAMESPACE,
      'ferry-pool-risk',
    );
    expect(await store.load()).toBeUndefined();
    await store.save(HISTORY);
    expect(await store.load()).toEqual(HISTORY);
    const updated = { ...HISTORY, counted: {} };
    await store.save(updated);
    expect(await store.load()).toEqual(updated);
  });

  it('refuses it any other ConfigMap', async () => {
    const kc = cluster.kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name: 'someone-else' }, data: { a: 'b' } },
    });
    const other = new PoolRiskHistoryStore(
      operatorKc,
      NAMESPACE,
      'someone-else',
    );
    await expect(other.load()).rejects.toThrow(/forbidden/);
    await expect(other.save(HISTORY)).rejects.toThrow(/forbidden/);
    await expect(
      new PoolRiskHistoryStore(
        operatorKc,
        'kube-system',
        'ferry-pool-risk',
      ).save(HISTORY),
    ).rejects.toThrow(/forbidden/);
  });

  it('names what is wrong with a history it cannot read', async () => {
    const kc = cluster.kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'broken-pool-risk' },
        data: { 'history.json': '{"pools": ' },
      },
    });
    await expect(
      new PoolRiskHistoryStore(kc, NAMESPACE, 'broken-pool-risk').load(),
    ).rejects.toThrow(
      /^ConfigMap ferry-system\/broken-pool-risk key history.json is not JSON \(.*\); delete the ConfigMap and the operator starts a new history$/,
    );
  });
});
