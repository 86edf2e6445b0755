import type {
  Migration,
  MigrationPhase,
  MigrationSpec,
  SpotPolicy,
} from '../../api/v1alpha1';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import type { CapacityPool, NodeView, WorkloadView } from '../../core/model';
import type { ClusterState } from '../state/ClusterState';
import {
  DisruptionController,
  MAX_MOVE_ATTEMPTS,
} from './DisruptionController';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const RESOURCES = { cpuMillis: 4000, memoryMiB: 16384 };
const REQUESTS = { cpuMillis: 250, memoryMiB: 512 };

function node(
  name: string,
  zone: string,
  capacityType: 'spot' | 'on-demand',
): NodeView {
  return {
    name,
    instanceType: 'm5.xlarge',
    zone,
    capacityType,
    allocatable: RESOURCES,
    free: RESOURCES,
  };
}

function pool(zone: string, capacityType: 'spot' | 'on-demand'): CapacityPool {
  return {
    instanceType: 'm5.xlarge',
    zone,
    capacityType,
    priceUsdPerHour: capacityType === 'spot' ? 0.06 : 0.19,
    onDemandPriceUsdPerHour: 0.19,
    interruptionRisk: 0,
    allocatable: RESOURCES,
    launchable: false,
  };
}

/**
 * The parts of the cluster's picture the controller reads, held in memory: a
 * workload of three members, two of them on nodes that have a notice, and
 * Migrations that the fake machine records as Planned.
 */
class FakeCluster {
  readonly migrations = new Map<string, Migration>();
  set policyMigration(method: SpotPolicy['spec']['migration']) {
    this.policy.spec.migration = method;
  }
  readonly policy: SpotPolicy = {
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'SpotPolicy',
    metadata: { name: 'sessions', namespace: 'shop' },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'sessions' },
      enabled: true,
      permanentRatio: 0.3,
      availabilityTarget: 0.999,
      migration: 'reschedule',
      maxConcurrentMoves: 1,
      predictionHorizonMinutes: 20,
    },
  };
  readonly nodes = [
    node('on-demand-a', 'a', 'on-demand'),
    node('spot-a', 'a', 'spot'),
    node('spot-b', 'b', 'spot'),
    node('spot-c', 'c', 'spot'),
    node('spot-c2', 'c', 'spot'),
  ];
  readonly view: WorkloadView = {
    id: 'shop/sessions',
    members: [
      { pod: 'sessions-0', node: 'on-demand-a' },
      { pod: 'sessions-1', node: 'spot-a' },
      { pod: 'sessions-2', node: 'spot-b' },
    ].map(m => ({ ...m, requests: REQUESTS, ready: true, stateBytes: 1 })),
    permanentRatio: 0.3,
    maxConcurrentMoves: 1,
  };
  readonly signals: DisruptionSignal[] = [
    { node: 'spot-a', reason: 'notice', deadline: NOW + 120_000 },
    { node: 'spot-b', reason: 'notice', deadline: NOW + 120_000 },
  ];

  state(): ClusterState {
    const byName = new Map(this.nodes.map(n => [n.name, n]));
    return {
      workloads: () => [
        {
          policy: this.policy,
          view: {
            ...this.view,
            members: this.view.members.map(m => ({
              ...m,
              moving:
                this.running().some(r => r.spec.pod === m.pod) || undefined,
            })),
          },
        },
      ],
      nodeViews: () => this.nodes,
      nodes: { get: (name: string) => byName.get(name) },
      signals: () => this.signals,
      signalSeenAt: () => NOW,
      migrations: {
        get: (key: string) => this.migrations.get(key),
        list: () => [...this.migrations.values()],
      },
    } as unknown as ClusterState;
  }

  /** Plays the migration engine's `plan`: the Migration exists, Planned. */
  plan = async (
    namespace: string,
    name: string,
    spec: MigrationSpec,
    methodReason?: string,
  ) => {
    const migration: Migration = {
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Migration',
      metadata: { namespace, name },
      spec,
      status: { phase: 'Planned', phases: [], bytesMoved: 0, methodReason },
    };
    this.migrations.set(`${namespace}/${name}`, migration);
    return migration;
  };

  finish(key: string, phase: MigrationPhase): void {
    this.migrations.get(key)!.status!.phase = phase;
  }

  running(): Migration[] {
    return [...this.migrations.values()].filter(
      m => !['Succeeded', 'RolledBack', 'Failed'].includes(m.status!.phase),
    );
  }
}

describe('DisruptionController', () => {
  function controllerOf(cluster: FakeCluster) {
    return new DisruptionController({
      state: cluster.state(),
      machine: { plan: cluster.plan },
      pools: async () => [pool('a', 'on-demand'), pool('c', 'spot')],
      clock: { now: () => NOW },
    });
  }

  it('tries a member whose move rolled back again under a new name, then gives it up so the next member moves', async () => {
    const cluster = new FakeCluster();
    const controller = controllerOf(cluster);

    const tried: string[] = [];
    for (let attempt = 0; attempt < MAX_MOVE_ATTEMPTS; attempt++) {
      const created = await controller.reconcile();
      expect(created).toHaveLength(1);
      expect(cluster.migrations.get(created[0])!.spec.pod).toBe('sessions-1');
      tried.push(created[0]);
      cluster.finish(created[0], 'RolledBack');
    }
    expect(new Set(tried).size).toBe(MAX_MOVE_ATTEMPTS);

    // sessions-1 is given up: it no longer holds the workload's one move slot.
    const next = await controller.reconcile();
    expect(next.map(key => cluster.migrations.get(key)!.spec.pod)).toEqual([
      'sessions-2',
    ]);
    await controller.stop();
  });

  it('gives a drain its own attempts at a member whose re-placement moves off the node rolled back', async () => {
    const cluster = new FakeCluster();
    // Re-placement tried sessions-1 off spot-a MAX_MOVE_ATTEMPTS times, and each rolled back.
    for (let attempt = 0; attempt < MAX_MOVE_ATTEMPTS; attempt++) {
      const reason = attempt % 2 ? 'rebalance' : 'policy';
      const key = `shop/sessions-1-${reason}-${attempt}`;
      await cluster.plan('shop', key.slice('shop/'.length), {
        workloadRef: cluster.policy.spec.workloadRef,
        pod: 'sessions-1',
        sourceNode: 'spot-a',
        targetNode: 'spot-c',
        reason,
        driver: 'valkey',
      });
      cluster.finish(key, 'RolledBack');
    }
    // Then spot-a is drained.
    cluster.signals.splice(0, cluster.signals.length, {
      node: 'spot-a',
      reason: 'drain',
    });
    const controller = controllerOf(cluster);

    const drains: string[] = [];
    for (let attempt = 0; attempt < MAX_MOVE_ATTEMPTS; attempt++) {
      const created = await controller.reconcile();
      expect(created.map(key => cluster.migrations.get(key)!.spec)).toEqual([
        expect.objectContaining({
          pod: 'sessions-1',
          sourceNode: 'spot-a',
          reason: 'drain',
        }),
      ]);
      drains.push(created[0]);
      cluster.finish(created[0], 'RolledBack');
    }
    expect(new Set(drains).size).toBe(MAX_MOVE_ATTEMPTS);
    // Its own attempts used up, the drain gives the member up too.
    expect(await controller.reconcile()).toEqual([]);
    await controller.stop();
  });

  it('plans a move again only once, and not after it succeeded', async () => {
    const cluster = new FakeCluster();
    const controller = controllerOf(cluster);
    const [first] = await controller.reconcile();
    expect(await controller.reconcile()).toEqual([]);
    cluster.finish(first, 'Succeeded');
    // The member has not left its node in this picture: a Succeeded move is not repeated.
    const again = await controller.reconcile();
    expect(
      again.map(key => cluster.migrations.get(key)!.spec.pod),
    ).not.toContain('sessions-1');
    await controller.stop();
  });

  it("records the policy's method, or what auto chose and why, on the Migration", async () => {
    const named = new FakeCluster();
    const [planned] = await controllerOf(named).reconcile();
    expect(named.migrations.get(planned)!.spec.driver).toBe('reschedule');
    expect(named.migrations.get(planned)!.status!.methodReason).toBe(
      'reschedule: the policy names it',
    );

    const auto = new FakeCluster();
    auto.policyMigration = 'auto';
    const asked: string[] = [];
    const chooser = new DisruptionController({
      state: auto.state(),
      machine: { plan: auto.plan },
      pools: async () => [pool('a', 'on-demand'), pool('c', 'spot')],
      clock: { now: () => NOW },
      chooseMethod: async move => {
        asked.push(move.pod);
        return { driver: 'checkpoint', reason: 'checkpoint: measured' };
      },
    });
    const [chosen] = await chooser.reconcile();
    expect(asked).toEqual([auto.migrations.get(chosen)!.spec.pod]);
    expect(auto.migrations.get(chosen)!.spec.driver).toBe('checkpoint');
    expect(auto.migrations.get(chosen)!.status!.methodReason).toBe(
      'checkpoint: measured',
    );
    await chooser.stop();

    // A member that cannot be measured is handed off, and the reason says why.
    const failing = new FakeCluster();
    failing.policyMigration = 'auto';
    const blind = new DisruptionController({
      state: failing.state(),
      machine: { plan: failing.plan },
      pools: async () => [pool('a', 'on-demand'), pool('c', 'spot')],
      clock: { now: () => NOW },
      chooseMethod: async () => {
        throw new Error('connection refused');
      },
    });
    const [fallback] = await blind.reconcile();
    expect(failing.migrations.get(fallback)!.spec.driver).toBe('valkey');
    expect(failing.migrations.get(fallback)!.status!.methodReason).toMatch(
      /^valkey: auto could not measure .*connection refused/,
    );
    await blind.stop();
  });
});
