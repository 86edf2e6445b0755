/**
 * Members that require AUTH, on a real cluster with real servers: the operator
 * reads the credentials from the Secret the SpotPolicy names
 * (`spec.valkey.authSecretRef`) when the Migration runs. A Secret or key that
 * is missing rolls the Migration back at once with a message naming it, and
 * the member keeps serving; with the Secret in place the member moves.
 */
import Valkey from 'iovalkey';
import { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { answers, memberClient, ValkeyCluster } from './valkeyStatefulSets';
import { HANDOFF_OF_LABEL } from '../../src/kube/client/ferryKeys';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const SECRET = 'secure-auth';
/** The members' password, new each run. */
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}`;
const KEYS = 500;

describe('credentials for valkey members from the Secret a SpotPolicy names', () => {
  let cluster: ValkeyCluster;
  let core: CoreV1Api;
  /** Members an earlier test tried to move. */
  const tried = new Set<string>();

  beforeAll(async () => {
    cluster = await ValkeyCluster.start(NAMESPACE);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await cluster.createOptedInStatefulSet('secure', {
      port,
      args: ['--requirepass', PASSWORD, '--masterauth', PASSWORD],
      spec: {
        // Every member on spot: one to move per test.
        permanentRatio: 0,
        valkey: { authSecretRef: { name: SECRET, passwordKey: 'password' } },
      },
    });
    await until(
      'three members answering with the password',
      async () => {
        const pods = await cluster.pods('app=secure');
        return (
          pods.length === 3 &&
          (await Promise.all(pods.map(pod => answers(pod, PASSWORD)))).every(
            Boolean,
          ) &&
          cluster.operator.state
            .workloads()[0]
            ?.view.members.every(m => m.ready && m.node)
        );
      },
      {
        timeoutMs: 90_000,
        detail: () => `servers: ${cluster.kubelet.running.join(', ')}`,
      },
    );
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** A member no earlier test tried to move, with `key` written to it. */
  async function memberWith(key: string): Promise<V1Pod> {
    const source = (await cluster.pods('app=secure')).find(
      pod => !tried.has(pod.metadata!.name!),
    )!;
    tried.add(source.metadata!.name!);
    const writer = memberClient(source, PASSWORD);
    await writer.connect();
    await writer.set(key, 'yes');
    writer.disconnect();
    return source;
  }

  /**
   * The notice withdrawn: a member left on a noticed node would stay at risk
   * and keep the workload's one move slot (the planner gives it the slot in
   * every pass, and its rolled-back Migration is not made again).
   */
  async function untaint(pod: V1Pod): Promise<void> {
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/nodes/${pod.spec!.nodeName}`,
      {
        contentType: 'application/merge-patch+json',
        body: { spec: { taints: null } },
      },
    );
  }

  /** The member was not touched: same pod, no temporary member, still the primary with its data. */
  async function expectStillServing(source: V1Pod, key: string) {
    const name = source.metadata!.name!;
    const kept = await core.readNamespacedPod({ namespace: NAMESPACE, name });
    expect(kept.metadata!.uid).toBe(source.metadata!.uid);
    expect(kept.metadata!.deletionTimestamp).toBeUndefined();
    const temporary = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: `${HANDOFF_OF_LABEL}=${name}`,
    });
    expect(temporary.items).toEqual([]);
    const reader = memberClient(kept, PASSWORD);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.get(key)).toBe('yes');
      await reader.set('still-writable', '1');
    } finally {
      reader.disconnect();
    }
  }

  it('rolls back at once when the Secret does not exist, naming it; the member keeps serving', async () => {
    const source = await memberWith('kept-1');
    await cluster.taint(source.spec!.nodeName!);
    const done = await cluster.finished(source.metadata!.name!);
    await untaint(source);
    expect([done.status?.phase, done.status?.failedPhase]).toEqual([
      'RolledBack',
      'PreparingTarget',
    ]);
    expect(done.status?.message).toContain(
      `Secret ${NAMESPACE}/${SECRET} (SpotPolicy ${NAMESPACE}/secure, spec.valkey.authSecretRef) does not exist`,
    );
    await expectStillServing(source, 'kept-1');
  }, 180_000);

  it('rolls back at once when the Secret lacks the key, naming the key and the keys it has', async () => {
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: SECRET }, stringData: { pass: PASSWORD } },
    });
    const source = await memberWith('kept-2');
    await cluster.taint(source.spec!.nodeName!);
    const done = await cluster.finished(source.metadata!.name!);
    await untaint(source);
    expect([done.status?.phase, done.status?.failedPhase]).toEqual([
      'RolledBack',
      'PreparingTarget',
    ]);
    expect(done.status?.message).toContain(
      `has no key 'password' (passwordKey); its keys are pass`,
    );
    await expectStillServing(source, 'kept-2');
  }, 180_000);

  it('moves a member that requires AUTH with the credentials from the Secret', async () => {
    await apiRequest(
      cluster.kubeConfig(),
      'PATCH',
      `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`,
      {
        contentType: 'application/merge-patch+json',
        body: { stringData: { password: PASSWORD } },
      },
    );
    const source = (await cluster.pods('app=secure')).find(
      pod => !tried.has(pod.metadata!.name!),
    )!;
    tried.add(source.metadata!.name!);
    const sourceName = source.metadata!.name!;
    const writer = memberClient(source, PASSWORD);
    await writer.connect();
    const pipeline = writer.pipeline();
    for (let i = 0; i < KEYS; i++) pipeline.set(`secret:${i}`, `value-${i}`);
    await pipeline.exec();
    writer.disconnect();

    await cluster.taint(source.spec!.nodeName!);
    const done = await cluster.finished(sourceName);
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    const moved = await until('the recreated member', async () => {
      const pod = (await cluster.pods('app=secure')).find(
        p => p.metadata!.name === sourceName,
      );
      return pod?.metadata!.uid !== source.metadata!.uid && pod;
    });
    expect(moved.spec!.nodeName).toBe(done.spec.targetNode);
    const reader = memberClient(moved, PASSWORD);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.dbsize()).toBe(KEYS);
      expect(await reader.get(`secret:${KEYS - 1}`)).toBe(`value-${KEYS - 1}`);
    } finally {
      reader.disconnect();
    }
    // The member still requires AUTH: the move changed nothing in its
    // configuration. (No ready check: it would fail on NOAUTH and close.)
    const anonymous = new Valkey({
      host: moved.status!.podIP,
      port: moved.spec!.containers[0].ports![0].containerPort,
      lazyConnect: true,
      enableReadyCheck: false,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    anonymous.on('error', () => {});
    await anonymous.connect();
    try {
      await expect(anonymous.get('secret:0')).rejects.toThrow(/NOAUTH/);
    } finally {
      anonymous.disconnect();
    }
  }, 180_000);
});
