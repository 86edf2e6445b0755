import type { DiscoveryApi, FetchApi } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import { ResponseError } from '@backstage/errors';
import type {
  AvailabilitySeries,
  CostSeries,
  EntitySpotStatus,
  FleetSummary,
  HealthStatus,
  MigrationPage,
  PolicyUpdate,
  PolicyView,
} from '@ferry/plugin-ferry-common';
import type { FerryApi, MigrationQuery, TimeRange } from './FerryApi';

/** The backend plugin's id, which discovery turns into its base URL. */
const FERRY_PLUGIN_ID = 'ferry';

/** Talks to `ferry-backend` over HTTP with the app's discovery and fetch APIs. */
export class FerryClient implements FerryApi {
  private readonly discoveryApi: DiscoveryApi;
  private readonly fetchApi: FetchApi;

  constructor(options: { discoveryApi: DiscoveryApi; fetchApi: FetchApi }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi;
  }

  getStatus(entity: CompoundEntityRef): Promise<EntitySpotStatus> {
    return this.get(`${entityPath(entity)}/status`);
  }

  getCost(entity: CompoundEntityRef, range: TimeRange): Promise<CostSeries> {
    return this.get(`${entityPath(entity)}/cost`, { ...range });
  }

  getAvailability(
    entity: CompoundEntityRef,
    range: TimeRange,
  ): Promise<AvailabilitySeries> {
    return this.get(`${entityPath(entity)}/availability`, { ...range });
  }

  getMigrations(
    entity: CompoundEntityRef,
    query: MigrationQuery = {},
  ): Promise<MigrationPage> {
    return this.get(`${entityPath(entity)}/migrations`, {
      reason: query.reason,
      driver: query.driver,
      outcome: query.outcome,
      limit: query.limit === undefined ? undefined : String(query.limit),
      cursor: query.cursor,
    });
  }

  getPolicy(entity: CompoundEntityRef): Promise<PolicyView> {
    return this.get(`${entityPath(entity)}/policy`);
  }

  updatePolicy(
    entity: CompoundEntityRef,
    update: PolicyUpdate,
  ): Promise<PolicyView> {
    return this.request(`${entityPath(entity)}/policy`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(update),
    });
  }

  getFleet(): Promise<FleetSummary> {
    return this.get('/fleet');
  }

  getHealth(): Promise<HealthStatus> {
    return this.get('/health');
  }

  private get<T>(
    path: string,
    query: Record<string, string | undefined> = {},
  ): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') params.set(key, value);
    }
    const search = params.toString();
    return this.request(search ? `${path}?${search}` : path);
  }

  private async request<T>(path: string, init?: RequestInit): Promise<T> {
    const baseUrl = await this.discoveryApi.getBaseUrl(FERRY_PLUGIN_ID);
    const response = await this.fetchApi.fetch(`${baseUrl}${path}`, init);
    if (!response.ok) {
      throw await ResponseError.fromResponse(response);
    }
    return (await response.json()) as T;
  }
}

/**
 * The entity part of a path. Entity refs compare case-insensitively, so kind
 * and namespace are sent in the lower case the catalog uses in its own URLs.
 */
function entityPath(entity: CompoundEntityRef): string {
  return `/entities/${encodeURIComponent(
    entity.kind.toLocaleLowerCase('en-US'),
  )}/${encodeURIComponent(
    entity.namespace.toLocaleLowerCase('en-US'),
  )}/${encodeURIComponent(entity.name)}`;
}
