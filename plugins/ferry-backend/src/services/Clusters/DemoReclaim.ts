import { ConflictError, NotFoundError } from '@backstage/errors';
import type { MigrationRecord } from '@ferry/plugin-ferry-common';
import { DatabaseFerryStore } from '../../database/DatabaseFerryStore';
import { HistoryIngestion } from '../HistoryIngestion/HistoryIngestion';
import { ClusterRegistry, DEMO_CLUSTER_NAME } from './ClusterRegistry';

/** Demo mode's stand-in for the cloud taking a spot node back. */
export class DemoReclaim {
  constructor(
    private readonly clusters: ClusterRegistry,
    private readonly ingestion: HistoryIngestion,
    private readonly store: DatabaseFerryStore,
  ) {}

  /** Reclaims the node (or one that runs Ferry-managed replicas) and returns the migrations it started. */
  async reclaim(
    node?: string,
  ): Promise<{ node: string; migrations: MigrationRecord[] }> {
    const demo = this.clusters.demo;
    if (!demo) {
      throw new NotFoundError(
        'Ferry is not in demo mode, so there is no simulated cloud to reclaim a node; set ferry.demo.enabled to true to use it',
      );
    }
    const inUse = demo.listSpotNodesInUse();
    const target = node ?? inUse[0];
    if (!target) {
      throw new ConflictError(
        'No spot node runs Ferry-managed replicas yet; opt a service in (ferry.dev/spot: enabled) and try again',
      );
    }
    if (!inUse.includes(target)) {
      throw new NotFoundError(
        `No spot node named ${target} runs Ferry-managed replicas; the spot nodes in use are: ${
          inUse.join(', ') || 'none'
        }`,
      );
    }
    const cluster = this.clusters.get(DEMO_CLUSTER_NAME);
    const before = new Set(
      (await demo.listMigrations()).map(m => m.metadata.name),
    );
    try {
      demo.reclaimNode(target);
    } catch (error) {
      // e.g. the simulated cloud reclaimed it on its own a moment ago
      throw new ConflictError(
        `${target} cannot be reclaimed now: ${
          (error as Error).message
        }; try again, or name another spot node`,
      );
    }
    const started = (await demo.listMigrations()).filter(
      m => !before.has(m.metadata.name),
    );
    await this.ingestion.ingestCluster(cluster);
    const migrations = await this.store.getMigrations(
      started.map(
        m => `${DEMO_CLUSTER_NAME}/${m.metadata.namespace}/${m.metadata.name}`,
      ),
    );
    return { node: target, migrations };
  }
}
