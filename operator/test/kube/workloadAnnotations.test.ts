/**
 * Opting in with kubectl alone: the `ferry.dev/*` annotations of a Deployment or
 * StatefulSet (or of its pod template) become the workload's SpotPolicy, under the
 * same precedence rule as catalog-info.yaml's: an annotation applies when first
 * seen and when its value changes, and a portal change stays until then.
 */
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { SpotPolicy } from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { SPOT_POLICIES } from '../../src/kube/client/resources';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { until } from './until';
import { startOperator } from './startOperator';

jest.setTimeout(90_000);

const NAMESPACE = 'walkthrough';

function workloadBody(
  name: string,
  annotations: {
    own?: Record<string, string>;
    template?: Record<string, string>;
  },
  serviceName?: string,
) {
  return {
    metadata: { name, annotations: annotations.own },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      ...(serviceName ? { serviceName } : {}),
      template: {
        metadata: { labels: { app: name }, annotations: annotations.template },
        spec: { containers: [{ name: 'valkey', image: 'valkey/valkey:9' }] },
      },
    },
  };
}

describe("a workload's own ferry.dev annotations", () => {
  let cluster: LocalControlPlane;
  let kc: KubeConfig;
  let operator: KubeOperator;
  let apps: AppsV1Api;

  const policy = (name: string) =>
    apiRequest<SpotPolicy>(
      kc,
      'GET',
      `${collectionPath(SPOT_POLICIES, NAMESPACE)}/${name}`,
    ).catch(() => undefined);

  const annotate = (name: string, annotations: Record<string, string | null>) =>
    apiRequest(
      kc,
      'PATCH',
      `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${name}`,
      {
        contentType: 'application/merge-patch+json',
        body: { metadata: { annotations } },
      },
    );

  beforeAll(async () => {
    cluster = await LocalControlPlane.start({ kwok: false, scheduler: false });
    kc = cluster.kubeConfig();
    await installFerryCrds(kc);
    await kc
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE } } });
    apps = kc.makeApiClient(AppsV1Api);
    ({ operator } = await startOperator(cluster, {
      identity: 'workload-annotations',
      lease: false,
      policyDefaults: {
        permanentRatio: 0.5,
        availabilityTarget: 0.99,
        migration: 'auto',
        maxConcurrentMoves: 1,
        predictionHorizonMinutes: 20,
      },
    }));
  });

  afterAll(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it("creates the SpotPolicy from the pod template's annotations, as the post writes them", async () => {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: workloadBody('valkey', {
        template: {
          'ferry.dev/spot': 'enabled',
          'ferry.dev/permanent-ratio': '0',
          'ferry.dev/migration': 'valkey',
        },
      }),
    });
    const created = await until('the SpotPolicy of valkey', () =>
      policy('valkey'),
    );
    expect(created.spec).toEqual({
      workloadRef: { kind: 'Deployment', name: 'valkey' },
      enabled: true,
      permanentRatio: 0,
      // Not annotated: the operator's defaults (the chart's `defaults`).
      availabilityTarget: 0.99,
      migration: 'valkey',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    });
    expect(created.metadata.annotations).toMatchObject({
      'ferry.dev/policy-source': 'workload',
    });
  });

  it("takes the workload's own annotation over its template's, and follows a changed value", async () => {
    await apps.createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: workloadBody(
        'cache',
        {
          own: { 'ferry.dev/spot': 'enabled', 'ferry.dev/migration': 'volume' },
          template: { 'ferry.dev/migration': 'valkey' },
        },
        'cache',
      ),
    });
    const created = await until('the SpotPolicy of cache', () =>
      policy('cache'),
    );
    expect(created.spec.workloadRef).toEqual({
      kind: 'StatefulSet',
      name: 'cache',
    });
    expect(created.spec.migration).toBe('volume');

    await apiRequest(
      kc,
      'PATCH',
      `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets/cache`,
      {
        contentType: 'application/merge-patch+json',
        body: { metadata: { annotations: { 'ferry.dev/spot': 'disabled' } } },
      },
    );
    await until('cache opted out', async () =>
      (await policy('cache'))?.spec.enabled === false ? true : undefined,
    );
  });

  it('keeps a portal change until the annotation of that field changes', async () => {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: workloadBody('queue', {
        own: {
          'ferry.dev/spot': 'enabled',
          'ferry.dev/permanent-ratio': '0.3',
        },
      }),
    });
    const created = await until('the SpotPolicy of queue', () =>
      policy('queue'),
    );
    expect(created.spec.permanentRatio).toBe(0.3);

    // The portal raises the floor, as PolicyService writes it.
    await apiRequest(
      kc,
      'PATCH',
      `${collectionPath(SPOT_POLICIES, NAMESPACE)}/queue`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          metadata: { annotations: { 'ferry.dev/policy-source': 'portal' } },
          spec: { permanentRatio: 0.6 },
        },
      },
    );
    // An unrelated annotation changes: the portal's floor stays.
    await annotate('queue', { 'ferry.dev/migration': 'valkey' });
    await until('the migration annotation applied', async () =>
      (await policy('queue'))?.spec.migration === 'valkey' ? true : undefined,
    );
    expect((await policy('queue'))!.spec.permanentRatio).toBe(0.6);

    // The floor's own annotation changes: it wins again.
    await annotate('queue', { 'ferry.dev/permanent-ratio': '0.4' });
    await until('the new floor applied', async () =>
      (await policy('queue'))?.spec.permanentRatio === 0.4 ? true : undefined,
    );
  });

  it('says what is wrong with a malformed annotation in an Event, and creates nothing from it', async () => {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: workloadBody('typo', { own: { 'ferry.dev/spot': 'on' } }),
    });
    const event = await until('a Warning Event on typo', async () => {
      const list = await apiRequest<{
        items: { reason: string; note: string; regarding: { name: string } }[];
      }>(kc, 'GET', `/apis/events.k8s.io/v1/namespaces/${NAMESPACE}/events`);
      return list.items.find(
        e =>
          e.regarding.name === 'typo' && e.reason === 'InvalidFerryAnnotation',
      );
    });
    expect(event.note).toMatch(
      /ferry.dev\/spot is 'on'; use 'enabled' or 'disabled'/,
    );
    expect(await policy('typo')).toBeUndefined();
  });
});
