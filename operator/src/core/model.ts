/**
 * The in-memory picture of a cluster that the decision core reasons about. The
 * `kube/` watches build it on a real cluster; the simulator builds it in demo
 * mode and in the benchmarks. Nothing here does I/O.
 */
import type { CapacityType } from '../api/v1alpha1';

/** CPU and memory, as requested by a pod or offered by a node. */
export interface Resources {
  cpuMillis: number;
  memoryMiB: number;
}

/** A spot pool: one instance type in one zone. */
export interface PoolKey {
  instanceType: string;
  zone: string;
}

/** The identity of a pool as a string, for maps. */
export function poolIdOf(pool: PoolKey): string {
  return `${pool.instanceType}@${pool.zone}`;
}

/** A pool of capacity the planner may place onto, with its price and risk now. */
export interface CapacityPool extends PoolKey {
  capacityType: CapacityType;
  /** USD per node-hour for this capacity type in this pool now. */
  priceUsdPerHour: number;
  onDemandPriceUsdPerHour: number;
  /** Probability that the pool is interrupted within the planning horizon (0 for permanent). */
  interruptionRisk: number;
  /** What one node of the pool offers to pods. */
  allocatable: Resources;
  /** False while the cloud has no capacity to launch in this pool. */
  launchable: boolean;
}

/** A node as the planner sees it. */
export interface NodeView extends PoolKey {
  name: string;
  capacityType: CapacityType;
  allocatable: Resources;
  /** Capacity not yet requested by pods. */
  free: Resources;
  /** When the cloud takes the node back, if a notice said so (ms since epoch). */
  terminatesAt?: number;
  /** Cordoned or being drained: nothing new may land here. */
  unschedulable?: boolean;
  /** When a node still launching becomes Ready (ms since epoch); undefined when it is Ready. */
  readyAt?: number;
}

/** One member of a stateful workload. */
export interface MemberView {
  pod: string;
  /** The node it runs on; undefined while unscheduled. */
  node?: string;
  requests: Resources;
  ready: boolean;
  /** Bytes of state a live move must copy (memory or volume). */
  stateBytes: number;
  /** A move of this member is under way: it counts as in motion and is not planned again. */
  moving?: boolean;
  /**
   * Ferry stopped moving this member (its moves kept failing): it is not planned,
   * holds no move slot, and counts as up until its node goes.
   */
  givenUp?: boolean;
}

/** An opted-in stateful workload. */
export interface WorkloadView {
  /** `namespace/name`. */
  id: string;
  members: MemberView[];
  permanentRatio: number;
  /** Most members that may be down at once by the PodDisruptionBudget; undefined when none. */
  pdbMaxUnavailable?: number;
  maxConcurrentMoves: number;
}

/** Whether a node can take these requests. */
export function fits(free: Resources, requests: Resources): boolean {
  return free.cpuMillis >= requests.cpuMillis && free.memoryMiB >= requests.memoryMiB;
}

/** Share of a node that the requests take: the larger of its CPU and memory shares. */
export function nodeShareOf(requests: Resources, allocatable: Resources): number {
  return Math.min(
    1,
    Math.max(
      requests.cpuMillis / allocatable.cpuMillis,
      requests.memoryMiB / allocatable.memoryMiB,
    ),
  );
}
