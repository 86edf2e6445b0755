import type {
  EntitySpotStatus,
  SpotPolicySettings,
} from '@ferry/plugin-ferry-common';

/**
 * What the preview assumes about spot prices when the service has no spot
 * replica to learn them from: spot capacity is typically 60–90 % cheaper than
 * on-demand, and 60 % is the cautious end.
 */
export const ASSUMED_SPOT_DISCOUNT = 0.6;

/**
 * The interruption risk the preview assumes for a spot replica when there is
 * none to learn it from.
 */
export const ASSUMED_INTERRUPTION_RISK = 0.05;

/** Hours in an average month, to turn an hourly cost into a monthly one. */
export const HOURS_PER_MONTH = 730;

/** What a policy would do to a service's placement, cost and risk. */
export interface PolicyPreview {
  replicas: number;
  permanentReplicas: number;
  spotReplicas: number;
  hourlyCostUsd: number;
  onDemandHourlyCostUsd: number;
  monthlySavingsUsd: number;
  /** Chance at least one spot replica is reclaimed within the prediction horizon. */
  interruptionChance: number;
  /** Whether the permanent replicas alone keep the quorum. */
  quorumOnPermanent: boolean;
  /** True when prices or risk are assumed rather than learned from this service. */
  estimated: boolean;
}

/**
 * How many replicas stay on permanent capacity: the ratio rounded up, and
 * never none when the workload has a quorum — the operator's rule.
 */
export function permanentReplicaCount(
  replicas: number,
  policy: Pick<SpotPolicySettings, 'enabled' | 'permanentRatio'>,
  requiredMembers: number,
): number {
  if (!policy.enabled) return replicas;
  const byRatio = Math.ceil(policy.permanentRatio * replicas - 1e-9);
  const floor = requiredMembers > 0 && replicas > 0 ? 1 : 0;
  return Math.min(replicas, Math.max(byRatio, floor));
}

/** Previews a policy against what the service runs on now. */
export function previewPolicy(
  status: EntitySpotStatus,
  policy: SpotPolicySettings,
): PolicyPreview {
  const replicas = status.replicas.length;
  const onDemandPerReplica =
    replicas > 0 ? status.cost.onDemandHourlyCostUsd / replicas : 0;
  const spot = status.replicas.filter(r => r.capacityType === 'spot');
  const estimated = spot.length === 0;
  const spotPerReplica = estimated
    ? onDemandPerReplica * (1 - ASSUMED_SPOT_DISCOUNT)
    : mean(spot.map(r => r.hourlyCostUsd));
  const risk = estimated
    ? ASSUMED_INTERRUPTION_RISK
    : mean(spot.map(r => r.interruptionRisk));

  const permanentReplicas = permanentReplicaCount(
    replicas,
    policy,
    status.availability.requiredMembers,
  );
  const spotReplicas = replicas - permanentReplicas;
  const hourlyCostUsd =
    permanentReplicas * onDemandPerReplica + spotReplicas * spotPerReplica;
  const onDemandHourlyCostUsd = replicas * onDemandPerReplica;

  return {
    replicas,
    permanentReplicas,
    spotReplicas,
    hourlyCostUsd,
    onDemandHourlyCostUsd,
    monthlySavingsUsd:
      (onDemandHourlyCostUsd - hourlyCostUsd) * HOURS_PER_MONTH,
    interruptionChance: 1 - Math.pow(1 - risk, spotReplicas),
    quorumOnPermanent: permanentReplicas >= status.availability.requiredMembers,
    estimated,
  };
}

function mean(values: number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}
