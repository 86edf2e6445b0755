import type { MigrationSpec, SpotPolicy } from '../api/v1alpha1';
import type { Clock } from '../core/clock';
import { DEFAULT_MOVE_TIMING, PlannedMove } from '../core/migrationPlanner';
import { chooseMethod, MoveFacts } from '../core/methodChoice';
import type { ValkeyAccess, ValkeyEndpoint } from './valkey/ValkeyAdmin';
import { MeasuredServer, measureServer } from './valkey/serverFacts';

/** What `auto` reads about one member from the cluster (pods, RuntimeClasses, volumes). */
export interface AutoMethodFacts {
  /** The member's Valkey/Redis endpoint and the operator's credentials, or undefined when it serves none. */
  member(policy: SpotPolicy, move: PlannedMove): Promise<{ endpoint: ValkeyEndpoint; access: ValkeyAccess } | undefined>;
  /** Whether the pod runs under Ferry's RuntimeClass `ferry` and the target node can run it. */
  ferryRuntime(policy: SpotPolicy, move: PlannedMove): Promise<boolean>;
  /** Whether its state is on a zonal volume, and whether the target is in that zone; undefined without one. */
  zonalVolume(policy: SpotPolicy, move: PlannedMove): Promise<{ sameZoneTarget: boolean } | undefined>;
  /** Bytes of memory the pod's process holds, for a member that is not Valkey/Redis (0 when unknown). */
  processBytes?(policy: SpotPolicy, move: PlannedMove): Promise<number>;
}

/** Options of {@link autoMethodChooser}. */
export interface AutoMethodOptions {
  facts: AutoMethodFacts;
  clock: Clock;
  /** Bytes per second between nodes, as measured; the planner's figure by default. */
  linkBytesPerSec?: number;
  /** Reads a member's server; injected by unit tests. */
  measure?: (endpoint: ValkeyEndpoint, access: ValkeyAccess) => Promise<MeasuredServer>;
}

/**
 * `auto` on a cluster: measures the member (server, version, subscribers and
 * blocked clients, dataset), reads the runtime class and the volume, and lets
 * the decision core choose; the reason goes on the Migration.
 */
export function autoMethodChooser(
  options: AutoMethodOptions,
): (move: PlannedMove, policy: SpotPolicy) => Promise<{ driver: MigrationSpec['driver']; reason: string }> {
  const measure = options.measure ?? measureServer;
  return async (move, policy) => {
    const [member, ferryRuntime, zonalVolume] = await Promise.all([
      options.facts.member(policy, move),
      options.facts.ferryRuntime(policy, move),
      options.facts.zonalVolume(policy, move),
    ]);
    const server = member ? await measure(member.endpoint, member.access) : undefined;
    const facts: MoveFacts = {
      server,
      stateBytes: server?.datasetBytes ?? (await options.facts.processBytes?.(policy, move)) ?? 0,
      timeLeftMs: move.deadline === undefined ? undefined : Math.max(0, move.deadline - options.clock.now()),
      linkBytesPerSec: options.linkBytesPerSec ?? DEFAULT_MOVE_TIMING.bytesPerSecond,
      ferryRuntime,
      zonalVolume,
    };
    const choice = chooseMethod(facts);
    const target = move.target.kind === 'node' ? move.target.node : `a new ${move.target.capacityType} node`;
    const placement =
      choice.permanentCapacity && !move.permanentFallback ? `; the planner's target (${target}) stands` : '';
    return { driver: choice.method, reason: `${choice.reason}${placement}` };
  };
}
