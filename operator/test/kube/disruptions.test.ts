/**
 * Disruption signals on a real cluster become Migrations: an AWS Node Termination
 * Handler taint and a `kubectl cordon` on nodes of an opted-in Deployment's
 * members, seen through the watches, planned by the decision core, recorded as
 * Migration objects.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import type { CapacityPool } from '../../src/core/model';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { ClusterState } from '../../src/kube/state/ClusterState';
import { DisruptionController } from '../../src/kube/controllers/DisruptionController';
import { EventRecorder } from '../../src/kube/client/EventRecorder';
import { kubeInformers } from '../../src/kube/informers/kubeInformers';
import { KubeMigrationStore } from '../../src/kube/stores/KubeMigrationStore';
import { OperatorMetrics } from '../../src/kube/metrics/OperatorMetrics';
import { MIGRATIONS } from '../../src/kube/client/resources';
import { MigrationRunner } from '../../src/kube/controllers/MigrationRunner';
import type { MigrationDriver } from '../../src/migration/MigrationDriver';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';
import {
  createFakeNodes,
  FAKE_INSTANCE_TYPES,
  FakeInstanceType,
  standardFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { until } from './until';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';

/** Stands in for the valkey driver: kwok's pods run nothing to move state between. */
const instantDriver: MigrationDriver = {
  method: 'valkey',
  prepareTarget: async () => {},
  transfer: async ctx => ctx.addBytesMoved(1 << 20),
  switchOver: async ctx => ctx.recordWritePause(2),
  verify: async () => {},
  cleanUp: async () => {},
  rollBack: async () => {},
};

/** The fleet's pools as a cloud provider would offer them: spot at a third of on-demand. */
function fleetPools(): CapacityPool[] {
  const pools: CapacityPool[] = [];
  for (const spec of standardFleet()) {
    const shape = FAKE_INSTANCE_TYPES[spec.instanceType as FakeInstanceType];
    const onDemand = Number(shape.cpu) * 0.048;
    pools.push({
      instanceType: spec.instanceType,
      zone: spec.zone,
      capacityType: spec.capacityType,
      priceUsdPerHour: spec.capacityType === 'spot' ? onDemand / 3 : onDemand,
      onDemandPriceUsdPerHour: onDemand,
      interruptionRisk: spec.capacityType === 'spot' ? 0.05 : 0,
      allocatable: {
        cpuMillis: Number(shape.cpu) * 1000,
        memoryMiB: Number(shape.memory.replace('Gi', '')) * 1024,
      },
      launchable: true,
    });
  }
  return pools;
}

describe('disruption signals on a real cluster', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let state: ClusterState;
  let controller: DisruptionController;
  let runner: MigrationRunner;
  const metrics = new OperatorMetrics({ processMetrics: false });
  const errors: unknown[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, standardFleet());
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await createOptedInSessions(kc, NAMESPACE, { migration: 'valkey' });

    state = new ClusterState({
      informers: kubeInformers(kc),
      onChange: change => {
        controller?.changed();
        if (change.kind === 'migration' && change.event.type !== 'DELETED') {
          runner?.changed(change.event.object);
        }
      },
      onError: error => errors.push(error),
    });
    const machine = new MigrationStateMachine({
      store: new KubeMigrationStore(kc),
      drivers: [instantDriver],
      clock: systemClock,
    });
    const events = new EventRecorder({
      kubeConfig: kc,
      instance: 'test-operator',
    });
    runner = new MigrationRunner({
      machine,
      lookup: key => state.migrations.get(key),
      events,
      metrics,
      onError: error => errors.push(error),
    });
    controller = new DisruptionController({
      state,
      machine,
      pools: async () => fleetPools(),
      events,
      metrics,
      onError: error => errors.push(error),
    });
    await state.start();
  }, 180_000);

  afterAll(async () => {
    await runner?.stop();
    await controller?.stop();
    state?.stop();
    await cluster?.stop();
  });

  async function members() {
    return until(
      'three members ready',
      () => {
        const ready = state.workloads()[0]?.view.members ?? [];
        return ready.length === 3 && ready.every(m => m.node && m.ready)
          ? ready
          : undefined;
      },
      { timeoutMs: 30_000, detail: () => JSON.stringify(state.workloads()) },
    );
  }

  async function migrationFor(pod: string): Promise<Migration> {
    return until(
      `a Migration for ${pod}`,
      async () => {
        const list = await migrationsIn(cluster.kubeConfig(), NAMESPACE);
        // The status follows the create in a second write.
        return list.find(m => m.spec.pod === pod && m.status);
      },
      {
        timeoutMs: 30_000,
        intervalMs: 20,
        detail: () => `errors: ${errors.join('; ')}`,
      },
    );
  }

  async function migrationIn(name: string, phase: string): Promise<Migration> {
    let last: Migration | undefined;
    return until(
      `${name} to be ${phase}`,
      async () => {
        last = await apiRequest<Migration>(
          cluster.kubeConfig(),
          'GET',
          `${collectionPath(MIGRATIONS, NAMESPACE)}/${name}`,
        );
        return last.status?.phase === phase ? last : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        detail: () =>
          `it is ${last?.status?.phase}; errors: ${errors.join('; ')}`,
      },
    );
  }

  it('sees the opted-in workload and its members on spot nodes', async () => {
    const found = await members();
    expect(found.map(m => m.node)).toEqual([
      expect.stringMatching(/^spot-/),
      expect.stringMatching(/^spot-/),
      expect.stringMatching(/^spot-/),
    ]);
    expect(state.signals()).toEqual([]);
  });

  it('plans a move for a member whose node gets a spot interruption taint', async () => {
    const [member] = await members();
    const tainted = Date.now();
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${member.node}`,
      {
        contentType: 'application/merge-patch+json',
        body: {
          spec: {
            taints: [
              {
                key: 'aws-node-termination-handler/spot-itn',
                value: 'evt-1',
                effect: 'NoSchedule',
              },
            ],
          },
        },
      },
    );
    const migration = await migrationFor(member.pod);
    const latencyMs = Date.now() - tainted;
    process.stdout.write(`taint to Migration: ${latencyMs} ms\n`);
    expect(migration.spec).toMatchObject({
      workloadRef: { kind: 'Deployment', name: 'sessions' },
      pod: member.pod,
      sourceNode: member.node,
      reason: 'notice',
      driver: 'valkey',
    });
    expect(Date.parse(migration.spec.deadline!)).toBeGreaterThan(
      tainted + 100_000,
    );
    expect(migration.spec.targetNode).not.toBe(member.node);
    expect(latencyMs).toBeLessThan(5_000);
    const done = await migrationIn(migration.metadata.name, 'Succeeded');
    expect(done.status).toMatchObject({ bytesMoved: 1 << 20, writePauseMs: 2 });
    const events = cluster.kubectl([
      'get',
      'events',
      '-n',
      NAMESPACE,
      '--field-selector',
      'reason=MigrationPlanned',
      '-o',
      'name',
    ]);
    expect(events).toContain(member.pod);
  });

  it('plans a move for a member whose node is cordoned, once the move before it is done', async () => {
    const found = await members();
    // Moves of one workload are serial: finish the first (its member left the
    // tainted node, which is gone) before the next signal.
    const first = (await migrationsIn(cluster.kubeConfig(), NAMESPACE))[0];
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `${collectionPath(MIGRATIONS, NAMESPACE)}/${first.metadata.name}/status`,
      {
        contentType: 'application/merge-patch+json',
        body: { status: { phase: 'Succeeded' } },
      },
    );
    await core.deleteNode({ name: first.spec.sourceNode });
    const member = found.find(
      m => m.pod !== first.spec.pod && m.node !== first.spec.sourceNode,
    )!;
    cluster.kubectl(['cordon', member.node!]);
    const migration = await migrationFor(member.pod);
    expect(migration.spec).toMatchObject({
      sourceNode: member.node,
      reason: 'drain',
    });
    expect(migration.spec.deadline).toBeUndefined();
    expect(await metrics.registry.metrics()).toMatch(
      /ferry_signal_to_migration_seconds_count\{reason="drain"\} 1/,
    );
    expect(errors).toEqual([]);
  });
});
