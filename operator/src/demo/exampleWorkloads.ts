import type { DemoWorkloadSeed } from './DemoCluster';

/**
 * The workloads of demo mode. Each matches an example catalog entity in
 * `examples/entities.yaml` through its `backstage.io/kubernetes-id` label, and
 * carries that entity's `ferry.dev/*` annotations (a test holds the two equal):
 * in the demo's replayed month, the services they opt in have run on Ferry.
 */
export const EXAMPLE_WORKLOADS: DemoWorkloadSeed[] = [
  {
    kind: 'StatefulSet',
    namespace: 'payments',
    name: 'session-store',
    replicas: 3,
    kubernetesId: 'session-store',
    entity: {
      ref: 'component:default/session-store',
      annotations: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
        'ferry.dev/availability-target': '0.999',
        'ferry.dev/migration': 'valkey',
      },
    },
  },
  {
    kind: 'StatefulSet',
    namespace: 'jobs',
    name: 'job-queue',
    replicas: 3,
    kubernetesId: 'job-queue',
    entity: {
      ref: 'component:default/job-queue',
      annotations: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
        'ferry.dev/availability-target': '0.995',
        'ferry.dev/migration': 'checkpoint',
      },
    },
  },
  {
    kind: 'StatefulSet',
    namespace: 'assistants',
    name: 'agent-memory',
    replicas: 5,
    kubernetesId: 'agent-memory',
    entity: {
      ref: 'component:default/agent-memory',
      annotations: { 'ferry.dev/spot': 'disabled' },
    },
  },
];
