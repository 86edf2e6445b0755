import type { Migration, SpotPolicy } from '../../api/v1alpha1';
import type { NodeView, WorkloadView } from '../../core/model';
import { PriceBook } from '../pools/PoolPriceFeed';
import type { V1Pod } from '@kubernetes/client-node';
import {
  AccountedSpotPolicyStatus,
  memberHibernationOf,
  spotPolicyStatusOf,
  SpotPolicyStatusInput,
  statusNeedsWrite,
} from './spotPolicyStatus';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const HOUR = 3_600_000;

function node(
  name: string,
  capacityType: 'spot' | 'on-demand',
  zone = 'us-east-1a',
): NodeView {
  const allocatable = { cpuMillis: 2000, memoryMiB: 8192 };
  return {
    name,
    instanceType: 'm5.large',
    zone,
    capacityType,
    allocatable,
    free: allocatable,
  };
}

const NODES = new Map(
  [
    node('spot-a', 'spot', 'us-east-1a'),
    node('spot-b', 'spot', 'us-east-1b'),
    node('od-a', 'on-demand', 'us-east-1a'),
  ].map(n => [n.name, n]),
);

/** m5.large: 0.096 on demand, 0.032 on spot in both zones. */
function pricedBook(): PriceBook {
  const source = { source: 'test' };
  return new PriceBook()
    .setOnDemand('us-east-1', 'm5.large', { usdPerHour: 0.096, ...source })
    .setSpot('us-east-1a', 'm5.large', { usdPerHour: 0.032, ...source })
    .setSpot('us-east-1b', 'm5.large', { usdPerHour: 0.032, ...source });
}

/** Three members taking a whole node each (1 CPU of 2, 8 GiB of 8). */
function view(ready = [true, true, true]): WorkloadView {
  const nodes = ['spot-a', 'spot-b', 'od-a'];
  return {
    id: 'shop/cache',
    members: nodes.map((n, i) => ({
      pod: `cache-${i}`,
      node: n,
      requests: { cpuMillis: 1000, memoryMiB: 8192 },
      ready: ready[i],
      stateBytes: 0,
    })),
    permanentRatio: 0.3,
    maxConcurrentMoves: 1,
  };
}

function policy(status?: AccountedSpotPolicyStatus, target = 0.99): SpotPolicy {
  return {
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'SpotPolicy',
    metadata: { name: 'cache', namespace: 'shop', generation: 3 },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      enabled: true,
      permanentRatio: 0.3,
      availabilityTarget: target,
      migration: 'auto',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    },
    status,
  };
}

function migration(name: string, createdAt: string): Migration {
  return {
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name, namespace: 'shop', creationTimestamp: createdAt },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      pod: 'cache-0',
      sourceNode: 'spot-a',
      reason: 'notice',
      driver: 'valkey',
    },
  };
}

function input(
  overrides: Partial<SpotPolicyStatusInput> = {},
): SpotPolicyStatusInput {
  return {
    policy: policy(),
    workload: { view: view(), replicas: 3 },
    workloadFound: true,
    nodes: NODES,
    prices: pricedBook(),
    migrations: [],
    now: T0,
    ...overrides,
  };
}

const condition = (s: AccountedSpotPolicyStatus, type: string) =>
  s.conditions.find(c => c.type === type);

describe('spotPolicyStatusOf', () => {
  it("shows each spot member's pool risk, rounded so that its decay alone asks for no write, and none on permanent capacity", () => {
    const riskOf = (pool: NodeView) =>
      pool.zone === 'us-east-1a' ? 0.26349 : 0.00842;
    const status = spotPolicyStatusOf(input({ riskOf }));
    expect(status.replicas.map(r => [r.node, r.interruptionRisk])).toEqual([
      ['spot-a', 0.263],
      ['spot-b', 0.008],
      ['od-a', 0],
    ]);
    const later = spotPolicyStatusOf(
      input({
        riskOf: pool => riskOf(pool) - 0.0002,
        policy: policy(status),
        now: T0 + 1000,
      }),
    );
    expect(statusNeedsWrite(status, later, T0 + 1000, HOUR)).toBe(false);
    expect(
      spotPolicyStatusOf(input()).replicas.map(r => r.interruptionRisk),
    ).toEqual([0, 0, 0]);
  });

  it('places each member on its node and capacity, priced at its share of the node', () => {
    const status = spotPolicyStatusOf(input());
    expect(status.observedGeneration).toBe(3);
    expect(status.replicas).toEqual([
      expect.objectContaining({
        pod: 'cache-0',
        node: 'spot-a',
        capacityType: 'spot',
        zone: 'us-east-1a',
        hourlyCostUsd: 0.032,
      }),
      expect.objectContaining({ pod: 'cache-1', capacityType: 'spot' }),
      expect.objectContaining({
        pod: 'cache-2',
        capacityType: 'on-demand',
        hourlyCostUsd: 0.096,
      }),
    ]);
    expect(status.cost.hourlyCostUsd).toBeCloseTo(0.16);
    expect(status.cost.onDemandHourlyCostUsd).toBeCloseTo(0.288);
    expect(status.availability).toMatchObject({
      requiredMembers: 2,
      readyMembers: 3,
    });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Placed',
      observedGeneration: 3,
    });
    expect(condition(status, 'PricesKnown')?.status).toBe('True');
  });

  it('accrues spend and savings over the interval at the rates the last status recorded', () => {
    const first = spotPolicyStatusOf(input());
    // Two hours on; meanwhile a member moved to on-demand, which costs from now on.
    const moved = view();
    moved.members[0].node = 'od-a';
    const second = spotPolicyStatusOf(
      input({
        policy: policy(first),
        workload: { view: moved, replicas: 3 },
        now: T0 + 2 * HOUR,
      }),
    );
    expect(second.cost.spendToDateUsd).toBeCloseTo(0.32);
    expect(second.cost.savingsToDateUsd).toBeCloseTo(0.576 - 0.32);
    expect(second.cost.hourlyCostUsd).toBeCloseTo(0.224);
    const third = spotPolicyStatusOf(
      input({ policy: policy(second), now: T0 + 3 * HOUR }),
    );
    expect(third.cost.spendToDateUsd).toBeCloseTo(0.32 + 0.224);
  });

  it('continues from the accounting a status persisted, as a new leader does from a read status', () => {
    const first = spotPolicyStatusOf(input());
    const second = spotPolicyStatusOf(
      input({ policy: policy(first), now: T0 + HOUR }),
    );
    // What the API server hands back: plain JSON.
    const reread = JSON.parse(JSON.stringify(second));
    const third = spotPolicyStatusOf(
      input({ policy: policy(reread), now: T0 + 2 * HOUR }),
    );
    expect(third.cost.spendToDateUsd).toBeCloseTo(0.32);
    expect(third.accounting?.observedSeconds).toBe(7200);
  });

  it('counts time below quorum against the target and says when the budget is spent', () => {
    const up = spotPolicyStatusOf(input());
    const down = spotPolicyStatusOf(
      input({
        policy: policy(up),
        workload: { view: view([true, false, false]), replicas: 3 },
        now: T0 + 99 * HOUR,
      }),
    );
    expect(condition(down, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'BelowQuorum',
    });
    expect(condition(down, 'AvailabilityTargetMet')?.status).toBe('True');
    const after = spotPolicyStatusOf(
      input({ policy: policy(down), now: T0 + 101 * HOUR }),
    );
    expect(after.availability.observed).toBeCloseTo(99 / 101);
    expect(after.availability.errorBudgetRemaining).toBeLessThan(0);
    expect(condition(after, 'AvailabilityTargetMet')).toMatchObject({
      status: 'False',
      reason: 'ErrorBudgetExhausted',
    });
  });

  it('leaves unpriced members out of cost and savings, and says which and why', () => {
    const book = new PriceBook().setOnDemand('us-east-1', 'm5.large', {
      usdPerHour: 0.096,
      source: 'table',
    });
    const first = spotPolicyStatusOf(input({ prices: book }));
    expect(first.replicas.map(r => r.hourlyCostUsd)).toEqual([0, 0, 0.096]);
    expect(first.cost.hourlyCostUsd).toBeCloseTo(0.096);
    expect(first.cost.onDemandHourlyCostUsd).toBeCloseTo(0.096);
    const later = spotPolicyStatusOf(
      input({ policy: policy(first), prices: book, now: T0 + HOUR }),
    );
    expect(later.cost.savingsToDateUsd).toBeCloseTo(0);
    expect(condition(later, 'PricesKnown')).toMatchObject({
      status: 'False',
      reason: 'PriceUnknown',
    });
    expect(condition(later, 'PricesKnown')?.message).toContain(
      'cache-0 (m5.large in us-east-1a: no spot price)',
    );
  });

  it('names at most ten unpriced members, so the message stays within what the API server takes', () => {
    const many = view();
    many.members = Array.from({ length: 25 }, (_, i) => ({
      ...many.members[0],
      pod: `cache-${i}`,
    }));
    const status = spotPolicyStatusOf(
      input({
        prices: new PriceBook(),
        workload: { view: many, replicas: 25 },
      }),
    );
    const message = condition(status, 'PricesKnown')!.message;
    expect(message).toContain('leave out 25 of 25 replicas');
    expect(message).toContain('cache-9 (');
    expect(message).not.toContain('cache-10 (');
    expect(message).toContain('and 15 more');
  });

  it('requires no members of a workload scaled to zero, and does not count it down', () => {
    const first = spotPolicyStatusOf(
      input({ workload: { view: { ...view(), members: [] }, replicas: 0 } }),
    );
    expect(condition(first, 'Ready')?.status).toBe('True');
    const later = spotPolicyStatusOf(
      input({
        policy: policy(first),
        workload: { view: { ...view(), members: [] }, replicas: 0 },
        now: T0 + HOUR,
      }),
    );
    expect(later.availability).toMatchObject({
      observed: 1,
      requiredMembers: 0,
    });
    expect(later.accounting?.downSeconds).toBe(0);
  });

  it('names a missing workload and an opted-out policy, and accrues nothing for them', () => {
    const missing = spotPolicyStatusOf(
      input({ workload: undefined, workloadFound: false }),
    );
    expect(condition(missing, 'Ready')).toMatchObject({
      reason: 'WorkloadNotFound',
    });
    expect(condition(missing, 'Ready')?.message).toContain(
      'no StatefulSet cache in namespace shop',
    );
    const later = spotPolicyStatusOf(
      input({
        policy: policy(missing),
        workload: undefined,
        workloadFound: false,
        now: T0 + HOUR,
      }),
    );
    expect(later.accounting?.observedSeconds).toBe(0);
    expect(later.cost.spendToDateUsd).toBe(0);

    const optedOut = policy();
    optedOut.spec.enabled = false;
    const disabled = spotPolicyStatusOf(
      input({ policy: optedOut, workload: undefined, workloadFound: true }),
    );
    expect(condition(disabled, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'OptedOut',
    });
    expect(disabled.availability.requiredMembers).toBe(0);
  });

  it('counts Migrations once, also after old ones are collected', () => {
    const first = spotPolicyStatusOf(
      input({
        migrations: [
          migration('m-1', '2026-11-01T00:00:00Z'),
          migration('m-2', '2026-11-01T00:00:05Z'),
        ],
      }),
    );
    expect(first.migrationsTotal).toBe(2);
    expect(first.lastMigration).toBe('m-2');
    // m-1 was collected; m-3 appeared in the same second as m-2.
    const second = spotPolicyStatusOf(
      input({
        policy: policy(first),
        migrations: [
          migration('m-2', '2026-11-01T00:00:05Z'),
          migration('m-3', '2026-11-01T00:00:05Z'),
        ],
      }),
    );
    expect(second.migrationsTotal).toBe(3);
    expect(second.lastMigration).toBe('m-3');
    const third = spotPolicyStatusOf(
      input({ policy: policy(second), migrations: [] }),
    );
    expect(third.migrationsTotal).toBe(3);
    expect(third.lastMigration).toBe('m-3');
  });
});

describe('hibernation on the status', () => {
  const refusal =
    'it keeps 1 connection of its own open to other services (10.0.0.7:5432), which would time out while it sleeps';
  function pod(
    name: string,
    label?: string,
    refused?: string,
  ): V1Pod | undefined {
    return {
      metadata: {
        name,
        labels: label ? { 'ferry.dev/hibernation': label } : {},
        annotations: refused
          ? { 'ferry.dev/hibernation-refused': refused }
          : {},
      },
    };
  }

  it("reads each member's phase and refusal from its pod, and leaves out members that take no part", () => {
    expect(
      memberHibernationOf([
        pod('cache-2', 'SCALED_DOWN'),
        pod('cache-1'),
        undefined,
        pod('cache-0', 'RUNNING', refusal),
        pod('cache-3', 'SLEEPY'),
      ]),
    ).toEqual([
      { pod: 'cache-0', phase: 'RUNNING', refusal },
      { pod: 'cache-2', phase: 'SCALED_DOWN' },
    ]);
  });

  it('says it on the status of a policy with spot disabled too, and writes it empty once no member takes part', () => {
    const disabled = policy();
    disabled.spec.enabled = false;
    const members = [{ pod: 'cache-0', refusal }];
    const status = spotPolicyStatusOf(
      input({ policy: disabled, workload: undefined, hibernation: members }),
    );
    expect(status.hibernation).toEqual(members);
    expect(statusNeedsWrite(undefined, status, T0, HOUR)).toBe(true);
    const after = spotPolicyStatusOf(
      input({ policy: policy(status), hibernation: [], now: T0 + 1_000 }),
    );
    expect(after.hibernation).toEqual([]);
    expect(statusNeedsWrite(status, after, T0 + 1_000, HOUR)).toBe(true);
    // Nothing to say and nothing said before: the field stays away.
    expect(
      'hibernation' in spotPolicyStatusOf(input({ hibernation: [] })),
    ).toBe(false);
  });
});

describe('statusNeedsWrite', () => {
  it('writes on a change a person sees, or once the accruals are a refresh old', () => {
    const first = spotPolicyStatusOf(input());
    const same = spotPolicyStatusOf(
      input({ policy: policy(first), now: T0 + 10_000 }),
    );
    expect(statusNeedsWrite(first, same, T0 + 10_000, 60_000)).toBe(false);
    // Keys in the order the API server returns them make no difference.
    const sorted = JSON.parse(
      JSON.stringify(first, (_k, v) =>
        v && typeof v === 'object' && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).sort())
          : v,
      ),
    );
    expect(statusNeedsWrite(sorted, same, T0 + 10_000, 60_000)).toBe(false);
    expect(statusNeedsWrite(first, same, T0 + 60_000, 60_000)).toBe(true);
    const notReady = spotPolicyStatusOf(
      input({
        policy: policy(first),
        workload: { view: view([true, true, false]), replicas: 3 },
        now: T0 + 10_000,
      }),
    );
    expect(statusNeedsWrite(first, notReady, T0 + 10_000, 60_000)).toBe(true);
    expect(statusNeedsWrite(undefined, first, T0, 60_000)).toBe(true);
  });
});
