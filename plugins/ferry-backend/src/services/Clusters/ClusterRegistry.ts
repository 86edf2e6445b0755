import { LoggerService } from '@backstage/backend-plugin-api';
import { NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import type {
  FerryClusterClient,
  FerryDemoCluster,
} from '@ferry/plugin-ferry-node';
import { FerryConfig } from '../../config';
import { KubernetesFerryClusterClient } from './KubernetesFerryClusterClient';

/** The name of the in-process cluster of demo mode. */
export const DEMO_CLUSTER_NAME = 'demo';

/** A cluster Ferry talks to, by the name the Kubernetes plugin gives it. */
export interface FerryCluster {
  name: string;
  client: FerryClusterClient;
}

/** What Ferry last saw of a cluster. */
export interface ClusterReachability {
  name: string;
  reachable: boolean;
  message?: string;
}

/**
 * The clusters of this portal: the in-process demo cluster a module gave it, or
 * the clusters of the Kubernetes plugin's configuration, and whether each
 * answered the last time Ferry asked.
 */
export class ClusterRegistry {
  private readonly reachability = new Map<string, ClusterReachability>();

  static fromConfig(
    config: FerryConfig,
    logger: LoggerService,
    demo?: FerryDemoCluster,
  ): ClusterRegistry {
    if (demo) {
      return new ClusterRegistry(
        [{ name: DEMO_CLUSTER_NAME, client: demo }],
        demo,
      );
    }
    return new ClusterRegistry(
      config.clusters.map(cluster => ({
        name: cluster.name,
        client: new KubernetesFerryClusterClient(cluster, logger),
      })),
    );
  }

  constructor(
    private readonly clusters: FerryCluster[],
    /** The in-process cluster, in demo mode only. */
    readonly demo?: FerryDemoCluster,
  ) {}

  get mode(): 'demo' | 'kubernetes' {
    return this.demo ? 'demo' : 'kubernetes';
  }

  list(): FerryCluster[] {
    return this.clusters;
  }

  get(name: string): FerryCluster {
    const cluster = this.clusters.find(c => c.name === name);
    if (!cluster) {
      throw new NotFoundError(
        `Ferry knows no cluster named ${name}; the clusters are those of kubernetes.clusterLocatorMethods`,
      );
    }
    return cluster;
  }

  /** Runs a call against a cluster, remembering whether it answered; a failure is a 503. */
  async call<T>(
    cluster: FerryCluster,
    fn: (client: FerryClusterClient) => Promise<T>,
  ): Promise<T> {
    try {
      const result = await fn(cluster.client);
      this.reachability.set(cluster.name, {
        name: cluster.name,
        reachable: true,
      });
      return result;
    } catch (error) {
      if (isClusterUnavailable(error)) {
        const message = `Cluster ${cluster.name} did not answer: ${String(
          (error as Error).message ?? error,
        )}`;
        this.reachability.set(cluster.name, {
          name: cluster.name,
          reachable: false,
          message,
        });
        throw new ServiceUnavailableError(
          `${message}. Ferry keeps what it stored; try again when the cluster is back.`,
        );
      }
      throw error;
    }
  }

  reachabilityOf(): ClusterReachability[] {
    return this.clusters.map(
      c => this.reachability.get(c.name) ?? { name: c.name, reachable: true },
    );
  }
}

/** Connection failures and 5xx answers of the API server, as opposed to answers about objects. */
function isClusterUnavailable(error: unknown): boolean {
  const e = error as {
    code?: unknown;
    statusCode?: unknown;
    name?: unknown;
    cause?: unknown;
  };
  const status = Number(
    e?.statusCode ?? (e as any)?.response?.statusCode ?? (e as any)?.code,
  );
  if (Number.isFinite(status) && status >= 500) return true;
  const code = String((e?.cause as any)?.code ?? e?.code ?? '');
  return (
    /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|EAI_AGAIN|UND_ERR)/.test(
      code,
    ) ||
    e?.name === 'FetchError' ||
    e?.name === 'AbortError' ||
    e?.name === 'ClusterUnavailableError'
  );
}
