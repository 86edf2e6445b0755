/**
 * The node labels the ecosystem already uses, so Ferry recognises nodes that
 * Karpenter, EKS managed node groups, GKE and AKS created, and labels the nodes
 * of the simulated cluster the same way.
 */
import type { CapacityType } from '../api/v1alpha1';
import type { CloudName } from './CloudProvider';

/** Label keys Ferry reads. */
export const NODE_LABELS = {
  karpenterCapacityType: 'karpenter.sh/capacity-type',
  eksCapacityType: 'eks.amazonaws.com/capacityType',
  gkeSpot: 'cloud.google.com/gke-spot',
  // GKE's preemptible VMs, the older kind of spot capacity (at most 24 h, the same 30 s notice).
  gkePreemptible: 'cloud.google.com/gke-preemptible',
  aksPriority: 'kubernetes.azure.com/scalesetpriority',
  instanceType: 'node.kubernetes.io/instance-type',
  zone: 'topology.kubernetes.io/zone',
  region: 'topology.kubernetes.io/region',
} as const;

/** The labels a node of this cloud, pool and capacity type carries. */
export function nodeLabelsFor(
  cloud: CloudName,
  capacityType: CapacityType,
  instanceType: string,
  zone: string,
  region: string,
): Record<string, string> {
  const labels: Record<string, string> = {
    [NODE_LABELS.instanceType]: instanceType,
    [NODE_LABELS.zone]: zone,
    [NODE_LABELS.region]: region,
  };
  const spot = capacityType === 'spot';
  if (cloud === 'aws') {
    labels[NODE_LABELS.karpenterCapacityType] = spot ? 'spot' : 'on-demand';
    labels[NODE_LABELS.eksCapacityType] = spot ? 'SPOT' : 'ON_DEMAND';
  } else if (cloud === 'gcp') {
    if (spot) labels[NODE_LABELS.gkeSpot] = 'true';
  } else if (spot) {
    labels[NODE_LABELS.aksPriority] = 'spot';
  }
  return labels;
}

/** Whether a node is spot or permanent capacity, from whichever label its provisioner set. */
export function capacityTypeFromLabels(labels: Readonly<Record<string, string>>): CapacityType {
  const karpenter = labels[NODE_LABELS.karpenterCapacityType];
  if (karpenter === 'spot') return 'spot';
  if (labels[NODE_LABELS.eksCapacityType] === 'SPOT') return 'spot';
  if (labels[NODE_LABELS.gkeSpot] === 'true') return 'spot';
  if (labels[NODE_LABELS.gkePreemptible] === 'true') return 'spot';
  if (labels[NODE_LABELS.aksPriority] === 'spot') return 'spot';
  return 'on-demand';
}
