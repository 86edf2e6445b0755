/**
 * What the suites that move Valkey StatefulSet members share: a local control
 * plane with a fleet of fake nodes whose pods get loopback IPs, a
 * `ProcessKubelet` running a redis-server for each running member, the operator
 * wired as src/main.ts wires it (credentials from the Secret a SpotPolicy
 * names), and an opted-in StatefulSet builder.
 */
import Valkey from 'iovalkey';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  V1Pod,
} from '@kubernetes/client-node';
import { FERRY_API_VERSION, Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { KubeValkeyDriver } from '../../src/kube/runtimes/valkey/KubeValkeyDriver';
import { SPOT_POLICIES } from '../../src/kube/client/resources';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { loopbackPodCidrs, ProcessKubelet } from './processKubelet';
import { until } from './until';
import { startOperator } from './startOperator';
import { migrationsIn } from './migrations';

/** Two spot nodes and one on-demand node in each of three zones. */
export const VALKEY_FLEET: FakeNodeSpec[] = zonalFleet();

/** A client of one member pod, at its IP; no retries, so a failure shows. */
export function memberClient(pod: V1Pod, password?: string): Valkey {
  return valkeyClient(
    pod.status!.podIP!,
    pod.spec!.containers[0].ports![0].containerPort,
    password,
  );
}

/** A client of one address (a pod's, or an endpoint's); no retries, so a failure shows. */
export function valkeyClient(
  host: string,
  port: number,
  password?: string,
): Valkey {
  const valkey = new Valkey({
    host,
    port,
    password,
    lazyConnect: true,
    connectTimeout: 1_000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  valkey.on('error', () => {});
  return valkey;
}

/** Whether the member answers PING (with the password, if it needs one). */
export async function answers(pod: V1Pod, password?: string): Promise<boolean> {
  const valkey = memberClient(pod, password);
  try {
    await valkey.connect();
    return (await valkey.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    valkey.disconnect();
  }
}

/** A cluster with real redis-servers for the pods of `namespace`, and the operator. */
export class ValkeyCluster {
  private constructor(
    readonly controlPlane: LocalControlPlane,
    readonly kubelet: ProcessKubelet,
    readonly operator: KubeOperator,
    readonly namespace: string,
    /** What the operator warned of, for a failing test's message. */
    readonly warnings: string[],
  ) {}

  static async start(namespace: string): Promise<ValkeyCluster> {
    const controlPlane = await LocalControlPlane.start();
    const kc = controlPlane.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, VALKEY_FLEET);
    await loopbackPodCidrs(
      kc,
      VALKEY_FLEET.map(node => node.name),
    );
    for (const name of [namespace, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    const kubelet = new ProcessKubelet(kc, namespace);
    await kubelet.start();
    const { operator, warnings } = await startOperator(
      controlPlane,
      {
        // As src/main.ts wires it: credentials from the Secret a policy names.
        drivers: [new KubeValkeyDriver({ kubeConfig: kc, clock: systemClock })],
        pools: async () => poolsOf(VALKEY_FLEET),
      },
      { webhooks: true },
    );
    return new ValkeyCluster(
      controlPlane,
      kubelet,
      operator,
      namespace,
      warnings,
    );
  }

  kubeConfig(): KubeConfig {
    return this.controlPlane.kubeConfig();
  }

  async stop(): Promise<void> {
    await this.operator.stop();
    await this.kubelet.stop();
    await this.controlPlane.stop();
  }

  /** The Running pods whose labels `selector` picks, not being deleted. */
  async pods(selector: string): Promise<V1Pod[]> {
    const pods = await this.kubeConfig()
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({
        namespace: this.namespace,
        labelSelector: selector,
      });
    return pods.items.filter(
      pod =>
        pod.status?.podIP &&
        pod.status.phase === 'Running' &&
        !pod.metadata?.deletionTimestamp,
    );
  }

  /** An AWS Node Termination Handler's spot interruption taint on the node. */
  async taint(node: string): Promise<void> {
    await apiRequest(this.kubeConfig(), 'PATCH', `/api/v1/nodes/${node}`, {
      contentType: 'application/merge-patch+json',
      body: {
        spec: {
          taints: [
            {
              key: 'aws-node-termination-handler/spot-itn',
              value: 'evt-1',
              effect: 'NoSchedule',
            },
          ],
        },
      },
    });
  }

  /** The Migration of the pod, once in a final phase. */
  finished(pod: string, timeoutMs = 120_000): Promise<Migration> {
    return until(
      `the migration of ${pod} to finish`,
      async () =>
        (await migrationsIn(this.kubeConfig(), this.namespace)).find(
          m =>
            m.spec.pod === pod &&
            ['Succeeded', 'RolledBack', 'Failed'].includes(
              m.status?.phase ?? '',
            ),
        ),
      {
        timeoutMs,
        detail: () => `operator warnings: ${this.warnings.join('; ')}`,
      },
    );
  }

  /**
   * A three-member Valkey StatefulSet `name` (label `app: name`, Parallel pod
   * management), its redis-servers on `port` with `args`, opted in by a
   * SpotPolicy of the same name with `spec` added, and a PodDisruptionBudget
   * of two available members.
   */
  async createOptedInStatefulSet(
    name: string,
    options: { port: number; args?: string[]; spec?: Record<string, unknown> },
  ): Promise<void> {
    const kc = this.kubeConfig();
    await createValkeyStatefulSet(kc, this.namespace, name, options);
    await apiRequest(
      kc,
      'POST',
      `/apis/policy/v1/namespaces/${this.namespace}/poddisruptionbudgets`,
      {
        body: {
          apiVersion: 'policy/v1',
          kind: 'PodDisruptionBudget',
          metadata: { name },
          spec: { minAvailable: 2, selector: { matchLabels: { app: name } } },
        },
      },
    );
    await apiRequest(
      kc,
      'POST',
      collectionPath(SPOT_POLICIES, this.namespace),
      {
        body: {
          apiVersion: FERRY_API_VERSION,
          kind: 'SpotPolicy',
          metadata: { name },
          spec: {
            workloadRef: { kind: 'StatefulSet', name },
            migration: 'valkey',
            ...options.spec,
          },
        },
      },
    );
  }
}

/**
 * A three-member Valkey StatefulSet `name` (label `app: name`, Parallel pod
 * management) on spot nodes, its redis-servers on `port` with `args`.
 */
export async function createValkeyStatefulSet(
  kc: KubeConfig,
  namespace: string,
  name: string,
  options: { port: number; args?: string[] },
): Promise<void> {
  await kc.makeApiClient(AppsV1Api).createNamespacedStatefulSet({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: 3,
        serviceName: name,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            nodeSelector: { 'karpenter.sh/capacity-type': 'spot' },
            containers: [
              {
                name: 'valkey',
                image: 'valkey/valkey:8',
                args: options.args,
                resources: { requests: { cpu: '250m', memory: '512Mi' } },
                ports: [{ name: 'valkey', containerPort: options.port }],
              },
            ],
          },
        },
      },
    },
  });
}
