import type { V1Pod } from '@kubernetes/client-node';
import type {
  Migration,
  MigrationMethod,
  SpotPolicy,
} from '../../api/v1alpha1';
import type { CapacityPool, NodeView, WorkloadView } from '../../core/model';
import type { ClusterState } from '../state/ClusterState';
import { FERRY_RUNTIME_CLASS, PodPlacer } from './PodPlacer';
import {
  MEMBER_READY_GATE,
  RESTORE_FROM_ANNOTATION,
} from '../client/ferryKeys';

const NAMESPACE = 'shop';
const TARGET = 'on-demand-b';

const policy = {
  metadata: { name: 'cache', namespace: NAMESPACE },
  spec: {
    workloadRef: { kind: 'StatefulSet', name: 'cache' },
    enabled: true,
    permanentRatio: 0.34,
    availabilityTarget: 0.99,
    migration: 'valkey',
    maxConcurrentMoves: 1,
    predictionHorizonMinutes: 30,
  },
} as SpotPolicy;

const view: WorkloadView = {
  id: `${NAMESPACE}/cache`,
  members: [],
  permanentRatio: 0.34,
  maxConcurrentMoves: 1,
};

function migrationOf(
  pod: string,
  driver: Exclude<MigrationMethod, 'auto'>,
  phase: string,
): Migration {
  return {
    metadata: { name: `${pod}-move`, namespace: NAMESPACE },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: 'cache' },
      pod,
      sourceNode: 'spot-1-a',
      targetNode: TARGET,
      reason: 'notice',
      driver,
    },
    status: { phase, phases: [], bytesMoved: 0 },
  } as unknown as Migration;
}

/** The parts of the cluster state the placer reads: one workload, its Migrations, the nodes. */
function stateOf(
  entry: () => { policy: SpotPolicy; view: WorkloadView; replicas: number },
  migrations: Migration[],
  nodes: NodeView[] = [],
  /** The fleet's other opted-in workloads. */
  others: { view: WorkloadView }[] = [],
): ClusterState {
  return {
    workloadOfPod: (pod: V1Pod) => {
      const owner = pod.metadata?.ownerReferences?.find(ref => ref.controller);
      return owner?.kind === 'StatefulSet'
        ? { kind: 'StatefulSet', name: owner.name }
        : undefined;
    },
    workload: (namespace: string, kind: string, name: string) => {
      const found = entry();
      const ref = found.policy.spec.workloadRef;
      return found.policy.metadata.namespace === namespace &&
        ref.kind === kind &&
        ref.name === name
        ? found
        : undefined;
    },
    migrationsOfPod: (namespace: string, pod: string) =>
      migrations.filter(
        m => m.metadata.namespace === namespace && m.spec.pod === pod,
      ),
    nodeViewsByName: () => new Map(nodes.map(n => [n.name, n])),
    workloads: () => [entry(), ...others],
  } as unknown as ClusterState;
}

/** The cluster picture the placer reads: one opted-in StatefulSet and the Migrations given. */
function placerWith(
  migrations: Migration[],
  options: { method?: MigrationMethod; ferryRuntimeClass?: boolean } = {},
): PodPlacer {
  const withMethod = {
    ...policy,
    spec: { ...policy.spec, migration: options.method ?? 'valkey' },
  };
  const state = stateOf(
    () => ({ policy: withMethod, view, replicas: 3 }),
    migrations,
  );
  return new PodPlacer(
    state,
    () => 0,
    () => options.ferryRuntimeClass ?? false,
  );
}

function statefulSetPod(name: string, owner = 'StatefulSet'): V1Pod {
  return {
    metadata: {
      name,
      namespace: NAMESPACE,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: owner,
          name: 'cache',
          uid: 'u',
          controller: true,
        },
      ],
    },
    spec: { containers: [{ name: 'valkey', image: 'valkey/valkey:8' }] },
  };
}

const pools: CapacityPool[] = [];
const create = {
  namespace: NAMESPACE,
  operation: 'CREATE' as const,
  dryRun: false,
};

function gateOps(ops: { op: string; path: string; value?: unknown }[]) {
  return ops.filter(op => op.path === '/spec/readinessGates');
}

describe('the placement webhook and the readiness gate of a recreated member', () => {
  it('gives the gate to the StatefulSet recreation of a member whose valkey Migration is under way, pinned to the target', () => {
    const placer = placerWith([
      migrationOf('cache-1', 'valkey', 'SwitchingOver'),
    ]);
    const ops = placer.patch(statefulSetPod('cache-1'), create, pools);
    expect(gateOps(ops)).toEqual([
      {
        op: 'add',
        path: '/spec/readinessGates',
        value: [{ conditionType: MEMBER_READY_GATE }],
      },
    ]);
    expect(JSON.stringify(ops)).toContain(TARGET);
  });

  it('keeps the readiness gates the template already has', () => {
    const placer = placerWith([migrationOf('cache-1', 'valkey', 'Verifying')]);
    const pod = statefulSetPod('cache-1');
    pod.spec!.readinessGates = [{ conditionType: 'example.com/warm' }];
    expect(gateOps(placer.patch(pod, create, pools))).toEqual([
      {
        op: 'add',
        path: '/spec/readinessGates',
        value: [
          { conditionType: 'example.com/warm' },
          { conditionType: MEMBER_READY_GATE },
        ],
      },
    ]);
  });

  it('gives no gate to other members, to members of a finished or non-valkey Migration, nor on an update', () => {
    const placer = placerWith([
      migrationOf('cache-1', 'valkey', 'Verifying'),
      migrationOf('cache-2', 'valkey', 'Succeeded'),
      migrationOf('cache-0', 'volume', 'SwitchingOver'),
    ]);
    for (const name of ['cache-0', 'cache-2', 'cache-3']) {
      expect(
        gateOps(placer.patch(statefulSetPod(name), create, pools)),
      ).toEqual([]);
    }
    expect(
      gateOps(
        placer.patch(
          statefulSetPod('cache-1'),
          { ...create, operation: 'UPDATE' },
          pools,
        ),
      ),
    ).toEqual([]);
  });
});

describe('the placement webhook and the permanent floor', () => {
  const RESOURCES = { cpuMillis: 4000, memoryMiB: 16384 };
  const nodes = [
    { name: 'on-demand-a', capacityType: 'on-demand', zone: 'a' },
    { name: 'spot-a', capacityType: 'spot', zone: 'a' },
    { name: 'spot-b', capacityType: 'spot', zone: 'b' },
  ].map(n => ({
    ...n,
    instanceType: 'm5.xlarge',
    allocatable: RESOURCES,
    free: RESOURCES,
  }));
  const nodePools = nodes.map(n => ({
    instanceType: n.instanceType,
    zone: n.zone,
    capacityType: n.capacityType,
    priceUsdPerHour: 1,
    onDemandPriceUsdPerHour: 1,
    interruptionRisk: 0,
    allocatable: RESOURCES,
    launchable: false,
  })) as CapacityPool[];

  it('counts a decision once: when its pod is on a node it is a member, not also a decision still arriving', () => {
    // Five members at 0.3 keep two on permanent capacity. A StatefulSet creates
    // them one at a time, each once the one before is running.
    const running: { pod: string; node: string }[] = [];
    const state = stateOf(
      () => ({
        policy: { ...policy, spec: { ...policy.spec, permanentRatio: 0.3 } },
        view: {
          ...view,
          permanentRatio: 0.3,
          members: running.map(m => ({
            ...m,
            requests: { cpuMillis: 250, memoryMiB: 512 },
            ready: true,
            stateBytes: 0,
          })),
        },
        replicas: 5,
      }),
      [],
      nodes as NodeView[],
    );
    const placer = new PodPlacer(state, () => 0);

    const capacityTypes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const pod = statefulSetPod(`cache-${i}`);
      const ops = placer.patch(pod, create, nodePools);
      const annotated = ops.find(op => op.path === '/metadata/annotations');
      const annotations = (annotated as { value: Record<string, string> })
        .value;
      const capacityType = annotations['ferry.dev/placement'].split(' ')[0];
      capacityTypes.push(capacityType);
      // The scheduler binds it and the watch shows it on a node.
      const node = nodes.find(n => n.capacityType === capacityType)!.name;
      running.push({ pod: `cache-${i}`, node });
      placer.podChanged(
        {
          ...pod,
          metadata: { ...pod.metadata, annotations },
          spec: { ...pod.spec!, nodeName: node },
        },
        false,
      );
    }
    expect(capacityTypes).toEqual([
      'on-demand',
      'on-demand',
      'spot',
      'spot',
      'spot',
    ]);
  });
});

describe('the placement webhook and the checkpoint runtime class', () => {
  const runtimeClassOps = (ops: { path: string; value?: unknown }[]) =>
    ops.filter(op => op.path === '/spec/runtimeClassName');

  it.each(['checkpoint', 'auto'] as MigrationMethod[])(
    'gives runtimeClassName ferry to a member whose method is %s when the cluster has the RuntimeClass',
    method => {
      const placer = placerWith([], { method, ferryRuntimeClass: true });
      expect(
        runtimeClassOps(placer.patch(statefulSetPod('cache-0'), create, pools)),
      ).toEqual([
        {
          op: 'add',
          path: '/spec/runtimeClassName',
          value: FERRY_RUNTIME_CLASS,
        },
      ]);
    },
  );

  it('leaves the runtime class alone without the RuntimeClass, for other methods, and for a pod that sets its own', () => {
    const absent = placerWith([], { method: 'checkpoint' });
    expect(
      runtimeClassOps(absent.patch(statefulSetPod('cache-0'), create, pools)),
    ).toEqual([]);
    const valkey = placerWith([], {
      method: 'valkey',
      ferryRuntimeClass: true,
    });
    expect(
      runtimeClassOps(valkey.patch(statefulSetPod('cache-0'), create, pools)),
    ).toEqual([]);
    const own = statefulSetPod('cache-0');
    own.spec!.runtimeClassName = 'kata';
    const checkpoint = placerWith([], {
      method: 'checkpoint',
      ferryRuntimeClass: true,
    });
    expect(runtimeClassOps(checkpoint.patch(own, create, pools))).toEqual([]);
  });

  it('makes the StatefulSet recreation under a checkpoint Migration the restored member: runtime class, checkpoint annotation, target node', () => {
    const migration = migrationOf('cache-1', 'checkpoint', 'SwitchingOver');
    migration.status!.driverState = {
      imageId: 'shop.cache-1-move',
      container: 'valkey',
    };
    const ops = placerWith([migration]).patch(
      statefulSetPod('cache-1'),
      create,
      pools,
    );
    expect(runtimeClassOps(ops)).toEqual([
      { op: 'add', path: '/spec/runtimeClassName', value: FERRY_RUNTIME_CLASS },
    ]);
    expect(ops).toContainEqual({
      op: 'add',
      path: '/metadata/annotations',
      value: { [RESTORE_FROM_ANNOTATION]: 'valkey=shop.cache-1-move' },
    });
    expect(JSON.stringify(ops)).toContain(TARGET);
    expect(gateOps(ops)).toEqual([]);
  });

  it('pins the recreation to the source, restored from the images kept there, once the target died mid-restore', () => {
    const migration = migrationOf('cache-1', 'checkpoint', 'RollingBack');
    migration.status!.driverState = {
      imageId: 'shop.cache-1-move',
      container: 'valkey',
      restoreNode: 'spot-1-a',
    };
    const ops = placerWith([migration]).patch(
      statefulSetPod('cache-1'),
      create,
      pools,
    );
    expect(JSON.stringify(ops)).toContain('"values":["spot-1-a"]');
    expect(JSON.stringify(ops)).not.toContain(TARGET);
    expect(ops).toContainEqual({
      op: 'add',
      path: '/metadata/annotations',
      value: { [RESTORE_FROM_ANNOTATION]: 'valkey=shop.cache-1-move' },
    });
  });
});

describe('the placement webhook and the spread of the fleet over spot pools', () => {
  const RESOURCES = { cpuMillis: 4000, memoryMiB: 16384 };
  const REQUESTS = { cpuMillis: 250, memoryMiB: 512 };
  // One zone, two spot pools a cent apart, and permanent capacity.
  const nodes: NodeView[] = [
    {
      name: 'on-demand-a',
      capacityType: 'on-demand',
      instanceType: 'm5.xlarge',
    },
    { name: 'cheap-1', capacityType: 'spot', instanceType: 'm5.xlarge' },
    { name: 'cheap-2', capacityType: 'spot', instanceType: 'm5.xlarge' },
    { name: 'dear-1', capacityType: 'spot', instanceType: 'm6i.xlarge' },
  ].map(n => ({
    ...n,
    capacityType: n.capacityType as 'spot' | 'on-demand',
    zone: 'a',
    allocatable: RESOURCES,
    free: RESOURCES,
  }));
  const spotPools: CapacityPool[] = [
    ['m5.xlarge', 'spot', 0.1],
    ['m6i.xlarge', 'spot', 0.101],
    ['m5.xlarge', 'on-demand', 0.19],
  ].map(([instanceType, capacityType, price]) => ({
    instanceType: instanceType as string,
    zone: 'a',
    capacityType: capacityType as 'spot' | 'on-demand',
    priceUsdPerHour: price as number,
    onDemandPriceUsdPerHour: 0.19,
    interruptionRisk: 0,
    allocatable: RESOURCES,
    launchable: false,
  }));
  const member = (pod: string, node: string) => ({
    pod,
    node,
    requests: REQUESTS,
    ready: true,
    stateBytes: 0,
  });

  /** Workloads of three, each with its permanent members running: the next member goes to spot. */
  function fleetPlacer(others: { view: WorkloadView }[]): PodPlacer {
    const entryOf = (name: string) => ({
      policy: {
        ...policy,
        spec: { ...policy.spec, workloadRef: { kind: 'StatefulSet', name } },
      } as SpotPolicy,
      view: {
        ...view,
        id: `${NAMESPACE}/${name}`,
        members: [
          member(`${name}-0`, 'on-demand-a'),
          member(`${name}-2`, 'on-demand-a'),
        ],
      },
      replicas: 3,
    });
    const state = {
      workloadOfPod: (pod: V1Pod) => ({
        kind: 'StatefulSet',
        name: pod.metadata!.ownerReferences![0].name,
      }),
      workload: (_namespace: string, _kind: string, name: string) =>
        entryOf(name),
      migrationsOfPod: () => [],
      nodeViewsByName: () => new Map(nodes.map(n => [n.name, n])),
      workloads: () => others,
    } as unknown as ClusterState;
    return new PodPlacer(state, () => 0);
  }

  function memberPod(workload: string): V1Pod {
    const pod = statefulSetPod(`${workload}-1`);
    pod.metadata!.ownerReferences![0].name = workload;
    pod.spec!.containers[0].resources = {
      requests: { cpu: '250m', memory: '512Mi' },
    };
    return pod;
  }

  const poolOf = (ops: { path: string; value?: unknown }[]) =>
    (
      ops.find(op => op.path === '/metadata/annotations')!.value as Record<
        string,
        string
      >
    )['ferry.dev/placement'];

  it('takes the cheapest spot pool while the fleet has no members there', () => {
    const ops = fleetPlacer([]).patch(memberPod('cache'), create, spotPools);
    expect(poolOf(ops)).toBe('spot m5.xlarge@a');
  });

  it("counts the fleet's members already in a pool against it", () => {
    const crowded = {
      view: {
        ...view,
        id: `${NAMESPACE}/crowd`,
        members: ['cheap-1', 'cheap-2', 'cheap-1', 'cheap-2'].map((node, i) =>
          member(`crowd-${i}`, node),
        ),
      },
    };
    const ops = fleetPlacer([crowded]).patch(
      memberPod('cache'),
      create,
      spotPools,
    );
    expect(poolOf(ops)).toBe('spot m6i.xlarge@a');
  });

  it('spreads a burst of new members of many workloads over the pools before any is scheduled', () => {
    const placer = fleetPlacer([]);
    const chosen = Array.from({ length: 40 }, (_, i) =>
      poolOf(placer.patch(memberPod(`cache-${i}`), create, spotPools)),
    );
    const perPool = (pool: string) => chosen.filter(c => c === pool).length;
    expect(perPool('spot m5.xlarge@a')).toBeGreaterThanOrEqual(15);
    expect(perPool('spot m6i.xlarge@a')).toBeGreaterThanOrEqual(15);
  });
});
