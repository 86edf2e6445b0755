/**
 * The StatefulSet hand-off (`StatefulSetValkeyDriver`) resumed after an
 * operator restart at every step, with real servers (`ProcessKubelet`) on a
 * real control plane: each step runs once, then again from the driver state
 * recorded *before* it, by a fresh driver, as a successor runs a step whose
 * completion its predecessor never recorded. The move ends as a single run
 * would. A placement webhook pins the recreated member to the target, as
 * Ferry's does while the member's Migration runs.
 */
import { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import {
  AdmissionWebhookServer,
  JsonPatchOperation,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { StatefulSetValkeyDriver } from '../../src/kube/runtimes/valkey/StatefulSetValkeyDriver';
import type { MigrationStepContext } from '../../src/migration/MigrationDriver';
import { createFakeNodes } from './fakeNodes';
import { registerFerryWebhooks } from './ferryWebhooks';
import { LocalControlPlane } from './LocalControlPlane';
import { loopbackPodCidrs, ProcessKubelet } from './processKubelet';
import {
  answers,
  createValkeyStatefulSet,
  memberClient,
  VALKEY_FLEET,
} from './valkeyStatefulSets';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const KEYS = 1_000;
const STEPS = [
  'prepareTarget',
  'transfer',
  'switchOver',
  'verify',
  'cleanUp',
] as const;

describe('the StatefulSet valkey hand-off, resumed by a fresh operator after every step', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let kubelet: ProcessKubelet;
  let webhook: AdmissionWebhookServer;
  /** Pod name → target node, for the moves under way. */
  const targets = new Map<string, string>();

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    await createFakeNodes(kc, VALKEY_FLEET);
    await loopbackPodCidrs(
      kc,
      VALKEY_FLEET.map(node => node.name),
    );
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    kubelet = new ProcessKubelet(kc, NAMESPACE);
    await kubelet.start();
    webhook = new AdmissionWebhookServer({
      tls: cluster.issueServingCertificate('webhook'),
      host: '127.0.0.1',
      mutatePod: async (pod, admission): Promise<JsonPatchOperation[]> => {
        const target = targets.get(
          `${admission.namespace}/${pod.metadata?.name}`,
        );
        if (!target || !pod.metadata?.ownerReferences) return [];
        return [
          {
            op: 'add',
            path: '/spec/affinity',
            value: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchFields: [
                        {
                          key: 'metadata.name',
                          operator: 'In',
                          values: [target],
                        },
                      ],
                    },
                  ],
                },
              },
            },
          },
        ];
      },
    });
    await registerFerryWebhooks(kc, await webhook.start(), cluster.caPem);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await createValkeyStatefulSet(kc, NAMESPACE, 'cache', { port });
    await until(
      'three members answering',
      async () => {
        const pods = await running();
        return (
          pods.length === 3 &&
          (await Promise.all(pods.map(pod => answers(pod)))).every(Boolean)
        );
      },
      { timeoutMs: 90_000 },
    );
  }, 240_000);

  afterAll(async () => {
    await webhook?.stop();
    await kubelet?.stop();
    await cluster?.stop();
  });

  async function running(): Promise<V1Pod[]> {
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: 'app=cache',
    });
    return pods.items.filter(
      pod =>
        pod.status?.phase === 'Running' &&
        pod.status.podIP &&
        !pod.metadata?.deletionTimestamp,
    );
  }

  it('ends with the recreated member on the target node holding every key, the temporary member gone', async () => {
    const [source] = await running();
    const member = source.metadata!.name!;
    const sourceNode = source.spec!.nodeName!;
    const targetNode = VALKEY_FLEET.map(n => n.name).find(
      n => n.startsWith('spot-') && n !== sourceNode,
    )!;
    const writer = memberClient(source);
    await writer.connect();
    const pipeline = writer.pipeline();
    for (let i = 0; i < KEYS; i++) pipeline.set(`entry:${i}`, `value-${i}`);
    await pipeline.exec();
    writer.disconnect();
    targets.set(`${NAMESPACE}/${member}`, targetNode);

    const migration: Migration = {
      apiVersion: 'ferry.dev/v1alpha1',
      kind: 'Migration',
      metadata: { namespace: NAMESPACE, name: `${member}-notice`, uid: 'm-1' },
      spec: {
        workloadRef: { kind: 'StatefulSet', name: 'cache' },
        pod: member,
        sourceNode,
        targetNode,
        reason: 'notice',
        driver: 'valkey',
      },
    };
    const pauses: number[] = [];
    const step = (state: Record<string, string>): MigrationStepContext => ({
      migration,
      state,
      clock: systemClock,
      signal: new AbortController().signal,
      addBytesMoved: () => {},
      recordWritePause: ms => pauses.push(ms),
      recordAtRisk: () => {},
      note: () => {},
    });
    const fresh = () =>
      new StatefulSetValkeyDriver({
        kubeConfig: cluster.kubeConfig(),
        namespace: NAMESPACE,
        member,
        access: {},
        clock: systemClock,
      });

    let recorded: Record<string, string> = {};
    for (const name of STEPS) {
      await fresh()[name](step({ ...recorded }));
      // The successor: the step's result was never recorded.
      const again = { ...recorded };
      await fresh()[name](step(again));
      recorded = again;
    }

    const moved = await until('the recreated member', async () => {
      const pod = (await running()).find(p => p.metadata!.name === member);
      return pod?.metadata!.uid !== source.metadata!.uid && pod;
    });
    expect(moved.spec!.nodeName).toBe(targetNode);
    const temporary = recorded['first.targetName'];
    expect(temporary).toEqual(expect.stringMatching(`^${member}-ferry-`));
    await until('the temporary member to be gone', () =>
      core.readNamespacedPod({ namespace: NAMESPACE, name: temporary }).then(
        () => false,
        () => true,
      ),
    );
    process.stdout.write(
      `resumed StatefulSet hand-off: write pauses recorded ${pauses.join(
        ', ',
      )} ms\n`,
    );
    // Both switches happened, each pausing writes once; a step run again
    // finds the roles swapped and records no pause of its own.
    expect(pauses).toHaveLength(2);
    const reader = memberClient(moved);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.dbsize()).toBe(KEYS);
      expect(await reader.get(`entry:${KEYS - 1}`)).toBe(`value-${KEYS - 1}`);
    } finally {
      reader.disconnect();
    }
  }, 180_000);
});
