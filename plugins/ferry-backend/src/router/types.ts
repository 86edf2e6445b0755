import { HttpAuthService, LoggerService } from '@backstage/backend-plugin-api';
import { createOpenApiRouter } from '../schema/openapi';
import { ClusterRegistry } from '../services/Clusters/ClusterRegistry';
import { DemoReclaim } from '../services/Clusters/DemoReclaim';
import { EntityAccess } from '../services/EntityReader/EntityAccess';
import { PolicyService } from '../services/PolicyService/PolicyService';
import { SpotReports } from '../services/SpotReports/SpotReports';
import { WorkloadLocator } from '../services/WorkloadLocator/WorkloadLocator';

/** The router generated from `src/schema/openapi.yaml`. */
export type FerryRouter = Awaited<ReturnType<typeof createOpenApiRouter>>;

/** What the endpoints need. */
export interface FerryRouterOptions {
  logger: LoggerService;
  httpAuth: HttpAuthService;
  clusters: ClusterRegistry;
  access: EntityAccess;
  locator: WorkloadLocator;
  policies: PolicyService;
  reports: SpotReports;
  demoReclaim: DemoReclaim;
}
