import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { SpotPolicy } from '../../src/api/v1alpha1';
import { FERRY_GROUP, FERRY_VERSION } from '../../src/api/v1alpha1';
import {
  KubeApiError,
  apiRequest,
  collectionPath,
} from '../../src/kube/client/apiRequest';
import { setCondition } from '../../src/kube/client/conditions';
import { EventRecorder } from '../../src/kube/client/EventRecorder';
import {
  addFinalizer,
  patchStatus,
  removeFinalizer,
} from '../../src/kube/client/objects';
import { SPOT_POLICIES } from '../../src/kube/client/resources';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { REPORTING_CONTROLLER } from '../../src/kube/client/ferryKeys';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const FINALIZER = 'ferry.dev/placement';

describe('status, finalizers and Events on a real API server', () => {
  let cluster: LocalControlPlane;
  let policies = 0;

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
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function newPolicy(): Promise<SpotPolicy> {
    return apiRequest<SpotPolicy>(
      cluster.kubeConfig(),
      'POST',
      collectionPath(SPOT_POLICIES, NAMESPACE),
      {
        body: {
          apiVersion: `${FERRY_GROUP}/${FERRY_VERSION}`,
          kind: 'SpotPolicy',
          metadata: { name: `sessions-${++policies}` },
          spec: { workloadRef: { kind: 'StatefulSet', name: 'sessions' } },
        },
      },
    );
  }

  const read = (name: string) =>
    apiRequest<SpotPolicy>(
      cluster.kubeConfig(),
      'GET',
      `${collectionPath(SPOT_POLICIES, NAMESPACE)}/${name}`,
    );

  it('patches status through the subresource, leaving the spec and other status fields alone', async () => {
    const policy = await newPolicy();
    const name = policy.metadata.name;
    await patchStatus(cluster.kubeConfig(), SPOT_POLICIES, NAMESPACE, name, {
      observedGeneration: 1,
      migrationsTotal: 2,
      conditions: setCondition(
        [],
        {
          type: 'Ready',
          status: 'True',
          reason: 'Placed',
          message: '3 of 3 placed',
        },
        Date.now(),
      ),
    });
    await patchStatus(cluster.kubeConfig(), SPOT_POLICIES, NAMESPACE, name, {
      migrationsTotal: 3,
    });
    const stored = await read(name);
    expect(stored.status).toMatchObject({
      observedGeneration: 1,
      migrationsTotal: 3,
      conditions: [{ type: 'Ready', status: 'True' }],
    });
    expect(stored.spec.permanentRatio).toBe(0.3);
  });

  it('adds and removes a finalizer, and refuses to write one over a stale copy', async () => {
    const kc = cluster.kubeConfig();
    const policy = await newPolicy();
    const withFinalizer = await addFinalizer(
      kc,
      SPOT_POLICIES,
      policy,
      FINALIZER,
    );
    expect(withFinalizer.metadata.finalizers).toEqual([FINALIZER]);
    expect(
      await addFinalizer(kc, SPOT_POLICIES, withFinalizer, FINALIZER),
    ).toBe(withFinalizer);

    // `policy` predates the finalizer: writing from it would drop it.
    const stale = addFinalizer(kc, SPOT_POLICIES, policy, 'ferry.dev/other');
    await expect(stale).rejects.toBeInstanceOf(KubeApiError);
    await expect(stale).rejects.toMatchObject({ code: 409 });

    await kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
      group: FERRY_GROUP,
      version: FERRY_VERSION,
      namespace: NAMESPACE,
      plural: 'spotpolicies',
      name: policy.metadata.name,
    });
    const deleting = await read(policy.metadata.name);
    expect(deleting.metadata).toHaveProperty('deletionTimestamp');
    await removeFinalizer(kc, SPOT_POLICIES, deleting, FINALIZER);
    await expect(read(policy.metadata.name)).rejects.toMatchObject({
      code: 404,
    });
  });

  it('records Events a person sees with kubectl, folding repeats into a series', async () => {
    const policy = await newPolicy();
    const errors: unknown[] = [];
    const recorder = new EventRecorder({
      kubeConfig: cluster.kubeConfig(),
      instance: 'ferry-operator-0',
      onError: error => errors.push(error),
    });
    const subject = {
      apiVersion: policy.apiVersion,
      kind: 'SpotPolicy',
      name: policy.metadata.name,
      namespace: NAMESPACE,
      uid: policy.metadata.uid,
    };
    const placed = {
      type: 'Normal' as const,
      reason: 'Placed',
      action: 'Place',
      note: '1 of 3 members on on-demand, 2 on spot in 2 zones',
    };
    await recorder.record(subject, placed);
    await recorder.record(subject, placed);
    await recorder.record(
      { apiVersion: 'v1', kind: 'Node', name: 'spot-m5-large-us-east-1a' },
      {
        type: 'Warning',
        reason: 'SpotInterruptionNotice',
        action: 'Migrate',
        note: 'reclaimed in 2 minutes',
      },
    );
    expect(errors).toEqual([]);

    const events = await apiRequest<{ items: any[] }>(
      cluster.kubeConfig(),
      'GET',
      `/apis/events.k8s.io/v1/namespaces/${NAMESPACE}/events`,
    );
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: 'ferry-operator-0',
      reason: 'Placed',
      regarding: {
        kind: 'SpotPolicy',
        name: policy.metadata.name,
        uid: policy.metadata.uid,
      },
      series: { count: 2 },
    });
    const described = cluster.kubectl([
      'describe',
      'spotpolicy',
      '-n',
      NAMESPACE,
      policy.metadata.name,
    ]);
    expect(described).toContain('1 of 3 members on on-demand');
    const nodeEvents = cluster.kubectl([
      'get',
      'events',
      '-n',
      'default',
      '-o',
      'name',
    ]);
    expect(nodeEvents).toContain('spot-m5-large-us-east-1a.');
  });
});
