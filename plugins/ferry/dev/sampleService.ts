// The sample service that the dev harness (dev/index.tsx, FakeFerryApi), the UI
// benchmark and the unit tests (src/__testUtils__/fixtures.ts) all show: one set of
// sample data, so a figure a test checks is the figure a person sees in the harness.
import type { Entity } from '@backstage/catalog-model';
import type {
  AvailabilitySeries,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  MigrationPage,
  MigrationRecord,
  PolicyView,
} from '@ferry/plugin-ferry-common';

/** The catalog entity of the sample service, opted in from its annotations. */
export const sessionsEntity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: {
    name: 'sessions',
    namespace: 'default',
    annotations: {
      'ferry.dev/spot': 'enabled',
      'backstage.io/kubernetes-id': 'sessions',
    },
  },
  spec: {
    type: 'service',
    owner: 'group:default/platform-team',
    lifecycle: 'production',
  },
  relations: [{ type: 'ownedBy', targetRef: 'group:default/platform-team' }],
};

/** Where the sample service runs and what it costs, as the operator reports it. */
export const entityStatus: EntitySpotStatus = {
  entityRef: 'component:default/sessions',
  workload: {
    cluster: 'demo',
    namespace: 'shop',
    kind: 'StatefulSet',
    name: 'sessions',
  },
  policy: {
    enabled: true,
    permanentRatio: 0.3,
    availabilityTarget: 0.999,
    migration: 'valkey',
  },
  policySource: 'catalog',
  replicas: [
    {
      pod: 'sessions-0',
      node: 'ip-10-0-1-12',
      capacityType: 'on-demand',
      instanceType: 'm6i.large',
      zone: 'eu-west-1a',
      hourlyCostUsd: 0.107,
      interruptionRisk: 0,
      ready: true,
    },
    {
      pod: 'sessions-1',
      node: 'ip-10-0-2-40',
      capacityType: 'spot',
      instanceType: 'm6i.large',
      zone: 'eu-west-1b',
      hourlyCostUsd: 0.038,
      interruptionRisk: 0.03,
      ready: true,
    },
    {
      pod: 'sessions-2',
      node: 'ip-10-0-3-7',
      capacityType: 'spot',
      instanceType: 'r6g.large',
      zone: 'eu-west-1c',
      hourlyCostUsd: 0.041,
      interruptionRisk: 0.24,
      ready: true,
    },
  ],
  cost: {
    hourlyCostUsd: 0.186,
    onDemandHourlyCostUsd: 0.321,
    spendToDateUsd: 812.4,
    savingsToDateUsd: 1234.56,
  },
  availability: {
    target: 0.999,
    observed: 0.9996,
    errorBudgetRemaining: 0.6,
    requiredMembers: 2,
    readyMembers: 3,
  },
  migrationsTotal: 7,
  updatedAt: '2026-11-20T10:00:00Z',
};

/** Two days of the sample service's cost. */
export const costSeries: CostSeries = {
  entityRef: 'component:default/sessions',
  from: '2026-11-18T00:00:00Z',
  to: '2026-11-20T00:00:00Z',
  bucket: 'day',
  points: [
    {
      time: '2026-11-18T00:00:00Z',
      spotUsd: 1.9,
      permanentUsd: 2.57,
      onDemandUsd: 7.7,
    },
    {
      time: '2026-11-19T00:00:00Z',
      spotUsd: 1.8,
      permanentUsd: 2.57,
      onDemandUsd: 7.7,
    },
  ],
  totalUsd: 8.84,
  onDemandUsd: 15.4,
  savingsUsd: 6.56,
};

/** Two days of the sample service's availability, one moment at risk. */
export const availabilitySeries: AvailabilitySeries = {
  entityRef: 'component:default/sessions',
  from: '2026-11-18T00:00:00Z',
  to: '2026-11-20T00:00:00Z',
  bucket: 'day',
  target: 0.999,
  observed: 0.9996,
  errorBudgetRemaining: 0.6,
  points: [
    {
      time: '2026-11-18T00:00:00Z',
      availability: 1,
      minReadyMembers: 3,
      requiredMembers: 2,
    },
    {
      time: '2026-11-19T00:00:00Z',
      availability: 0.9992,
      minReadyMembers: 2,
      requiredMembers: 2,
    },
  ],
  atRisk: [
    { time: '2026-11-19T03:12:00Z', readyMembers: 2, requiredMembers: 2 },
  ],
};

/** One move of the sample service's state, on a spot notice. */
export const migration: MigrationRecord = {
  id: 'mig-1',
  entityRef: 'component:default/sessions',
  cluster: 'demo',
  namespace: 'shop',
  workload: 'sessions',
  pod: 'sessions-2',
  sourceNode: 'ip-10-0-3-7',
  targetNode: 'ip-10-0-3-9',
  reason: 'notice',
  driver: 'valkey',
  phase: 'done',
  outcome: 'succeeded',
  phases: [
    {
      phase: 'sync',
      startedAt: '2026-11-19T03:12:00Z',
      finishedAt: '2026-11-19T03:12:40Z',
      durationMs: 40_000,
    },
    {
      phase: 'switch',
      startedAt: '2026-11-19T03:12:40Z',
      finishedAt: '2026-11-19T03:12:41Z',
      durationMs: 850,
    },
  ],
  bytesMoved: 1.5 * 1024 ** 3,
  writePauseMs: 850,
  startedAt: '2026-11-19T03:12:00Z',
  finishedAt: '2026-11-19T03:12:41Z',
};

/** The sample service's migrations: the one above. */
export const migrationPage: MigrationPage = {
  items: [migration],
  totalCount: 1,
};

/** The sample service's policy, set from its catalog annotations. */
export const policyView: PolicyView = {
  entityRef: 'component:default/sessions',
  workload: entityStatus.workload,
  policy: entityStatus.policy,
  source: 'catalog',
  canUpdate: true,
  annotations: { 'ferry.dev/spot': 'enabled' },
  history: [],
};

/** The fleet: the sample service and a queue beside it. */
export const fleetSummary: FleetSummary = {
  services: [
    {
      entityRef: 'component:default/sessions',
      workload: entityStatus.workload,
      enabled: true,
      replicas: 3,
      spotReplicas: 2,
      hourlyCostUsd: 0.186,
      onDemandHourlyCostUsd: 0.321,
      savingsToDateUsd: 1234.56,
      availability: 0.9996,
      availabilityTarget: 0.999,
      maxInterruptionRisk: 0.24,
      migrationsTotal: 7,
    },
    {
      entityRef: 'component:default/orders-queue',
      workload: {
        cluster: 'demo',
        namespace: 'shop',
        kind: 'StatefulSet',
        name: 'orders-queue',
      },
      enabled: true,
      replicas: 5,
      spotReplicas: 3,
      hourlyCostUsd: 0.5,
      onDemandHourlyCostUsd: 0.9,
      savingsToDateUsd: 300,
      availability: 0.998,
      availabilityTarget: 0.999,
      maxInterruptionRisk: 0.02,
      migrationsTotal: 1,
    },
  ],
  totals: {
    services: 2,
    replicas: 8,
    spotReplicas: 5,
    hourlyCostUsd: 0.686,
    onDemandHourlyCostUsd: 1.221,
    savingsToDateUsd: 1534.56,
  },
  riskiestPools: [
    {
      cluster: 'demo',
      zone: 'eu-west-1c',
      instanceType: 'r6g.large',
      spotPriceUsdPerHour: 0.041,
      onDemandPriceUsdPerHour: 0.1,
      interruptionRisk: 0.24,
      replicas: 1,
    },
  ],
  updatedAt: '2026-11-20T10:00:00Z',
};
