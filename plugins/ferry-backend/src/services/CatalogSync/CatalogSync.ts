import { LoggerService } from '@backstage/backend-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { EntityAccess } from '../EntityReader/EntityAccess';
import {
  CatalogSyncOutcome,
  PolicyService,
} from '../PolicyService/PolicyService';

/**
 * Reads Ferry's annotations from the catalog and turns them into SpotPolicies.
 * One entity's failure (a malformed annotation, a missing workload, a cluster
 * that is down) is logged and never stops the others.
 */
export class CatalogSync {
  constructor(
    private readonly entities: EntityAccess,
    private readonly policies: PolicyService,
    private readonly logger: LoggerService,
  ) {}

  async run(): Promise<Record<CatalogSyncOutcome | 'failed', number>> {
    const counts = {
      created: 0,
      updated: 0,
      unchanged: 0,
      skipped: 0,
      failed: 0,
    };
    const entities = await this.entities.listWithPolicyAnnotations();
    for (const entity of entities) {
      try {
        counts[await this.policies.syncFromCatalog(entity)] += 1;
      } catch (error) {
        counts.failed += 1;
        this.logger.warn(
          `Ferry could not sync the spot policy of ${stringifyEntityRef(
            entity,
          )}: ${(error as Error).message}`,
        );
      }
    }
    if (counts.created + counts.updated + counts.failed > 0) {
      this.logger.info(`Ferry catalog sync: ${JSON.stringify(counts)}`);
    }
    return counts;
  }
}
