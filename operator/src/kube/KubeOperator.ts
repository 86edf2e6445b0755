import type { KubeConfig } from '@kubernetes/client-node';
import { Clock, systemClock } from '../core/clock';
import type { CapacityPool } from '../core/model';
import type { MigrationDriver } from '../migration/MigrationDriver';
import type { OperatorLog, OperatorPorts } from '../OperatorPorts';
import {
  wireOperator,
  type Operator,
  type OperatorSettings,
} from '../wireOperator';
import type { PodMutator } from './admission/AdmissionWebhookServer';
import { KubeClusterWrites } from './client/KubeClusterWrites';
import { EventRecorder } from './client/EventRecorder';
import { kubeInformers } from './informers/kubeInformers';
import {
  LeaderElector,
  LEADER_ELECTION_DEFAULTS,
} from './leadership/LeaderElector';
import { SoleLeader } from './leadership/SoleLeader';
import type { OperatorMetrics } from './metrics/OperatorMetrics';
import type { PriceBook } from './pools/PoolPriceFeed';
import type { ClusterState } from './state/ClusterState';
import { KubeMigrationStore } from './stores/KubeMigrationStore';
import { KubeHibernationCluster } from './hibernation/HibernationCluster';
import type { NodeAgentFinder } from './runtimes/checkpoint/KubeCheckpointDriver';

export type { OperatorLog } from '../OperatorPorts';

/** Everything the operator on a cluster is made of; tests swap any part. */
export interface KubeOperatorOptions extends OperatorSettings {
  kubeConfig: KubeConfig;
  /** This replica, unique among them: the pod name. */
  identity: string;
  /**
   * The Lease the replicas elect their leader with; `false` (leaderElection.enabled:
   * false) makes this replica lead at once with no Lease, which is only sound alone.
   */
  lease:
    | {
        namespace: string;
        name: string;
        leaseDurationMs?: number;
        renewDeadlineMs?: number;
        retryPeriodMs?: number;
      }
    | false;
  drivers: MigrationDriver[];
  /** The spot and permanent pools the cloud offers now, with prices and risk. */
  pools: () => Promise<CapacityPool[]>;
  /** What pools cost, for SpotPolicy status; the shipped price table by default. */
  prices?: () => PriceBook;
  /** The node agents (the chart's `checkpoint.enabled`): with them, pods that opted in hibernate. */
  nodeAgents?: NodeAgentFinder;
  clock?: Clock;
  log?: OperatorLog;
}

const silent: OperatorLog = { info: () => {}, warn: () => {} };

/** The operator's ports on a cluster: informers, writes, Migrations, Events and the Lease through the API server. */
export function kubePorts(options: KubeOperatorOptions): OperatorPorts {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? silent;
  const { kubeConfig, identity, lease } = options;
  return {
    identity,
    informers: kubeInformers(kubeConfig),
    writes: new KubeClusterWrites(kubeConfig),
    migrations: new KubeMigrationStore(kubeConfig),
    events: new EventRecorder({
      kubeConfig,
      instance: identity,
      clock,
      onError: error => log.warn(`event not recorded: ${error}`),
    }),
    leadership: callbacks =>
      lease
        ? new LeaderElector({
            kubeConfig,
            namespace: lease.namespace,
            name: lease.name,
            identity,
            leaseDurationMs:
              lease.leaseDurationMs ?? LEADER_ELECTION_DEFAULTS.leaseDurationMs,
            renewDeadlineMs:
              lease.renewDeadlineMs ?? LEADER_ELECTION_DEFAULTS.renewDeadlineMs,
            retryPeriodMs:
              lease.retryPeriodMs ?? LEADER_ELECTION_DEFAULTS.retryPeriodMs,
            clock,
            ...callbacks,
          })
        : new SoleLeader(callbacks),
    drivers: options.drivers,
    pools: options.pools,
    prices: options.prices,
    hibernation: options.nodeAgents && {
      cluster: new KubeHibernationCluster(kubeConfig),
      agents: options.nodeAgents,
    },
    clock,
    log,
  };
}

/**
 * Ferry's operator on a cluster: `wireOperator` with the cluster's ports. Every
 * replica watches the cluster and serves the webhooks; only the leader (Lease,
 * or alone with `lease: false`) acts. A replica that loses the lease stops
 * acting at once and `done` resolves, so that its process exits and is
 * restarted clean.
 */
export class KubeOperator implements Operator {
  private readonly operator: Operator;

  constructor(options: KubeOperatorOptions) {
    this.operator = wireOperator(kubePorts(options), options);
  }

  get metrics(): OperatorMetrics {
    return this.operator.metrics;
  }

  get state(): ClusterState {
    return this.operator.state;
  }

  get isLeader(): boolean {
    return this.operator.isLeader;
  }

  get webhookPort(): number | undefined {
    return this.operator.webhookPort;
  }

  get metricsPort(): number | undefined {
    return this.operator.metricsPort;
  }

  get admitPod(): PodMutator {
    return this.operator.admitPod;
  }

  get done(): Promise<void> {
    return this.operator.done;
  }

  start(): Promise<void> {
    return this.operator.start();
  }

  stop(): Promise<void> {
    return this.operator.stop();
  }
}
