import { createApiRef } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import type {
  AvailabilitySeries,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  HealthStatus,
  MigrationOutcome,
  MigrationPage,
  MigrationReason,
  MigrationRecord,
  PolicyUpdate,
  PolicyView,
} from '@ferry/plugin-ferry-common';

/** A time range, both ends ISO-8601. */
export interface TimeRange {
  from: string;
  to: string;
}

/** Filters and paging for an entity's migrations. */
export interface MigrationQuery {
  reason?: MigrationReason;
  driver?: MigrationRecord['driver'];
  outcome?: MigrationOutcome;
  limit?: number;
  cursor?: string;
}

/** Ferry's REST API (`/api/ferry`) as the frontend sees it. */
export interface FerryApi {
  /** Where an entity's replicas run, what they cost and how available they are. */
  getStatus(entity: CompoundEntityRef): Promise<EntitySpotStatus>;
  /** Actual spend against the on-demand counterfactual over a range. */
  getCost(entity: CompoundEntityRef, range: TimeRange): Promise<CostSeries>;
  /** Availability against the target over a range. */
  getAvailability(
    entity: CompoundEntityRef,
    range: TimeRange,
  ): Promise<AvailabilitySeries>;
  /** The entity's migrations, newest first. */
  getMigrations(
    entity: CompoundEntityRef,
    query?: MigrationQuery,
  ): Promise<MigrationPage>;
  /** The entity's spot policy, whether the caller may change it and its history. */
  getPolicy(entity: CompoundEntityRef): Promise<PolicyView>;
  /** Changes the entity's spot policy; needs `ferry.policy.update`. */
  updatePolicy(
    entity: CompoundEntityRef,
    update: PolicyUpdate,
  ): Promise<PolicyView>;
  /** Every opted-in service, the totals and the riskiest pools. */
  getFleet(): Promise<FleetSummary>;
  /** Whether the backend runs in demo mode and which clusters it reaches. */
  getHealth(): Promise<HealthStatus>;
}

/** The API reference of {@link FerryApi}. */
export const ferryApiRef = createApiRef<FerryApi>({
  id: 'plugin.ferry.service',
});
