import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
} from '@kubernetes/client-node';
import {
  FERRY_GROUP,
  FERRY_VERSION,
  SPOT_POLICY_DEFAULTS,
} from '../../src/api/v1alpha1';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'crd-test';
let rejected = 0;

/** The API server's answer to a write: the object, or the status code and message of its refusal. */
async function attempt(
  write: () => Promise<any>,
): Promise<
  { ok: true; object: any } | { ok: false; code: number; message: string }
> {
  try {
    return { ok: true, object: await write() };
  } catch (error) {
    if (error instanceof ApiException) {
      const body =
        typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
      return { ok: false, code: error.code, message: body.message };
    }
    throw error;
  }
}

function spotPolicy(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: `${FERRY_GROUP}/${FERRY_VERSION}`,
    kind: 'SpotPolicy',
    metadata: { name, namespace: NAMESPACE },
    spec: { workloadRef: { kind: 'StatefulSet', name: 'cache' }, ...spec },
  };
}

function migration(name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: `${FERRY_GROUP}/${FERRY_VERSION}`,
    kind: 'Migration',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      pod: 'cache-1',
      sourceNode: 'spot-m5-large-us-east-1a',
      reason: 'notice',
      driver: 'valkey',
      ...spec,
    },
  };
}

describe('Ferry CRDs on a real API server', () => {
  let cluster: LocalControlPlane;
  let objects: CustomObjectsApi;

  const create = (plural: string, body: object) =>
    attempt(() =>
      objects.createNamespacedCustomObject({
        group: FERRY_GROUP,
        version: FERRY_VERSION,
        namespace: NAMESPACE,
        plural,
        body,
      }),
    );

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
    objects = kc.makeApiClient(CustomObjectsApi);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  describe('SpotPolicy', () => {
    it('accepts a policy naming only its workload, and fills in the defaults', async () => {
      const result = await create('spotpolicies', spotPolicy('minimal', {}));
      expect(result).toMatchObject({ ok: true });
      expect(result.ok && result.object.spec).toEqual({
        workloadRef: { kind: 'StatefulSet', name: 'cache' },
        enabled: true,
        ...SPOT_POLICY_DEFAULTS,
      });
    });

    it('accepts a full policy at the edges of every range', async () => {
      const result = await create(
        'spotpolicies',
        spotPolicy('edges', {
          enabled: false,
          permanentRatio: 1,
          availabilityTarget: 0,
          migration: 'checkpoint',
          maxConcurrentMoves: 100,
          predictionHorizonMinutes: 1440,
        }),
      );
      expect(result).toMatchObject({ ok: true });
    });

    it.each([
      [
        'permanentRatio above 1',
        { permanentRatio: 1.5 },
        'spec.permanentRatio',
      ],
      [
        'permanentRatio below 0',
        { permanentRatio: -0.1 },
        'spec.permanentRatio',
      ],
      [
        'availabilityTarget above 1',
        { availabilityTarget: 99.9 },
        'spec.availabilityTarget',
      ],
      [
        'an unknown migration method',
        { migration: 'teleport' },
        'spec.migration',
      ],
      [
        'no concurrent moves',
        { maxConcurrentMoves: 0 },
        'spec.maxConcurrentMoves',
      ],
      [
        'a fractional horizon',
        { predictionHorizonMinutes: 2.5 },
        'spec.predictionHorizonMinutes',
      ],
      [
        'a DaemonSet',
        { workloadRef: { kind: 'DaemonSet', name: 'x' } },
        'spec.workloadRef.kind',
      ],
      [
        'a workload without a name',
        { workloadRef: { kind: 'Deployment', name: '' } },
        'spec.workloadRef.name',
      ],
      [
        'a ratio given as a string',
        { permanentRatio: '0.5' },
        'spec.permanentRatio',
      ],
    ])('rejects %s', async (_, spec, field) => {
      const result = await create(
        'spotpolicies',
        spotPolicy(`bad-${++rejected}`, spec),
      );
      expect(result).toMatchObject({ ok: false, code: 422 });
      expect(!result.ok && result.message).toContain(field);
    });

    it.each(['5s', '10m', '168h'])(
      'keeps a hibernateAfter of %s',
      async value => {
        const result = await create(
          'spotpolicies',
          spotPolicy(`hibernate-${value}`, { hibernateAfter: value }),
        );
        expect(result).toMatchObject({ ok: true });
        expect(result.ok && result.object.spec.hibernateAfter).toBe(value);
      },
    );

    it.each([
      ['10 minutes', 'spec.hibernateAfter'],
      ['1.5m', 'spec.hibernateAfter'],
      ['2s', 'hibernateAfter must be between 5s and 168h'],
      ['169h', 'hibernateAfter must be between 5s and 168h'],
    ])('rejects a hibernateAfter of %s', async (value, message) => {
      const result = await create(
        'spotpolicies',
        spotPolicy(`bad-${++rejected}`, { hibernateAfter: value }),
      );
      expect(result).toMatchObject({ ok: false, code: 422 });
      expect(!result.ok && result.message).toContain(message);
    });

    it('rejects a policy without a workload', async () => {
      const body = spotPolicy('no-workload', {});
      delete (body.spec as any).workloadRef;
      const result = await create('spotpolicies', body);
      expect(result).toMatchObject({ ok: false, code: 422 });
      expect(!result.ok && result.message).toContain('spec.workloadRef');
    });

    it('drops fields the schema does not know', async () => {
      const result = await create(
        'spotpolicies',
        spotPolicy('pruned', { spotOnly: true }),
      );
      expect(result.ok && result.object.spec).not.toHaveProperty('spotOnly');
    });

    it('keeps its workload for life', async () => {
      await create('spotpolicies', spotPolicy('immutable', {}));
      const result = await attempt(() =>
        objects.patchNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace: NAMESPACE,
          plural: 'spotpolicies',
          name: 'immutable',
          body: [
            { op: 'replace', path: '/spec/workloadRef/name', value: 'other' },
          ],
        }),
      );
      expect(result).toMatchObject({ ok: false, code: 422 });
      expect(!result.ok && result.message).toContain(
        'workloadRef is immutable',
      );
    });

    it('takes status only through the status subresource, with conventional conditions', async () => {
      await create('spotpolicies', spotPolicy('with-status', {}));
      const status = {
        observedGeneration: 1,
        replicas: [
          {
            pod: 'cache-0',
            node: 'on-demand-m5-large-us-east-1a',
            capacityType: 'on-demand',
            instanceType: 'm5.large',
            zone: 'us-east-1a',
            hourlyCostUsd: 0.048,
            interruptionRisk: 0,
            ready: true,
          },
        ],
        cost: {
          hourlyCostUsd: 0.07,
          onDemandHourlyCostUsd: 0.144,
          spendToDateUsd: 1.2,
          savingsToDateUsd: 2.5,
        },
        availability: {
          target: 0.999,
          observed: 1,
          errorBudgetRemaining: 1,
          requiredMembers: 2,
          readyMembers: 3,
        },
        migrationsTotal: 0,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'Placed',
            message: 'every replica runs where the policy wants it',
            lastTransitionTime: '2026-01-01T00:00:00Z',
            observedGeneration: 1,
          },
        ],
      };
      const patchStatus = (value: unknown) =>
        attempt(() =>
          objects.patchNamespacedCustomObjectStatus({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace: NAMESPACE,
            plural: 'spotpolicies',
            name: 'with-status',
            body: [{ op: 'add', path: '/status', value }],
          }),
        );
      expect(await patchStatus(status)).toMatchObject({ ok: true });

      // Status written through the main resource is ignored.
      const viaMain = await attempt(() =>
        objects.patchNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace: NAMESPACE,
          plural: 'spotpolicies',
          name: 'with-status',
          body: [{ op: 'replace', path: '/status/migrationsTotal', value: 7 }],
        }),
      );
      expect(viaMain.ok && viaMain.object.status.migrationsTotal).toBe(0);

      // Each member's hibernation, one entry per pod.
      const hibernation = [
        { pod: 'cache-0', phase: 'SCALED_DOWN' },
        {
          pod: 'cache-1',
          phase: 'RUNNING',
          refusal: 'its containers declare no TCP port',
        },
      ];
      expect(await patchStatus({ ...status, hibernation })).toMatchObject({
        ok: true,
      });
      const read = await attempt(() =>
        objects.getNamespacedCustomObject({
          group: FERRY_GROUP,
          version: FERRY_VERSION,
          namespace: NAMESPACE,
          plural: 'spotpolicies',
          name: 'with-status',
        }),
      );
      expect(read.ok && read.object.status.hibernation).toEqual(hibernation);
      const badPhase = await patchStatus({
        ...status,
        hibernation: [{ pod: 'cache-0', phase: 'DOZING' }],
      });
      expect(badPhase).toMatchObject({ ok: false, code: 422 });
      expect(!badPhase.ok && badPhase.message).toContain(
        'status.hibernation[0].phase',
      );

      const badCondition = await patchStatus({
        ...status,
        conditions: [{ ...status.conditions[0], status: 'Maybe' }],
      });
      expect(badCondition).toMatchObject({ ok: false, code: 422 });
      expect(!badCondition.ok && badCondition.message).toContain(
        'status.conditions[0].status',
      );

      const duplicateCondition = await patchStatus({
        ...status,
        conditions: [status.conditions[0], status.conditions[0]],
      });
      expect(duplicateCondition).toMatchObject({ ok: false, code: 422 });

      const table = cluster.kubectl([
        'get',
        'spotpolicies',
        '-n',
        NAMESPACE,
        'with-status',
      ]);
      expect(table.split('\n')[0].split(/\s+/)).toEqual(
        expect.arrayContaining([
          'KIND',
          'WORKLOAD',
          'ENABLED',
          'PERMANENT',
          'READY',
          'MEMBERS',
          'AVAILABILITY',
          'SAVED-USD',
          'AGE',
        ]),
      );
      expect(table.split('\n')[1].split(/\s+/)).toEqual(
        expect.arrayContaining([
          'with-status',
          'StatefulSet',
          'cache',
          'true',
          '0.3',
          'True',
          '3',
          '2.5',
        ]),
      );
    });
  });

  describe('Migration', () => {
    it('accepts a move and shows it in kubectl get', async () => {
      const result = await create(
        'migrations',
        migration('cache-1-notice', { deadline: '2026-01-01T00:02:00Z' }),
      );
      expect(result).toMatchObject({ ok: true });
      const table = cluster.kubectl([
        'get',
        'mig',
        '-n',
        NAMESPACE,
        'cache-1-notice',
      ]);
      expect(table.split('\n')[0].split(/\s+/)).toEqual(
        expect.arrayContaining([
          'WORKLOAD',
          'POD',
          'REASON',
          'DRIVER',
          'PHASE',
          'FROM',
          'TO',
        ]),
      );
      expect(table).toContain('spot-m5-large-us-east-1a');
    });

    it.each([
      ['an unknown reason', { reason: 'whim' }, 'spec.reason'],
      [
        'the auto driver, which is a policy choice and not a driver',
        { driver: 'auto' },
        'spec.driver',
      ],
      ['a deadline that is not a time', { deadline: 'soon' }, 'spec.deadline'],
      ['no source node', { sourceNode: '' }, 'spec.sourceNode'],
    ])('rejects %s', async (_, spec, field) => {
      const result = await create(
        'migrations',
        migration(`bad-${++rejected}`, spec),
      );
      expect(result).toMatchObject({ ok: false, code: 422 });
      expect(!result.ok && result.message).toContain(field);
    });

    it('keeps what the move was, and lets its phase advance only to known phases', async () => {
      await create('migrations', migration('record', {}));
      const patch = (body: object[], status = false) =>
        attempt(() =>
          (status
            ? objects.patchNamespacedCustomObjectStatus.bind(objects)
            : objects.patchNamespacedCustomObject.bind(objects))({
            group: FERRY_GROUP,
            version: FERRY_VERSION,
            namespace: NAMESPACE,
            plural: 'migrations',
            name: 'record',
            body,
          }),
        );
      const moved = await patch([
        { op: 'replace', path: '/spec/sourceNode', value: 'elsewhere' },
      ]);
      expect(!moved.ok && moved.message).toContain('sourceNode is immutable');

      const target = await patch([
        {
          op: 'add',
          path: '/spec/targetNode',
          value: 'on-demand-m5-large-us-east-1b',
        },
      ]);
      expect(target).toMatchObject({ ok: true });

      const phase = (value: string) =>
        patch(
          [
            {
              op: 'add',
              path: '/status',
              value: {
                phase: value,
                phases: [{ phase: value, startedAt: '2026-01-01T00:00:01Z' }],
                bytesMoved: 1024,
              },
            },
          ],
          true,
        );
      expect(await phase('Transferring')).toMatchObject({ ok: true });
      const unknown = await phase('Exploding');
      expect(unknown).toMatchObject({ ok: false, code: 422 });
      expect(!unknown.ok && unknown.message).toContain('status.phase');
    });

    it('can be listed by source node with a field selector', async () => {
      await create(
        'migrations',
        migration('other-node', {
          pod: 'cache-2',
          sourceNode: 'spot-r5-large-us-east-1c',
        }),
      );
      const list = await objects.listNamespacedCustomObject({
        group: FERRY_GROUP,
        version: FERRY_VERSION,
        namespace: NAMESPACE,
        plural: 'migrations',
        fieldSelector: 'spec.sourceNode=spot-r5-large-us-east-1c',
      });
      expect(list.items.map((m: any) => m.metadata.name)).toEqual([
        'other-node',
      ]);
    });
  });
});
