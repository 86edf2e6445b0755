import type { DemoWorkloadSeed } from './DemoOperator';

/**
 * The workloads of demo mode. Each matches an example catalog entity in
 * `examples/entities.yaml` through its `backstage.io/kubernetes-id` label.
 */
export const EXAMPLE_WORKLOADS: DemoWorkloadSeed[] = [
  { kind: 'StatefulSet', namespace: 'payments', name: 'session-store', replicas: 3, kubernetesId: 'session-store' },
  { kind: 'StatefulSet', namespace: 'jobs', name: 'job-queue', replicas: 3, kubernetesId: 'job-queue' },
  { kind: 'StatefulSet', namespace: 'assistants', name: 'agent-memory', replicas: 5, kubernetesId: 'agent-memory' },
];
