import type { V1Pod, V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { Migration, SpotPolicy } from '../../api/v1alpha1';
import { SPOT_POLICY_DEFAULTS } from '../../api/v1alpha1';
import {
  isRollingOut,
  membersOf,
  pdbMaxUnavailableOf,
  policyAnnotationsOf,
  provisionalPolicyOf,
  selectorMatches,
  workloadViewOf,
} from './workloadViews';
import { PROVISIONAL_POLICY_ANNOTATION } from '../client/ferryKeys';

const policy: SpotPolicy = {
  apiVersion: 'ferry.dev/v1alpha1',
  kind: 'SpotPolicy',
  metadata: { name: 'sessions', namespace: 'shop' },
  spec: {
    workloadRef: { kind: 'Deployment', name: 'sessions' },
    enabled: true,
    ...SPOT_POLICY_DEFAULTS,
    permanentRatio: 0.34,
  },
};

const deployment = {
  kind: 'Deployment' as const,
  metadata: { name: 'sessions', namespace: 'shop', uid: 'deploy-uid' },
  spec: { replicas: 3, selector: { matchLabels: { app: 'sessions' } } },
};

function pod(
  name: string,
  extra: {
    owner?: string;
    node?: string;
    ready?: boolean;
    labels?: Record<string, string>;
    phase?: string;
    deleting?: boolean;
  } = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'shop',
      labels: extra.labels ?? { app: 'sessions' },
      ownerReferences:
        extra.owner === ''
          ? []
          : [
              {
                apiVersion: 'apps/v1',
                kind: 'ReplicaSet',
                name: extra.owner === undefined ? 'sessions-abc' : 'x',
                uid: extra.owner ?? 'rs-uid',
                controller: true,
              },
            ],
      deletionTimestamp: extra.deleting ? new Date() : undefined,
    },
    spec: {
      nodeName: extra.node,
      containers: [
        {
          name: 'valkey',
          resources: {
            requests: { cpu: '500m', memory: '1Gi' },
            limits: { memory: '2Gi' },
          },
        },
      ],
    },
    status: {
      phase: extra.phase ?? 'Running',
      conditions: [
        { type: 'Ready', status: extra.ready === false ? 'False' : 'True' },
      ],
    },
  };
}

const owners = new Map([
  ['rs-uid', 'deploy-uid'],
  ['other-rs', 'other-deploy'],
]);

describe('isRollingOut', () => {
  const rollout = (
    status: {
      observedGeneration?: number;
      replicas?: number;
      updatedReplicas?: number;
    },
    generation = 2,
  ) => ({
    kind: 'Deployment' as const,
    metadata: { generation },
    spec: { replicas: 3 },
    status,
  });

  it('is true from a template change until every pod is of the new template and the old ones are gone', () => {
    // The controller has not seen the change yet.
    expect(
      isRollingOut(
        rollout({ observedGeneration: 1, replicas: 3, updatedReplicas: 3 }),
      ),
    ).toBe(true);
    // One new pod surged beside the three old ones.
    expect(
      isRollingOut(
        rollout({ observedGeneration: 2, replicas: 4, updatedReplicas: 1 }),
      ),
    ).toBe(true);
    // Three new pods, one old one still terminating in the ReplicaSet's count.
    expect(
      isRollingOut(
        rollout({ observedGeneration: 2, replicas: 4, updatedReplicas: 3 }),
      ),
    ).toBe(true);
    expect(
      isRollingOut(
        rollout({ observedGeneration: 2, replicas: 3, updatedReplicas: 3 }),
      ),
    ).toBe(false);
  });

  it('leaves a StatefulSet updated OnDelete alone', () => {
    const set = (type: string) => ({
      kind: 'StatefulSet' as const,
      metadata: { generation: 2 },
      spec: { replicas: 3, updateStrategy: { type } },
      status: { observedGeneration: 2, replicas: 3, updatedReplicas: 1 },
    });
    expect(isRollingOut(set('RollingUpdate'))).toBe(true);
    expect(isRollingOut(set('OnDelete'))).toBe(false);
  });
});

describe('selectorMatches', () => {
  it.each([
    [{ matchLabels: { app: 'a' } }, { app: 'a', x: 'y' }, true],
    [{ matchLabels: { app: 'a' } }, { app: 'b' }, false],
    [
      {
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['cache', 'db'] },
        ],
      },
      { tier: 'db' },
      true,
    ],
    [
      {
        matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web'] }],
      },
      {},
      true,
    ],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, {}, false],
    [
      { matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }] },
      { app: 'a' },
      true,
    ],
    [{}, { app: 'a' }, true],
    [undefined, { app: 'a' }, false],
  ])('%j against %j is %s', (selector, labels, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
});

describe('membersOf', () => {
  it('takes the live pods its ReplicaSets own, not look-alikes or pods on their way out', () => {
    const pods = [
      pod('sessions-1', { node: 'n1' }),
      pod('sessions-2', { node: 'n2' }),
      pod('lookalike', { owner: 'other-rs' }),
      pod('orphan', { owner: '' }),
      pod('handoff-target', {
        labels: { 'ferry.dev/handoff-of': 'sessions-1' },
      }),
      pod('leaving', { deleting: true }),
      pod('done', { phase: 'Succeeded' }),
    ];
    expect(
      membersOf(deployment, pods, owners).map(p => p.metadata!.name),
    ).toEqual(['sessions-1', 'sessions-2']);
  });
});

describe('pdbMaxUnavailableOf', () => {
  const budget = (
    spec: V1PodDisruptionBudget['spec'],
    namespace = 'shop',
  ): V1PodDisruptionBudget => ({
    metadata: { name: 'b', namespace },
    spec: { selector: { matchLabels: { app: 'sessions' } }, ...spec },
  });
  it.each([
    [[budget({ maxUnavailable: 1 })], 1],
    [[budget({ maxUnavailable: '50%' })], 2],
    [[budget({ minAvailable: 2 })], 1],
    [[budget({ minAvailable: '60%' })], 1],
    [[budget({ minAvailable: 2 }), budget({ maxUnavailable: 0 })], 0],
    [[budget({ maxUnavailable: 1 }, 'elsewhere')], undefined],
    [[], undefined],
  ])('%j allows %s down of 3', (budgets, expected) => {
    expect(pdbMaxUnavailableOf(budgets, 'shop', { app: 'sessions' }, 3)).toBe(
      expected,
    );
  });
});

describe('workloadViewOf', () => {
  it('gives members, their state size and whether they are moving, with the policy and budget', () => {
    const migration = (name: string, phase: string): Migration => ({
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name: `${name}-m`, namespace: 'shop' },
      spec: {
        workloadRef: { kind: 'Deployment', name: 'sessions' },
        pod: name,
        sourceNode: 'n1',
        reason: 'notice',
        driver: 'valkey',
      },
      status: { phase: phase as any, phases: [], bytesMoved: 0 },
    });
    const view = workloadViewOf({
      policy,
      workload: deployment,
      pods: [
        pod('sessions-2', { node: 'n2', ready: false }),
        pod('sessions-1', { node: 'n1' }),
        pod('pending'),
      ],
      replicaSetOwners: owners,
      budgets: [
        {
          metadata: { name: 'b', namespace: 'shop' },
          spec: {
            selector: { matchLabels: { app: 'sessions' } },
            maxUnavailable: 1,
          },
        },
      ],
      migrations: [
        migration('sessions-1', 'Transferring'),
        migration('sessions-2', 'Succeeded'),
      ],
    });
    expect(view).toEqual({
      id: 'shop/sessions',
      permanentRatio: 0.34,
      maxConcurrentMoves: 1,
      pdbMaxUnavailable: 1,
      members: [
        {
          pod: 'pending',
          node: undefined,
          requests: { cpuMillis: 500, memoryMiB: 1024 },
          ready: true,
          stateBytes: 2 * 2 ** 30,
          moving: undefined,
        },
        {
          pod: 'sessions-1',
          node: 'n1',
          requests: { cpuMillis: 500, memoryMiB: 1024 },
          ready: true,
          stateBytes: 2 * 2 ** 30,
          moving: true,
        },
        {
          pod: 'sessions-2',
          node: 'n2',
          requests: { cpuMillis: 500, memoryMiB: 1024 },
          ready: false,
          stateBytes: 2 * 2 ** 30,
          moving: undefined,
        },
      ],
    });
  });
});

describe('provisionalPolicyOf', () => {
  const workload = (annotations: Record<string, string>) => ({
    kind: 'Deployment' as const,
    namespace: 'default',
    name: 'valkey',
    annotations,
  });

  it('opts a workload in from its annotations, the rest from the defaults, marked as not written', () => {
    const provisional = provisionalPolicyOf(
      workload({
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0',
      }),
    );
    expect(provisional?.spec).toEqual({
      ...SPOT_POLICY_DEFAULTS,
      enabled: true,
      permanentRatio: 0,
      workloadRef: { kind: 'Deployment', name: 'valkey' },
    });
    expect(provisional?.metadata.annotations).toEqual({
      [PROVISIONAL_POLICY_ANNOTATION]: 'true',
    });
  });

  it.each([
    [{ 'ferry.dev/spot': 'disabled' }],
    [{ 'ferry.dev/spot': 'on' }],
    [{ 'ferry.dev/permanent-ratio': '0.5' }],
  ])('has none for %p', annotations => {
    expect(provisionalPolicyOf(workload(annotations))).toBeUndefined();
  });
});

describe('policyAnnotationsOf', () => {
  it("takes the pod template's policy annotations, the workload's own winning, and nothing else", () => {
    expect(
      policyAnnotationsOf(
        {
          'ferry.dev/migration': 'volume',
          'deployment.kubernetes.io/revision': '2',
        },
        { 'ferry.dev/migration': 'valkey', 'ferry.dev/spot': 'enabled' },
      ),
    ).toEqual({ 'ferry.dev/migration': 'volume', 'ferry.dev/spot': 'enabled' });
  });
});
