/**
 * A SpotPolicy's status from what the operator sees on the cluster: where each
 * member runs and on what capacity, what that costs against on demand, the
 * spend, savings and availability accrued since the workload opted in, and the
 * Migrations of its members. Pure: the controller (`SpotPolicyStatusController`)
 * gathers the inputs and writes the result.
 *
 * Spend and availability accrue interval by interval, at the rates the previous
 * status recorded (`core/accounting.ts`): the interval since the last write ran
 * with the placement that write saw, so history is never re-priced. The totals
 * and the time they reach are kept in the status itself (`accounting`), so a
 * restarted operator or a new leader continues from them.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type {
  Condition,
  MemberHibernation,
  Migration,
  ReplicaPlacement,
  SpotPolicy,
  SpotPolicyStatus,
} from '../../api/v1alpha1';
import { AvailabilityLedger, CostLedger } from '../../core/accounting';
import { nodeShareOf, NodeView, WorkloadView } from '../../core/model';
import { quorumOf } from '../../core/quorum';
import { setCondition } from '../client/conditions';
import {
  HIBERNATION_LABEL,
  HIBERNATION_REFUSED_ANNOTATION,
} from '../client/ferryKeys';
import type { HibernationPhase } from '../hibernation/hibernationPolicy';
import type { PriceBook } from '../pools/PoolPriceFeed';

/** What the operator keeps in a status to continue accruing from it. */
export interface StatusAccounting {
  /** Spend and availability are accrued up to this instant (RFC 3339). */
  accruedAt: string;
  /** Time observed since the workload opted in. */
  observedSeconds: number;
  /** Of which the workload had fewer ready members than its quorum. */
  downSeconds: number;
  /** Creation time of the newest Migration counted into `migrationsTotal`. */
  migrationsCountedThrough?: string;
  /** Migrations created at exactly that time that are counted already. */
  migrationsCountedAt?: string[];
}

/** A SpotPolicy's status as the operator writes it: the contract's fields and its accounting. */
export interface AccountedSpotPolicyStatus extends SpotPolicyStatus {
  accounting?: StatusAccounting;
}

/** Condition types of a SpotPolicy. */
export const SPOT_POLICY_CONDITIONS = {
  /** The policy is in effect and the workload has its quorum of ready members. */
  ready: 'Ready',
  /** Every member's pool has a known price and on-demand price; cost covers all of them. */
  pricesKnown: 'PricesKnown',
  /** Availability since opting in meets the target (error budget not overspent). */
  availabilityTargetMet: 'AvailabilityTargetMet',
} as const;

/** What the status is computed from. */
export interface SpotPolicyStatusInput {
  policy: SpotPolicy & { status?: AccountedSpotPolicyStatus };
  /** The workload as the planner sees it; undefined when it is not found or the policy is disabled. */
  workload?: { view: WorkloadView; replicas: number };
  /** Whether the workload the policy names exists. */
  workloadFound: boolean;
  nodes: ReadonlyMap<string, NodeView>;
  prices: PriceBook;
  /** A spot pool's predicted interruption risk (`PoolRiskFeed`); 0 for every pool without it. */
  riskOf?: (pool: NodeView) => number;
  /** The Migrations of this workload. */
  migrations: readonly Migration[];
  /** The members that take part in hibernation ({@link memberHibernationOf}), spot enabled or not. */
  hibernation?: MemberHibernation[];
  now: number;
}

const HIBERNATION_PHASES: readonly string[] = [
  'RUNNING',
  'HIBERNATING',
  'SCALED_DOWN',
  'WAKING',
] satisfies HibernationPhase[];

/**
 * The members that take part in hibernation, read from what the hibernation
 * controller puts on their pods: the phase label, or the reason they must not
 * sleep. Members that take no part are left out.
 */
export function memberHibernationOf(
  pods: readonly (V1Pod | undefined)[],
): MemberHibernation[] {
  const members: MemberHibernation[] = [];
  for (const pod of pods) {
    const label = pod?.metadata?.labels?.[HIBERNATION_LABEL];
    const refusal =
      pod?.metadata?.annotations?.[HIBERNATION_REFUSED_ANNOTATION];
    const phase =
      label && HIBERNATION_PHASES.includes(label)
        ? (label as HibernationPhase)
        : undefined;
    if (!pod?.metadata?.name || (!phase && !refusal)) continue;
    members.push({
      pod: pod.metadata.name,
      ...(phase ? { phase } : {}),
      ...(refusal ? { refusal } : {}),
    });
  }
  return members.sort((a, b) => a.pod.localeCompare(b.pod));
}

const MS_PER_SECOND = 1000;
/**
 * Risk in status is rounded to this many decimals (0.1 percentage point): it
 * decays by the second, and a status write for each such change would say
 * nothing new.
 */
const RISK_DECIMALS = 3;
/** Unpriced members named in a condition's message; the API server caps its length. */
const UNPRICED_NAMED = 10;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A member's price, if its pool's price and its type's on-demand price are both known. */
function memberCost(
  view: WorkloadView['members'][number],
  node: NodeView,
  prices: PriceBook,
) {
  const share = nodeShareOf(view.requests, node.allocatable);
  const price = prices.priceOf(node);
  const onDemand = prices.onDemandPriceOf(node);
  return { share, price, onDemand };
}

/** Replays persisted availability totals into a ledger, so the core's arithmetic goes on from them. */
function availabilityLedgerFrom(
  target: number,
  accounting: StatusAccounting | undefined,
): AvailabilityLedger {
  // A target of 0 cannot be missed; the ledger wants a share above 0.
  const ledger = new AvailabilityLedger(target > 0 ? target : 1);
  if (accounting) {
    const down = accounting.downSeconds * MS_PER_SECOND;
    const up = accounting.observedSeconds * MS_PER_SECOND - down;
    ledger.observe(up, 1, 1);
    ledger.observe(down, 0, 1);
  }
  return ledger;
}

function byCreation(a: Migration, b: Migration): number {
  const at = (m: Migration) => m.metadata.creationTimestamp ?? '';
  if (at(a) === at(b)) return a.metadata.name.localeCompare(b.metadata.name);
  return at(a) < at(b) ? -1 : 1;
}

/**
 * Migrations counted since the last status: those created after the newest one
 * counted, and those created in the same second that were not counted yet.
 * Counting from a watermark rather than listing what exists keeps the total
 * right when old Migrations are garbage-collected.
 */
function countMigrations(
  migrations: readonly Migration[],
  previous: AccountedSpotPolicyStatus | undefined,
) {
  const through = previous?.accounting?.migrationsCountedThrough;
  const countedAt = new Set(previous?.accounting?.migrationsCountedAt ?? []);
  const sorted = [...migrations].sort(byCreation);
  const fresh = sorted.filter(m => {
    const at = m.metadata.creationTimestamp ?? '';
    if (through === undefined || at > through) return true;
    return at === through && !countedAt.has(m.metadata.name);
  });
  const newest = sorted[sorted.length - 1];
  const newestAt = newest?.metadata.creationTimestamp;
  return {
    total: (previous?.migrationsTotal ?? 0) + fresh.length,
    last: newest?.metadata.name ?? previous?.lastMigration,
    through: newestAt ?? through,
    countedAt:
      newestAt === undefined
        ? [...countedAt]
        : sorted
            .filter(m => m.metadata.creationTimestamp === newestAt)
            .map(m => m.metadata.name),
  };
}

/** The status the policy should have now. */
export function spotPolicyStatusOf(
  input: SpotPolicyStatusInput,
): AccountedSpotPolicyStatus {
  const { policy, workload, now } = input;
  const previous = policy.status;
  const generation = policy.metadata.generation;
  const target = policy.spec.availabilityTarget;

  // The interval since the last write, at the rates that write recorded.
  const accrueFrom = previous?.accounting
    ? Date.parse(previous.accounting.accruedAt)
    : NaN;
  const elapsedMs =
    previous?.accounting && Number.isFinite(accrueFrom)
      ? Math.max(0, now - accrueFrom)
      : 0;
  const costIncrement = new CostLedger();
  if (previous?.cost) {
    costIncrement.accrue(elapsedMs, [
      {
        capacityType: 'spot',
        nodePriceUsdPerHour: previous.cost.hourlyCostUsd,
        onDemandPriceUsdPerHour: previous.cost.onDemandHourlyCostUsd,
        nodeShare: 1,
      },
    ]);
  }
  const availability = availabilityLedgerFrom(target, previous?.accounting);
  // Time while the policy was not in effect (nothing required) is not observed.
  if (previous?.availability && previous.availability.requiredMembers > 0) {
    availability.observe(
      elapsedMs,
      previous.availability.readyMembers,
      previous.availability.requiredMembers,
    );
  }
  const increment = costIncrement.totals();
  const accrued = availability.totals();
  const spendToDateUsd =
    (previous?.cost?.spendToDateUsd ?? 0) + increment.spendUsd;
  const savingsToDateUsd =
    (previous?.cost?.savingsToDateUsd ?? 0) + increment.savingsUsd;

  const replicas: ReplicaPlacement[] = [];
  const unpriced: string[] = [];
  const sources = new Set<string>();
  let hourlyCostUsd = 0;
  let onDemandHourlyCostUsd = 0;
  for (const member of workload?.view.members ?? []) {
    const node = member.node ? input.nodes.get(member.node) : undefined;
    if (!node) continue;
    const { share, price, onDemand } = memberCost(member, node, input.prices);
    replicas.push({
      pod: member.pod,
      node: node.name,
      capacityType: node.capacityType,
      instanceType: node.instanceType,
      zone: node.zone,
      // Zero where the price is unknown: the PricesKnown condition names it.
      hourlyCostUsd: price ? price.usdPerHour * share : 0,
      interruptionRisk:
        node.capacityType === 'spot' && input.riskOf
          ? Number(input.riskOf(node).toFixed(RISK_DECIMALS))
          : 0,
      ready: member.ready,
    });
    if (price && onDemand) {
      hourlyCostUsd += price.usdPerHour * share;
      onDemandHourlyCostUsd += onDemand.usdPerHour * share;
      sources.add(price.source);
      sources.add(onDemand.source);
    } else {
      const missing = [
        price ? undefined : `${node.capacityType} price`,
        onDemand ? undefined : 'on-demand price',
      ]
        .filter((m): m is string => m !== undefined)
        .filter((m, i, all) => all.indexOf(m) === i);
      unpriced.push(
        `${member.pod} (${node.instanceType} in ${node.zone}: no ${missing.join(
          ' or ',
        )})`,
      );
    }
  }

  const inEffect = policy.spec.enabled && workload !== undefined;
  // A workload scaled to zero needs no members: it is not down, nor observed.
  const required =
    workload && workload.replicas > 0 ? quorumOf(workload.replicas) : 0;
  const readyMembers = replicas.filter(r => r.ready).length;
  const migrations = countMigrations(input.migrations, previous);

  let conditions: Condition[] = previous?.conditions ?? [];
  const set = (
    c: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>,
  ) =>
    (conditions = setCondition(
      conditions,
      { ...c, observedGeneration: generation },
      now,
    ));
  const spotCount = replicas.filter(r => r.capacityType === 'spot').length;
  if (!policy.spec.enabled) {
    set({
      type: SPOT_POLICY_CONDITIONS.ready,
      status: 'False',
      reason: 'OptedOut',
      message: 'spot placement is disabled for this workload',
    });
  } else if (!input.workloadFound) {
    const { kind, name } = policy.spec.workloadRef;
    set({
      type: SPOT_POLICY_CONDITIONS.ready,
      status: 'False',
      reason: 'WorkloadNotFound',
      message: `no ${kind} ${name} in namespace ${policy.metadata.namespace}; create it or correct spec.workloadRef`,
    });
  } else {
    set({
      type: SPOT_POLICY_CONDITIONS.ready,
      status: readyMembers >= required ? 'True' : 'False',
      reason: readyMembers >= required ? 'Placed' : 'BelowQuorum',
      message: `${readyMembers} of ${required} required members ready; ${spotCount} of ${replicas.length} replicas on spot`,
    });
  }
  if (replicas.length === 0) {
    set({
      type: SPOT_POLICY_CONDITIONS.pricesKnown,
      status: 'Unknown',
      reason: 'NoReplicas',
      message: 'no member runs on a node',
    });
  } else if (unpriced.length > 0) {
    set({
      type: SPOT_POLICY_CONDITIONS.pricesKnown,
      status: 'False',
      reason: 'PriceUnknown',
      message: `cost, spend and savings leave out ${unpriced.length} of ${
        replicas.length
      } replicas whose prices are unknown (hourlyCostUsd 0): ${unpriced
        .slice(0, UNPRICED_NAMED)
        .join(', ')}${
        unpriced.length > UNPRICED_NAMED
          ? ` and ${unpriced.length - UNPRICED_NAMED} more`
          : ''
      }; enable providers.aws or set providers.aws.onDemandPricesUsdPerHour`,
    });
  } else {
    set({
      type: SPOT_POLICY_CONDITIONS.pricesKnown,
      status: 'True',
      reason: 'Priced',
      message: `prices from ${[...sources].sort().join('; ')}`,
    });
  }
  const budget = Number.isFinite(accrued.errorBudgetRemaining)
    ? accrued.errorBudgetRemaining
    : // A target of 1 with any downtime: spent beyond measure; JSON has no -Infinity.
      -1;
  set({
    type: SPOT_POLICY_CONDITIONS.availabilityTargetMet,
    status: budget >= 0 ? 'True' : 'False',
    reason: budget >= 0 ? 'WithinErrorBudget' : 'ErrorBudgetExhausted',
    message: `available ${(accrued.availability * 100).toFixed(3)} % of ${(
      accrued.observedMs / 3_600_000
    ).toFixed(2)} h against a target of ${(target * 100).toFixed(3)} %`,
  });

  return {
    observedGeneration: generation,
    replicas,
    cost: {
      hourlyCostUsd,
      onDemandHourlyCostUsd,
      spendToDateUsd,
      savingsToDateUsd,
    },
    availability: {
      target,
      observed: accrued.availability,
      errorBudgetRemaining: budget,
      // While the policy is not in effect nothing accrues: no members are required.
      requiredMembers: inEffect ? required : 0,
      readyMembers: inEffect ? readyMembers : 0,
    },
    migrationsTotal: migrations.total,
    ...(migrations.last ? { lastMigration: migrations.last } : {}),
    // Written while members take part, and once empty after (a status patch
    // merges: a field left out would keep its last value).
    ...(input.hibernation?.length || previous?.hibernation?.length
      ? { hibernation: input.hibernation ?? [] }
      : {}),
    conditions,
    accounting: {
      accruedAt: iso(now),
      observedSeconds: accrued.observedMs / MS_PER_SECOND,
      downSeconds: accrued.downMs / MS_PER_SECOND,
      ...(migrations.through
        ? {
            migrationsCountedThrough: migrations.through,
            migrationsCountedAt: migrations.countedAt,
          }
        : {}),
    },
  };
}

/** The status without what changes merely with time passing. */
function withoutAccruals(status: AccountedSpotPolicyStatus | undefined) {
  if (!status) return undefined;
  const { accounting, cost, availability, conditions, ...rest } = status;
  return {
    ...rest,
    cost: cost && {
      hourlyCostUsd: cost.hourlyCostUsd,
      onDemandHourlyCostUsd: cost.onDemandHourlyCostUsd,
    },
    availability: availability && {
      target: availability.target,
      requiredMembers: availability.requiredMembers,
      readyMembers: availability.readyMembers,
    },
    conditions: conditions?.map(c =>
      c.type === SPOT_POLICY_CONDITIONS.availabilityTargetMet
        ? { type: c.type, status: c.status }
        : c,
    ),
    migrations: accounting?.migrationsCountedThrough,
  };
}

/**
 * Whether the new status is worth a write: something a person sees changed
 * (placement, rates, readiness, conditions, migrations), or the accruals are
 * `refreshMs` old. Without this, each write's own watch event would cause
 * another write.
 */
export function statusNeedsWrite(
  previous: AccountedSpotPolicyStatus | undefined,
  next: AccountedSpotPolicyStatus,
  now: number,
  refreshMs: number,
): boolean {
  const accruedAt = previous?.accounting
    ? Date.parse(previous.accounting.accruedAt)
    : NaN;
  if (!Number.isFinite(accruedAt) || now - accruedAt >= refreshMs) return true;
  return (
    canonical(withoutAccruals(previous)) !== canonical(withoutAccruals(next))
  );
}

/** JSON with keys in order: the API server returns an object's keys sorted. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}
