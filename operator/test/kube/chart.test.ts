import { execFileSync } from 'node:child_process';
import path from 'node:path';
import {
  AppsV1Api,
  ApiextensionsV1Api,
  CoreV1Api,
  KubeConfig,
  V1DaemonSet,
  NetworkingV1Api,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { SPOT_POLICY_DEFAULTS } from '../../src/api/v1alpha1';
import { LEADER_ELECTION_DEFAULTS } from '../../src/kube/leadership/LeaderElector';
import { MIGRATION_RETENTION_DEFAULTS } from '../../src/kube/controllers/MigrationCollector';
import { PRICE_REFRESH_INTERVAL_MS } from '../../src/kube/pools/PoolPriceFeed';
import { STATUS_REFRESH_INTERVAL_MS } from '../../src/kube/controllers/SpotPolicyStatusController';
import { REBALANCE_DEFAULTS } from '../../src/core/replacement';
import { parseOperatorConfig } from '../../src/kube/operatorConfig';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { controlPlaneVersion } from './controlPlaneBinaries';
import { createFakeNodes, FAKE_ZONES } from './fakeNodes';
import { helmBinary } from './helmBinary';
import { LocalControlPlane } from './LocalControlPlane';
import { eventually, until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const CHART = path.resolve(__dirname, '../../chart');
const NAMESPACE = 'ferry-system';
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:ferry`;

describe('the Helm chart on a real control plane', () => {
  let cluster: LocalControlPlane;
  let helm: (args: string[]) => string;

  beforeAll(async () => {
    const binary = helmBinary();
    cluster = await LocalControlPlane.start();
    helm = args =>
      execFileSync(binary, [...args, '--kubeconfig', cluster.kubeconfigPath], {
        encoding: 'utf8',
        env: {
          ...process.env,
          HELM_CACHE_HOME: path.join(cluster.workDir, 'helm/cache'),
          HELM_CONFIG_HOME: path.join(cluster.workDir, 'helm/config'),
          HELM_DATA_HOME: path.join(cluster.workDir, 'helm/data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    // Spot and on-demand capacity in each zone, for the operator's own pods to choose from.
    await createFakeNodes(
      cluster.kubeConfig(),
      FAKE_ZONES.flatMap(zone =>
        (['spot', 'on-demand'] as const).map(capacityType => ({
          name: `${capacityType}-${zone}`,
          capacityType,
          instanceType: 'm5.large' as const,
          zone,
        })),
      ),
    );
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it("writes a configuration the operator reads, with the operator's defaults", () => {
    const rendered = parse(
      helm([
        'template',
        'ferry',
        CHART,
        '--namespace',
        NAMESPACE,
        '--kube-version',
        controlPlaneVersion(),
        '--show-only',
        'templates/configmap.yaml',
      ]),
    );
    const config = parseOperatorConfig(rendered.data['config.yaml']);
    expect(config.defaults).toEqual(SPOT_POLICY_DEFAULTS);
    expect(config.leaderElection).toMatchObject({
      enabled: true,
      leaseName: 'ferry-leader',
      ...LEADER_ELECTION_DEFAULTS,
    });
    expect(config.webhook).toEqual({
      enabled: true,
      port: 9443,
      certDir: '/etc/ferry/tls',
    });
    expect(config.status.refreshIntervalMs).toBe(STATUS_REFRESH_INTERVAL_MS);
    expect(config.pricing.refreshIntervalMs).toBe(PRICE_REFRESH_INTERVAL_MS);
    expect(config.migrationHistory).toEqual({
      retentionMs: MIGRATION_RETENTION_DEFAULTS.maxAgeMs,
      maxPerWorkload: MIGRATION_RETENTION_DEFAULTS.maxPerWorkload,
    });
    expect(config.providers.aws.onDemandPricesUsdPerHour).toEqual({});
    // The chart's values say what the core's defaults say.
    expect(config.replacement).toEqual({
      enabled: true,
      ...REBALANCE_DEFAULTS,
    });
  });

  it('passes what the values say about retention, refresh and on-demand prices to the operator', () => {
    const rendered = parse(
      helm([
        'template',
        'ferry',
        CHART,
        '--kube-version',
        controlPlaneVersion(),
        '--show-only',
        'templates/configmap.yaml',
        '--set',
        'migrationHistory.retentionDays=2',
        '--set',
        'migrationHistory.maxPerWorkload=10',
        '--set',
        'status.refreshIntervalSeconds=30',
        '--set',
        'providers.aws.enabled=true',
        '--set',
        'providers.aws.region=eu-west-1',
        '--set-json',
        'providers.aws.onDemandPricesUsdPerHour={"m5.large":0.107}',
      ]),
    );
    const config = parseOperatorConfig(rendered.data['config.yaml']);
    expect(config.migrationHistory).toEqual({
      retentionMs: 2 * 86_400_000,
      maxPerWorkload: 10,
    });
    expect(config.status.refreshIntervalMs).toBe(30_000);
    expect(config.providers.aws.onDemandPricesUsdPerHour).toEqual({
      'm5.large': 0.107,
    });
  });

  it('refuses to render replicas that would all lead: leader election off with replicaCount > 1', () => {
    const render = (replicas: number) =>
      helm([
        'template',
        'ferry',
        CHART,
        '--kube-version',
        controlPlaneVersion(),
        '--set',
        'leaderElection.enabled=false',
        '--set',
        `replicaCount=${replicas}`,
      ]);
    expect(() => render(2)).toThrow(
      /replicaCount is 2 but leaderElection.enabled is false/,
    );
    const single = render(1);
    expect(single).toContain('replicas: 1');
    // No Lease to hold, so no RBAC for one.
    expect(single).not.toContain('leases');
  });

  it('installs the node agent, its token and the RuntimeClass only with checkpoint.enabled', () => {
    const kinds = (...set: string[]) =>
      parseAllDocuments(
        helm([
          'template',
          'ferry',
          CHART,
          '--namespace',
          NAMESPACE,
          '--kube-version',
          controlPlaneVersion(),
          ...set.flatMap(value => ['--set', value]),
        ]),
      )
        .map(doc => doc.toJS())
        .filter(Boolean)
        .map(
          (object: { kind: string; metadata: { name: string } }) =>
            `${object.kind}/${object.metadata.name}`,
        );
    const agentParts = [
      'DaemonSet/ferry-agent',
      'Secret/ferry-node-agent',
      'RuntimeClass/ferry',
    ];
    const off = kinds();
    for (const part of agentParts) expect(off).not.toContain(part);
    // The operator runs either way.
    expect(off).toContain('Deployment/ferry');
    expect(kinds('checkpoint.enabled=true')).toEqual(
      expect.arrayContaining(agentParts),
    );
    // A cluster with agents of its own keeps the chart's off.
    expect(
      kinds('checkpoint.enabled=true', 'agent.enabled=false'),
    ).not.toContain('DaemonSet/ferry-agent');
  });

  it('passes helm lint', () => {
    expect(helm(['lint', CHART])).toContain('0 chart(s) failed');
  });

  it('installs: CRDs, RBAC, and two operator replicas off spot capacity', async () => {
    helm([
      'install',
      'ferry',
      CHART,
      '--namespace',
      NAMESPACE,
      '--create-namespace',
      '--wait',
      '--timeout',
      '120s',
    ]);
    const kc = cluster.kubeConfig();
    const crds = await kc
      .makeApiClient(ApiextensionsV1Api)
      .listCustomResourceDefinition();
    expect(crds.items.map(crd => crd.metadata!.name).sort()).toEqual([
      'migrations.ferry.dev',
      'spotpolicies.ferry.dev',
    ]);
    const deployment = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ namespace: NAMESPACE, name: 'ferry' });
    expect(deployment.status?.readyReplicas).toBe(2);
    const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: 'app.kubernetes.io/name=ferry',
    });
    expect(pods.items.map(pod => pod.spec!.nodeName)).toEqual([
      expect.stringMatching(/^on-demand-/),
      expect.stringMatching(/^on-demand-/),
    ]);
  }, 150_000);

  it('ships a NetworkPolicy that lets only the webhook and metrics ports reach the operator, and none for the agent in the node network', async () => {
    const kc = cluster.kubeConfig();
    const [policy] = (
      await kc
        .makeApiClient(NetworkingV1Api)
        .listNamespacedNetworkPolicy({ namespace: NAMESPACE })
    ).items;
    expect(policy.spec!.policyTypes).toEqual(['Ingress']);
    // It selects the operator's pods, and not the agent's.
    const selector = Object.entries(policy.spec!.podSelector!.matchLabels!)
      .map(([key, value]) => `${key}=${value}`)
      .join(',');
    const selected = await kc
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: NAMESPACE, labelSelector: selector });
    expect(selected.items.map(pod => pod.metadata!.name).sort()).toEqual(
      (
        await kc.makeApiClient(CoreV1Api).listNamespacedPod({
          namespace: NAMESPACE,
          labelSelector: 'app.kubernetes.io/name=ferry',
        })
      ).items
        .map(pod => pod.metadata!.name)
        .sort(),
    );
    // The agent is installed only with checkpoint.enabled (the install above has it off).
    const agent: V1DaemonSet = parseAllDocuments(
      helm([
        'template',
        'ferry',
        CHART,
        '--namespace',
        NAMESPACE,
        '--kube-version',
        controlPlaneVersion(),
        '--show-only',
        'templates/agent-daemonset.yaml',
        '--set',
        'checkpoint.enabled=true',
      ]),
    )
      .map(document => document.toJS())
      .find(object => object?.kind === 'DaemonSet');
    expect(agent.kind).toBe('DaemonSet');
    expect(agent.spec!.template.spec!.hostNetwork).toBe(true);
    expect(
      Object.entries(policy.spec!.podSelector!.matchLabels!).every(
        ([key, value]) => agent.spec!.template.metadata!.labels![key] === value,
      ),
    ).toBe(false);
    // Ingress: the two ports the operator serves, by the names its container gives them.
    const deployment = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ namespace: NAMESPACE, name: 'ferry' });
    const served = deployment
      .spec!.template.spec!.containers[0].ports!.map(port => port.name)
      .sort();
    expect(
      policy
        .spec!.ingress!.flatMap(rule => rule.ports!.map(port => port.port))
        .sort(),
    ).toEqual(served);
    expect(served).toEqual(['metrics', 'webhook']);
  });

  it('renders the egress NetworkPolicy only with the API server named, and lets it reach the agents at their port', () => {
    const template = (values: string[]) =>
      helm([
        'template',
        'ferry',
        CHART,
        '--namespace',
        NAMESPACE,
        '--kube-version',
        controlPlaneVersion(),
        '--show-only',
        'templates/networkpolicy.yaml',
        ...values.flatMap(value => ['--set', value]),
      ]);
    expect(() => template(['networkPolicy.egress.enabled=true'])).toThrow(
      /networkPolicy.egress.apiServerCIDRs: the API server's addresses/,
    );
    const policy = parse(
      template([
        'networkPolicy.egress.enabled=true',
        'networkPolicy.egress.apiServerCIDRs={10.0.0.1/32}',
        'networkPolicy.egress.nodeCIDRs={10.1.0.0/16}',
      ]),
    );
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    const allowed = policy.spec.egress.map((rule: any) => ({
      to: (rule.to ?? []).map((peer: any) => peer.ipBlock?.cidr ?? 'pods'),
      ports: rule.ports.map((port: any) => port.port),
    }));
    expect(allowed).toEqual([
      { to: [], ports: [53, 53] },
      { to: ['10.0.0.1/32'], ports: [443, 6443] },
      { to: ['10.1.0.0/16'], ports: [7444] },
      { to: ['pods'], ports: [6379] },
      { to: ['0.0.0.0/0'], ports: [443] },
    ]);
  });

  it('registers its webhooks failing open: pods are created while no operator answers', async () => {
    // kwok reports the operator's pods Running, but nothing listens behind them.
    const webhooks = JSON.parse(
      cluster.kubectl([
        'get',
        'mutatingwebhookconfigurations,validatingwebhookconfigurations',
        '-o',
        'json',
      ]),
    ).items;
    expect(
      webhooks.map((w: any) => `${w.kind}/${w.metadata.name}`).sort(),
    ).toEqual([
      'MutatingWebhookConfiguration/ferry',
      'ValidatingWebhookConfiguration/ferry',
    ]);
    for (const configuration of webhooks) {
      expect(configuration.webhooks[0].failurePolicy).toBe('Ignore');
      expect(configuration.webhooks[0].clientConfig.caBundle).toBeTruthy();
    }
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'shop' } } });
    const started = Date.now();
    // The namespace's default ServiceAccount may not exist yet.
    await eventually(
      () =>
        core.createNamespacedPod({
          namespace: 'shop',
          body: {
            metadata: { name: 'cache-0' },
            spec: {
              containers: [{ name: 'valkey', image: 'valkey/valkey:8' }],
            },
          },
        }),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('keeps the webhook certificate across an upgrade', () => {
    const secret = () =>
      cluster.kubectl([
        'get',
        'secret',
        'ferry-webhook-tls',
        '-n',
        NAMESPACE,
        '-o',
        'jsonpath={.data.ca\\.crt}',
      ]);
    const before = secret();
    helm([
      'upgrade',
      'ferry',
      CHART,
      '--namespace',
      NAMESPACE,
      '--set',
      'replicaCount=1',
    ]);
    expect(secret()).toBe(before);
    expect(before.length).toBeGreaterThan(100);
  });

  it.each([
    // `resource/name` to kubectl auth can-i is a name, not a subresource.
    ['patch', 'spotpolicies.ferry.dev', ['--subresource=status'], 'yes'],
    // A workload's own ferry.dev/* annotations create and patch its SpotPolicy.
    ['patch', 'spotpolicies.ferry.dev', ['-n', 'shop'], 'yes'],
    ['create', 'spotpolicies.ferry.dev', ['-n', 'shop'], 'yes'],
    ['create', 'migrations.ferry.dev', [], 'yes'],
    ['delete', 'migrations.ferry.dev', ['-n', 'shop'], 'yes'],
    ['update', 'spotpolicies.ferry.dev', ['-n', 'shop'], 'no'],
    ['delete', 'spotpolicies.ferry.dev', ['-n', 'shop'], 'no'],
    ['create', 'pods/eviction', ['-n', 'shop'], 'yes'],
    ['patch', 'nodes', [], 'yes'],
    ['delete', 'nodes', [], 'no'],
    ['get', 'secrets', ['-n', 'shop'], 'no'],
    ['update', 'statefulsets.apps', ['-n', 'shop'], 'no'],
    [
      'update',
      'leases.coordination.k8s.io/ferry-leader',
      ['-n', NAMESPACE],
      'yes',
    ],
    [
      'update',
      'leases.coordination.k8s.io/someone-else',
      ['-n', NAMESPACE],
      'no',
    ],
    [
      'update',
      'leases.coordination.k8s.io/ferry-leader',
      ['-n', 'kube-system'],
      'no',
    ],
  ])('lets the operator %s %s %j: %s', (verb, resource, scope, answer) => {
    let said: string;
    try {
      said = cluster.kubectl([
        'auth',
        'can-i',
        verb,
        resource,
        ...scope,
        '--as',
        SERVICE_ACCOUNT,
      ]);
    } catch (error) {
      // kubectl auth can-i exits 1 when the answer is no.
      said = (error as { stdout: string }).stdout;
    }
    expect(said.trim()).toBe(answer);
  });

  it('refuses the operator’s own token everything the chart does not grant', async () => {
    // The operator's service account, as its pods authenticate: a bound token.
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace: NAMESPACE,
        name: 'ferry',
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      })
    ).status!.token;
    const asOperator = new KubeConfig();
    asOperator.loadFromClusterAndUser(
      {
        name: 'local',
        server: cluster.server,
        caData: Buffer.from(cluster.caPem).toString('base64'),
        skipTLSVerify: false,
      },
      { name: 'ferry', token },
    );
    const status = (
      url: string,
      method: 'GET' | 'POST' | 'PATCH' | 'DELETE' = 'GET',
      body?: unknown,
    ) =>
      apiRequest(asOperator, method, url, {
        body,
        contentType:
          method === 'PATCH' ? 'application/merge-patch+json' : undefined,
      }).then(
        () => 200,
        (error: { statusCode?: number; code?: number }) =>
          error.statusCode ?? error.code ?? 0,
      );
    const node = `spot-${FAKE_ZONES[0]}`;
    expect({
      // What the operator runs on: allowed.
      listPods: await status('/api/v1/pods?limit=1'),
      listNodes: await status('/api/v1/nodes?limit=1'),
      // What the chart does not grant: refused.
      listSecretsClusterWide: await status('/api/v1/secrets?limit=1'),
      readSecretElsewhere: await status(
        '/api/v1/namespaces/kube-system/secrets/anything',
      ),
      deleteNode: await status(`/api/v1/nodes/${node}`, 'DELETE'),
      createNode: await status('/api/v1/nodes', 'POST', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'forged' },
      }),
      bindClusterAdmin: await status(
        '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
        'POST',
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'ferry-escalation' },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: 'cluster-admin',
          },
          subjects: [
            { kind: 'ServiceAccount', name: 'ferry', namespace: NAMESPACE },
          ],
        },
      ),
      deleteSpotPolicies: await status(
        '/apis/ferry.dev/v1alpha1/namespaces/shop/spotpolicies',
        'DELETE',
      ),
      scaleStatefulSet: await status(
        '/apis/apps/v1/namespaces/shop/statefulsets/cache/scale',
        'PATCH',
        { spec: { replicas: 0 } },
      ),
      execIntoPod: await status(
        '/api/v1/namespaces/shop/pods/cache-0/exec?command=sh',
        'POST',
      ),
    }).toEqual({
      listPods: 200,
      listNodes: 200,
      listSecretsClusterWide: 403,
      readSecretElsewhere: 403,
      deleteNode: 403,
      createNode: 403,
      bindClusterAdmin: 403,
      deleteSpotPolicies: 403,
      scaleStatefulSet: 403,
      execIntoPod: 403,
    });
  });

  it('gives the portal a token that reads workloads and writes SpotPolicies, and nothing more', async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    // The token controller fills the Secret once it sees it.
    const token = await until(
      'the portal token to be filled',
      async () => {
        const secret = await core.readNamespacedSecret({
          namespace: NAMESPACE,
          name: 'ferry-portal-token',
        });
        expect(secret.metadata?.labels?.['app.kubernetes.io/component']).toBe(
          'portal-access',
        );
        return (
          Buffer.from(secret.data?.token ?? '', 'base64').toString() ||
          undefined
        );
      },
      { timeoutMs: 10_000 },
    );
    const canI = (verb: string, resource: string, ...more: string[]) => {
      const args = ['auth', 'can-i', verb, resource, '-n', 'shop', ...more];
      try {
        return cluster.kubectl([...args, '--token', token]).trim();
      } catch (error) {
        // kubectl auth can-i exits 1 when the answer is no.
        return (error as { stdout: string }).stdout.trim();
      }
    };
    expect(canI('list', 'deployments.apps')).toBe('yes');
    expect(canI('update', 'spotpolicies.ferry.dev')).toBe('yes');
    expect(canI('list', 'migrations.ferry.dev')).toBe('yes');
    expect(canI('delete', 'spotpolicies.ferry.dev')).toBe('no');
    expect(canI('update', 'deployments.apps')).toBe('no');
    expect(canI('get', 'secrets')).toBe('no');
    expect(
      canI('patch', 'spotpolicies.ferry.dev', '--subresource=status'),
    ).toBe('no');
  });
});
