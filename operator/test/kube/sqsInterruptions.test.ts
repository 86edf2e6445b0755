/**
 * An EC2 Spot Instance Interruption Warning that arrives through SQS, as
 * EventBridge delivers it, becomes a Migration on a real cluster: the operator
 * (leader) long-polls a fake SQS endpoint on loopback with the real
 * `@aws-sdk/client-sqs`, finds the kwok node whose `spec.providerID` names the
 * instance, and plans the move of the opted-in member on it with the deadline
 * the event sets; the node itself is never tainted or cordoned. A malformed
 * message ahead of it is deleted and does not stop the reader.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { CoreV1Api, V1Node } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { spotInterruptionWarning } from '../../src/cloud/aws/__fixtures__/eventBridgeEvents';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import type { MigrationDriver } from '../../src/migration/MigrationDriver';
import { FakeSqsQueue } from './fakeSqs';
import {
  createFakeNodes,
  FakeNodeSpec,
  poolsOf,
  zonalFleet,
} from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { until } from './until';
import { startOperator } from './startOperator';
import { migrationsIn } from './migrations';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const AWS_NOTICE_MS = 120_000;
/** How long the test's cloud takes to list its pools, and so each planning pass at least. */
const PLANNING_DELAY_MS = 500;

/** Two spot nodes and one on-demand node in each of three zones, each an EC2 instance. */
const FLEET: FakeNodeSpec[] = zonalFleet();

/** A made-up but well-formed instance id per node, as EC2 assigns them. */
function instanceIdOf(node: string): string {
  return `i-0${Buffer.from(node).toString('hex').padEnd(16, '0').slice(0, 16)}`;
}

/** Stands in for the valkey driver: kwok's pods run nothing to move state between. */
const instantDriver: MigrationDriver = {
  method: 'valkey',
  prepareTarget: async () => {},
  transfer: async ctx => ctx.addBytesMoved(1 << 20),
  switchOver: async ctx => ctx.recordWritePause(2),
  verify: async () => {},
  cleanUp: async () => {},
  rollBack: async () => {},
};

describe('AWS interruption events through SQS on a real cluster', () => {
  let cluster: LocalControlPlane;
  let operator: KubeOperator;
  let sqs: SQSClient;
  const queue = new FakeSqsQueue();
  let warnings: string[] = [];

  beforeAll(async () => {
    await queue.start();
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    // A providerID may be set once, as the cloud controller manager does after registration.
    for (const spec of FLEET) {
      await apiRequest(kc, 'PATCH', `/api/v1/nodes/${spec.name}`, {
        contentType: 'application/merge-patch+json',
        body: {
          spec: {
            providerID: `aws:///${spec.zone}/${instanceIdOf(spec.name)}`,
          },
        },
      });
    }
    for (const name of [NAMESPACE, 'ferry-system']) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    await createOptedInSessions(kc, NAMESPACE, { migration: 'valkey' });
    sqs = new SQSClient({
      region: 'us-east-1',
      endpoint: queue.endpoint,
      credentials: {
        accessKeyId: 'AKIAFAKEFAKEFAKEFAKE',
        secretAccessKey: 'fake-secret',
      },
    });
    ({ operator, warnings } = await startOperator(cluster, {
      lease: {
        namespace: 'ferry-system',
        name: 'ferry-leader',
        leaseDurationMs: 2_000,
        renewDeadlineMs: 1_500,
        retryPeriodMs: 200,
      },
      drivers: [instantDriver],
      // A slow cloud makes each planning pass take a while, so that a reader
      // deleting before the pass has recorded the move is caught at it.
      pools: async () => {
        await new Promise(resolve => setTimeout(resolve, PLANNING_DELAY_MS));
        return poolsOf(FLEET);
      },
      // Short long-polls, so that stopping never waits long on the one under way.
      interruptionQueue: { sqs, queueUrl: queue.queueUrl, waitTimeSeconds: 1 },
    }));
  }, 180_000);

  afterAll(async () => {
    await operator?.stop();
    sqs?.destroy();
    await queue.stop();
    await cluster?.stop();
  });

  async function members() {
    return until(
      'three members ready and a leader',
      () => {
        const found = operator.state.workloads()[0]?.view.members ?? [];
        return operator.isLeader &&
          found.length === 3 &&
          found.every(m => m.node && m.ready)
          ? found
          : undefined;
      },
      {
        timeoutMs: 30_000,
        detail: () => JSON.stringify(operator.state.workloads()),
      },
    );
  }

  async function migrationIn(pod: string, phase: string): Promise<Migration> {
    let list: Migration[] = [];
    return until(
      `a ${phase} Migration for ${pod}`,
      async () => {
        list = await migrationsIn(cluster.kubeConfig(), NAMESPACE);
        return list.find(m => m.spec.pod === pod && m.status?.phase === phase);
      },
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        detail: () =>
          `${JSON.stringify(
            list.map(m => [m.spec.pod, m.status?.phase]),
          )}; warnings: ${warnings.join('; ')}`,
      },
    );
  }

  it('plans and runs the move of the member on the instance a spot interruption warning names', async () => {
    const [member] = await members();
    const instanceId = instanceIdOf(member.node!);
    // Whole seconds, as EventBridge writes an event's time.
    const eventTime = new Date(Math.floor(Date.now() / 1000) * 1000)
      .toISOString()
      .replace('.000Z', 'Z');
    const poison = queue.send(
      '{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": ',
    );
    const warning = queue.send(
      JSON.stringify({
        ...spotInterruptionWarning,
        time: eventTime,
        region: 'us-east-1',
        resources: [
          `arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`,
        ],
        detail: { 'instance-id': instanceId, 'instance-action': 'terminate' },
      }),
    );
    const sentAt = Date.now();
    // The reader deletes a warning only once its move is recorded, so that a
    // leader that dies first leaves the message to the next one.
    const migrationsAtDelete = new Map<string, string[]>();
    queue.beforeDelete = async messageId => {
      const list = await migrationsIn(cluster.kubeConfig(), NAMESPACE);
      migrationsAtDelete.set(
        messageId,
        list.map(m => m.spec.pod),
      );
    };

    const planned = await migrationIn(member.pod, 'Succeeded');
    process.stdout.write(
      `SQS message to Succeeded Migration: ${Date.now() - sentAt} ms\n`,
    );

    expect(planned.spec).toMatchObject({
      workloadRef: { kind: 'Deployment', name: 'sessions' },
      pod: member.pod,
      sourceNode: member.node,
      reason: 'notice',
      driver: 'valkey',
    });
    expect(Date.parse(planned.spec.deadline!)).toBe(
      Date.parse(eventTime) + AWS_NOTICE_MS,
    );
    expect(planned.spec.targetNode).toBeDefined();
    expect(planned.spec.targetNode).not.toBe(member.node);
    // The signal went through SQS alone: the node carries no taint or cordon.
    const node = await apiRequest<V1Node>(
      cluster.kubeConfig(),
      'GET',
      `/api/v1/nodes/${member.node}`,
    );
    expect(node.spec?.taints ?? []).toEqual([]);
    expect(node.spec?.unschedulable).toBeFalsy();
    // Both messages were deleted: the handled one, and the poison one that must not loop.
    expect(queue.deleted).toEqual(expect.arrayContaining([poison, warning]));
    expect(queue.depth).toBe(0);
    expect(migrationsAtDelete.get(warning)).toContain(member.pod);
    const receive = queue.calls.find(c => c.action === 'ReceiveMessage')!;
    expect(receive.input).toMatchObject({
      QueueUrl: queue.queueUrl,
      WaitTimeSeconds: 1,
      VisibilityTimeout: 30,
      MaxNumberOfMessages: 10,
    });
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /dropped, it is no interruption event: the message is not JSON/,
      ),
    );
  });

  it('drops a warning for an instance of no node in the cluster, and plans nothing for it', async () => {
    const before = (await migrationsIn(cluster.kubeConfig(), NAMESPACE)).length;
    const foreign = queue.send(
      JSON.stringify({
        ...spotInterruptionWarning,
        time: new Date().toISOString(),
        detail: {
          'instance-id': 'i-0ffffffffffffffff',
          'instance-action': 'stop',
        },
      }),
    );
    await until(
      'the foreign notice to be deleted from the queue',
      () => queue.deleted.includes(foreign),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const after = (await migrationsIn(cluster.kubeConfig(), NAMESPACE)).length;
    expect(after).toBe(before);
  });
});
