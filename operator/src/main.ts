/**
 * The operator's process on a cluster: reads the chart's configuration file and
 * the in-cluster credentials, wires `KubeOperator`, and runs it until SIGTERM or
 * SIGINT (a clean stop releases the Lease) or until it loses its lease (it exits
 * 1, and its Deployment restarts it clean).
 *
 *   node main.cjs [--config=/etc/ferry/config.yaml] [--bind-address=0.0.0.0]
 *
 * `FERRY_CONFIG` and `FERRY_BIND_ADDRESS` say the same; `KUBECONFIG` points at a
 * cluster from outside it; `POD_NAME` and `POD_NAMESPACE` (the chart sets them)
 * are the replica's identity in leader election and the Lease's namespace.
 */
import fs from 'node:fs';
import os from 'node:os';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { KubeConfig } from '@kubernetes/client-node';
import { systemClock } from './core/clock';
import { poolsOfNodesWhileUnchanged } from './kube/pools/poolsOfNodes';
import type { CapacityPool } from './core/model';
import { UnavailableDriver } from './kube/runtimes/UnavailableDriver';
import { KubeOperator, OperatorLog } from './kube/KubeOperator';
import { KubePodEvictor } from './kube/runtimes/reschedule/KubePodEvictor';
import { KubeValkeyDriver } from './kube/runtimes/valkey/KubeValkeyDriver';
import { KubeVolumeDriver } from './kube/runtimes/volume/KubeVolumeDriver';
import {
  FerryRuntimeClassPresence,
  KubeCheckpointDriver,
} from './kube/runtimes/checkpoint/KubeCheckpointDriver';
import { KubeNodeAgents } from './kube/runtimes/checkpoint/KubeNodeAgents';
import { loadOperatorConfig, OperatorConfig } from './kube/operatorConfig';
import { PoolPriceFeed } from './kube/pools/PoolPriceFeed';
import { PoolRiskFeed } from './kube/pools/PoolRiskFeed';
import { PoolRiskHistoryStore } from './kube/stores/PoolRiskHistoryStore';
import type { MigrationDriver } from './migration/MigrationDriver';
import { RescheduleDriver } from './migration/reschedule/RescheduleDriver';
import { autoMethodChooser } from './migration/autoMethod';
import { KubeAutoMethodFacts } from './kube/runtimes/KubeAutoMethodFacts';

/** Where the chart mounts the configuration file (templates/configmap.yaml). */
const DEFAULT_CONFIG_FILE = '/etc/ferry/config.yaml';
/** Probes and the API server reach the pod on its IP, so listen on all of them. */
const DEFAULT_BIND_ADDRESS = '0.0.0.0';
/** The namespace a pod's service account token is issued for. */
const SERVICE_ACCOUNT_NAMESPACE_FILE =
  '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
/** Exit status of a configuration the operator refuses to run with. */
const EXIT_BAD_CONFIG = 2;

/**
 * The checkpoint driver when the chart installs the node agents (its
 * `checkpoint.enabled`); otherwise its Migrations roll back at once, saying why.
 */
function checkpointDriver(
  kubeConfig: KubeConfig,
  checkpoint: OperatorConfig['checkpoint'],
  agents: KubeNodeAgents | string,
): MigrationDriver {
  if (typeof agents === 'string') {
    return new UnavailableDriver('checkpoint', agents);
  }
  return new KubeCheckpointDriver({
    kubeConfig,
    clock: systemClock,
    streamWhileDumping: checkpoint.streamWhileDumping,
    route: checkpoint.route,
    agents,
  });
}

/** The node agents when the chart installs them (its `checkpoint.enabled`), or why there are none. */
function nodeAgents(
  kubeConfig: KubeConfig,
  checkpoint: OperatorConfig['checkpoint'],
): KubeNodeAgents | string {
  const token = process.env.FERRY_AGENT_TOKEN;
  if (!checkpoint.enabled || !token) {
    return checkpoint.enabled
      ? 'FERRY_AGENT_TOKEN is not set (the chart sets it from the agent Secret)'
      : "the node agents are not installed (the chart's checkpoint.enabled)";
  }
  const caFile = process.env.FERRY_AGENT_TLS_CA;
  return new KubeNodeAgents({
    kubeConfig,
    namespace: checkpoint.agentNamespace ?? leaseNamespace(),
    labelSelector: checkpoint.agentLabelSelector,
    port: checkpoint.agentPort,
    token,
    ca: caFile ? fs.readFileSync(caFile) : undefined,
  });
}

/** The migration drivers of the process. */
function drivers(
  kubeConfig: KubeConfig,
  checkpoint: OperatorConfig['checkpoint'],
  agents: KubeNodeAgents | string,
): MigrationDriver[] {
  return [
    // Credentials per Migration, from the Secret its SpotPolicy names
    // (spec.valkey.authSecretRef); none when it names none.
    new KubeValkeyDriver({ kubeConfig, clock: systemClock }),
    new RescheduleDriver({
      evictor: new KubePodEvictor(kubeConfig),
      clock: systemClock,
    }),
    // StatefulSet members' claims: re-attached within their zone, snapshotted
    // and restored under the same name across zones (CSI VolumeSnapshots).
    new KubeVolumeDriver({ kubeConfig, clock: systemClock }),
    checkpointDriver(kubeConfig, checkpoint, agents),
  ];
}

const log: OperatorLog & { error(message: string): void } = {
  info: message => console.log(`${new Date().toISOString()} info ${message}`),
  warn: message => console.warn(`${new Date().toISOString()} warn ${message}`),
  error: message =>
    console.error(`${new Date().toISOString()} error ${message}`),
};

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv
    .slice(2)
    .find(arg => arg.startsWith(prefix))
    ?.slice(prefix.length);
}

function leaseNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return fs.readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, 'utf8').trim();
  } catch {
    return 'default';
  }
}

function configuration(file: string): ReturnType<typeof loadOperatorConfig> {
  try {
    return loadOperatorConfig(file);
  } catch (error) {
    const reason = (error as Error).message;
    log.error(`cannot start: configuration ${file}: ${reason}`);
    return process.exit(EXIT_BAD_CONFIG);
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--demo')) {
    log.error(
      'this is the operator on a cluster; demo mode runs in the portal (DemoOperator)',
    );
    process.exit(EXIT_BAD_CONFIG);
  }
  const configFile =
    flag('config') ?? process.env.FERRY_CONFIG ?? DEFAULT_CONFIG_FILE;
  const host =
    flag('bind-address') ??
    process.env.FERRY_BIND_ADDRESS ??
    DEFAULT_BIND_ADDRESS;
  const { config, webhookTls } = configuration(configFile);
  if (!config.leaderElection.enabled) {
    log.warn(
      'leaderElection.enabled is false: this replica leads at once, without a Lease; run only one',
    );
  }
  const aws = config.providers.aws;
  if (aws.enabled && !aws.interruptionQueueUrl) {
    log.warn(
      'providers.aws.interruptionQueueUrl is empty: AWS interruption warnings come only through the Node Termination Handler taints',
    );
  }

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const identity = process.env.POD_NAME ?? os.hostname();
  const prices = new PoolPriceFeed({
    aws: aws.enabled
      ? {
          ec2: new EC2Client({ region: aws.region }),
          region: aws.region!,
          onDemandPricesUsdPerHour: aws.onDemandPricesUsdPerHour,
        }
      : undefined,
    intervalMs: config.pricing.refreshIntervalMs,
    onError: error => log.warn(`prices: ${error}`),
  });

  const risk = new PoolRiskFeed({
    horizonMs: config.defaults.predictionHorizonMinutes * 60_000,
    // EC2's prices move; the shipped table's stand still and say nothing of risk.
    spotPrices: aws.enabled ? () => prices.current() : undefined,
    onError: error => log.warn(`prediction: ${error}`),
  });

  const runtimeClass = new FerryRuntimeClassPresence(kubeConfig, error =>
    log.warn(`runtime class: ${error.message}`),
  );
  await runtimeClass.start();
  let nodePools: (() => CapacityPool[]) | undefined;
  // Checkpoint moves and hibernation (ferry.dev/hibernate-after) both need them.
  const agents = nodeAgents(kubeConfig, config.checkpoint);
  if (typeof agents === 'string') {
    log.info(`hibernation is off: ${agents}`);
  }
  const operator: KubeOperator = new KubeOperator({
    ferryRuntimeClass: () => runtimeClass.installed,
    // `auto` measures each member before its move (server, clients, dataset,
    // runtime class, zonal volume) and records why on the Migration.
    chooseMethod: autoMethodChooser({
      facts: new KubeAutoMethodFacts(kubeConfig, () => runtimeClass.installed),
      clock: systemClock,
    }),
    kubeConfig,
    identity,
    lease: config.leaderElection.enabled && {
      namespace: leaseNamespace(),
      name: config.leaderElection.leaseName,
      leaseDurationMs: config.leaderElection.leaseDurationMs,
      renewDeadlineMs: config.leaderElection.renewDeadlineMs,
      retryPeriodMs: config.leaderElection.retryPeriodMs,
    },
    drivers: drivers(kubeConfig, config.checkpoint, agents),
    nodeAgents: typeof agents === 'string' ? undefined : agents,
    pools: async () => {
      nodePools ??= poolsOfNodesWhileUnchanged(
        {
          get generation() {
            return operator.state.nodes.generation;
          },
          views: () => operator.state.nodeViews(),
        },
        () => prices.current(),
      );
      return nodePools();
    },
    prices: () => prices.current(),
    risk: {
      feed: risk,
      history: new PoolRiskHistoryStore(
        kubeConfig,
        leaseNamespace(),
        config.prediction.historyConfigMap,
      ),
      proactive: config.prediction.proactiveMoves && config.prediction.policy,
    },
    replacement: config.replacement.enabled && {
      settleMs: config.replacement.settleMs,
      maxMovesPerHour: config.replacement.maxMovesPerHour,
    },
    statusRefreshMs: config.status.refreshIntervalMs,
    policyDefaults: config.defaults,
    migrationRetention: {
      maxAgeMs: config.migrationHistory.retentionMs,
      maxPerWorkload: config.migrationHistory.maxPerWorkload,
    },
    webhook: webhookTls
      ? { tls: webhookTls, host, port: config.webhook.port }
      : undefined,
    metricsServer: { host, port: config.metrics.port },
    interruptionQueue:
      aws.enabled && aws.interruptionQueueUrl
        ? {
            sqs: new SQSClient({ region: aws.region }),
            queueUrl: aws.interruptionQueueUrl,
          }
        : undefined,
    log,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: stopping`);
    operator.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      error => {
        log.error(`stopping: ${error}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  await operator.start();
  // After the watches: EC2 is asked about the instance types of the nodes they show.
  await prices.start(() => operator.state.nodeViews());
  const webhooks = operator.webhookPort
    ? `, webhooks on ${host}:${operator.webhookPort}`
    : '';
  log.info(
    `${identity} started: metrics on ${host}:${operator.metricsPort}${webhooks}`,
  );
  await operator.done;
  if (!stopping) {
    // Lost the lease: exit so the replica restarts clean and campaigns again.
    log.error(`${identity} lost its lease; exiting`);
    prices.stop();
    await operator.stop();
    process.exit(1);
  }
}

main().catch(error => {
  log.error(`cannot start: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
