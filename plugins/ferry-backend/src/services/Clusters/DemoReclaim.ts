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

  /**
   * Reclaims the node (or one that runs Ferry-managed replicas and has no
   * termination notice yet) and returns the migrations it started.
   */
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
    const reclaimable = demo.listReclaimableSpotNodes();
    if (node !== undefined && !inUse.includes(node)) {
      throw new NotFoundError(
        `No spot node named ${node} runs Ferry-managed replicas; the spot nodes in use are: ${
          inUse.join(', ') || 'none'
        }`,
      );
    }
    // A node with a termination notice already has its moves planned: a second
    // reclaim of it would start nothing.
    const beingReclaimed = inUse.filter(n => !reclaimable.includes(n));
    if (node !== undefined && beingReclaimed.includes(node)) {
      throw new ConflictError(
        `${node} is already being reclaimed (it has a termination notice and its replicas are moving); ${
          reclaimable.length > 0
            ? `name one of ${reclaimable.join(', ')}, or send no node`
            : 'no other spot node can be reclaimed now; try again once the moves are done'
        }`,
      );
    }
    const target = node ?? reclaimable[0];
    if (!target) {
      throw new ConflictError(
        inUse.length === 0
          ? 'No spot node runs Ferry-managed replicas yet; opt a service in (ferry.dev/spot: enabled) and try again'
          : `Every spot node that runs Ferry-managed replicas is already being reclaimed (${inUse.join(
              ', ',
            )}); try again once their moves are done`,
      );
    }
    const cluster = this.clusters.get(DEMO_CLUSTER_NAME);
    const before = new Set(
      (await demo.listMigrations()).map(m => m.metadata.name),
    );
    try {
      await demo.reclaimNode(target);
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
