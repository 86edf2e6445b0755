/**
 * The `valkey` method for a StatefulSet member on a real cluster, with real
 * servers (`ProcessKubelet`): a spot interruption taint on the node of
 * `cache-N` becomes a Migration; the operator moves the member's data to a
 * temporary member on the target node, which takes over, lets the StatefulSet
 * recreate `cache-N` there (the placement webhook pins it), replicates into the
 * recreation and switches back, and removes the temporary member.
 *
 * A client writes through the workload's Service the whole time. There is no
 * kube-proxy here, and no EndpointSlice either (the API server refuses the
 * loopback addresses these pods have as endpoints), so the client reaches what
 * the EndpointSlice controller would publish: the Ready pods the Service's
 * selector picks, not every pod IP. The recreated member carries Ferry's
 * readiness gate, and the kwok stages compute Ready as a kubelet does
 * (containers and every gate), so the recreation joins the Service only when
 * the operator sets the gate, after it holds the data.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { CoreV1Api } from '@kubernetes/client-node';
import { NamespacePods } from '../../src/kube/runtimes/valkey/KubeValkeyMembers';
import { Reflector } from '../../src/kube/informers/Reflector';
import { PODS } from '../../src/kube/client/resources';
import { StatefulSetHandoff } from '../../src/kube/runtimes/valkey/StatefulSetValkeyDriver';
import { PermanentMigrationError } from '../../src/migration/MigrationDriver';
import {
  answers,
  memberClient,
  valkeyClient,
  ValkeyCluster,
} from './valkeyStatefulSets';
import {
  HANDOFF_OF_LABEL,
  MEMBER_READY_GATE,
} from '../../src/kube/client/ferryKeys';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** Keys written to the member before it moves. */
const KEYS = 2_000;
/** The StatefulSet's PodDisruptionBudget (`createOptedInStatefulSet`). */
const MIN_AVAILABLE = 2;
/** Members of a three-member workload that must serve (its quorum). */
const QUORUM = 2;
/** The selector of the workload's Service, which the test's client writes through. */
const SERVICE_SELECTOR = 'app=cache';

function hasCondition(pod: V1Pod, type: string): boolean {
  return Boolean(
    pod.status?.conditions?.some(c => c.type === type && c.status === 'True'),
  );
}

function isReady(pod: V1Pod): boolean {
  return hasCondition(pod, 'Ready');
}

/** An address the Service sends clients to, and the pod behind it. */
interface ServiceEndpoint {
  host: string;
  port: number;
  podUid?: string;
}

/**
 * Where kube-proxy would send a client of the Service: the ready endpoints
 * the EndpointSlice controller publishes, i.e. the selected pods that are
 * Ready and not terminating (`cluster.pods` leaves those out), at the
 * Service's target port (the container's `valkey` port).
 */
function serviceEndpoints(selected: V1Pod[]): ServiceEndpoint[] {
  return selected.filter(isReady).map(pod => ({
    host: pod.status!.podIP!,
    port: pod.spec!.containers[0].ports!.find(p => p.name === 'valkey')!
      .containerPort,
    podUid: pod.metadata!.uid,
  }));
}

/**
 * One client write through one endpoint, as a client of the Service would
 * make it. Says whether the member was an empty primary when asked (before the
 * write), and whether the write was acknowledged.
 */
async function writeThrough(
  endpoint: ServiceEndpoint,
  key: string,
): Promise<{ emptyPrimary: boolean; acknowledged: boolean }> {
  const valkey = valkeyClient(endpoint.host, endpoint.port);
  let emptyPrimary = false;
  try {
    await valkey.connect();
    const role = (await valkey.call('ROLE')) as unknown[];
    emptyPrimary = role[0] === 'master' && (await valkey.dbsize()) === 0;
    // A replica refuses it (READONLY), a paused primary's killed connection
    // fails it: only an OK is a write the client counts on.
    return {
      emptyPrimary,
      acknowledged: (await valkey.set(key, key)) === 'OK',
    };
  } catch {
    return { emptyPrimary, acknowledged: false };
  } finally {
    valkey.disconnect();
  }
}

function ownedByStatefulSet(pod: V1Pod): boolean {
  return Boolean(
    pod.metadata?.ownerReferences?.some(
      ref => ref.controller && ref.kind === 'StatefulSet',
    ),
  );
}

describe('the valkey method for a StatefulSet member, on a real cluster with real servers', () => {
  let cluster: ValkeyCluster;
  /** The members' port. */
  let port: number;

  beforeAll(async () => {
    cluster = await ValkeyCluster.start(NAMESPACE);
    // A port of its own, so that no other server on the machine is in the way.
    port = 20_000 + Math.floor(Math.random() * 20_000);
    await cluster.createOptedInStatefulSet('cache', { port });
    await until(
      'three members answering',
      async () => {
        const pods = await cluster.pods('app=cache');
        return (
          pods.length === 3 &&
          (await Promise.all(pods.map(pod => answers(pod)))).every(Boolean) &&
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

  it('moves the member through a temporary member on the target node and back to the recreated member, which owns the data; the temporary member goes and the budget holds throughout', async () => {
    const before = await cluster.pods('app=cache');
    const source = before.find(pod => pod.spec!.nodeName!.startsWith('spot-'))!;
    const sourceName = source.metadata!.name!;
    const writer = memberClient(source);
    await writer.connect();
    const pipeline = writer.pipeline();
    for (let i = 0; i < KEYS; i++) pipeline.set(`entry:${i}`, `value-${i}`);
    await pipeline.exec();
    writer.disconnect();

    // Every version of the member's pods, as the API server wrote them: the
    // recreation must never be Ready while its gate's condition is unset.
    const recreatedVersions: V1Pod[] = [];
    const memberPods = new Reflector<V1Pod>({
      kubeConfig: cluster.kubeConfig(),
      type: PODS,
      namespace: NAMESPACE,
      fieldSelector: `metadata.name=${sourceName}`,
      onChange: ({ object }) => {
        if (object.metadata?.uid !== source.metadata!.uid) {
          recreatedVersions.push(object);
        }
      },
    });
    await memberPods.start();

    // Ready pods the budget's selector picks, and ready StatefulSet members,
    // at their lowest while the member moves. And a client of the Service:
    // each sample, one write through every ready endpoint of the moving
    // member (its incarnations and its temporary member; the other members
    // are servers of their own here, with other data), after asking whether
    // it is an empty primary (the recreated member before its REPLICAOF,
    // which would drop the write).
    const lowest = { selected: Infinity, members: Infinity, samples: 0 };
    let emptyPrimarySamples = 0;
    /** Endpoints of the recreated member while its gate's condition was unset. */
    let endpointsBeforeGate = 0;
    const acknowledged: string[] = [];
    let writes = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const pods = await cluster.pods(SERVICE_SELECTOR);
        const endpoints = serviceEndpoints(
          pods.filter(
            pod =>
              pod.metadata!.name === sourceName ||
              pod.metadata!.labels?.[HANDOFF_OF_LABEL] === sourceName,
          ),
        );
        const ready = pods.filter(isReady);
        lowest.selected = Math.min(lowest.selected, ready.length);
        lowest.members = Math.min(
          lowest.members,
          ready.filter(ownedByStatefulSet).length,
        );
        lowest.samples++;
        for (const endpoint of endpoints) {
          const pod = pods.find(p => p.metadata!.uid === endpoint.podUid);
          if (
            endpoint.podUid !== source.metadata!.uid &&
            pod?.metadata!.name === sourceName &&
            !hasCondition(pod, MEMBER_READY_GATE)
          ) {
            endpointsBeforeGate++;
          }
          const key = `through-service:${writes++}`;
          const write = await writeThrough(endpoint, key);
          if (write.emptyPrimary) emptyPrimarySamples++;
          if (write.acknowledged) acknowledged.push(key);
        }
        await new Promise(resolve => setTimeout(resolve, 50));
      }
    })();

    await cluster.taint(source.spec!.nodeName!);
    const done = await cluster.finished(sourceName).finally(() => {
      sampling = false;
      memberPods.stop();
    });
    await sampler;
    const state = done.status?.driverState ?? {};
    process.stdout.write(
      `valkey StatefulSet hand-off: write pauses ${state.writePauseToTemporaryMs} ms (to the temporary member) and ${state.writePauseBackToMemberMs} ms (back to ${sourceName}), ${done.status?.bytesMoved} bytes; lowest ready ${lowest.selected} selected, ${lowest.members} members over ${lowest.samples} samples; ${acknowledged.length} of ${writes} writes through the Service acknowledged; an empty primary behind the Service in ${emptyPrimarySamples}; ${recreatedVersions.length} versions of the recreated pod\n`,
    );
    // The message says why, should it not have succeeded.
    expect([done.status?.phase, done.status?.message]).toEqual([
      'Succeeded',
      done.status?.message,
    ]);
    expect(done.status!.phases.map(t => t.phase)).toEqual([
      'Planned',
      'PreparingTarget',
      'Transferring',
      'SwitchingOver',
      'Verifying',
      'CleaningUp',
    ]);
    expect(done.status!.targetPod).toBe(sourceName);
    expect(Number(state.writePauseToTemporaryMs)).toBeGreaterThanOrEqual(0);
    expect(Number(state.writePauseBackToMemberMs)).toBeGreaterThanOrEqual(0);
    const temporary = state['first.targetName'];
    expect(temporary).toEqual(expect.stringMatching(`^${sourceName}-ferry-`));

    // The StatefulSet's three members again; the member is a new incarnation
    // on the target node, and the temporary member is gone with its server.
    const after = await until('the three members alone', async () => {
      const pods = await cluster.pods('app=cache');
      return pods.length === 3 && pods.every(ownedByStatefulSet) && pods;
    });
    expect(after.map(pod => pod.metadata!.name).sort()).toEqual(
      before.map(pod => pod.metadata!.name).sort(),
    );
    const moved = after.find(pod => pod.metadata!.name === sourceName)!;
    expect(moved.metadata!.uid).not.toBe(source.metadata!.uid);
    expect(moved.spec!.nodeName).toBe(done.spec.targetNode);
    expect(moved.metadata!.labels?.[HANDOFF_OF_LABEL]).toBeUndefined();
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await until('the temporary member to be gone', () =>
      core.readNamespacedPod({ namespace: NAMESPACE, name: temporary }).then(
        () => false,
        () => true,
      ),
    );
    await until(
      "the temporary member's server to stop",
      () => !cluster.kubelet.running.includes(temporary),
    );

    // The webhook gave the recreation the gate; it ran unready (the kwok
    // stage, as a kubelet, kept it out of Ready) and was never Ready, nor an
    // endpoint of the Service, before the operator set the gate's condition.
    expect(moved.spec!.readinessGates).toEqual([
      { conditionType: MEMBER_READY_GATE },
    ]);
    expect(hasCondition(moved, MEMBER_READY_GATE)).toBe(true);
    expect(isReady(moved)).toBe(true);
    expect(
      recreatedVersions.some(
        pod =>
          pod.status?.phase === 'Running' &&
          pod.status.podIP &&
          !isReady(pod) &&
          !hasCondition(pod, MEMBER_READY_GATE),
      ),
    ).toBe(true);
    expect(
      recreatedVersions.filter(
        pod => isReady(pod) && !hasCondition(pod, MEMBER_READY_GATE),
      ),
    ).toEqual([]);
    expect(endpointsBeforeGate).toBe(0);
    // No client of the Service ever reached an empty primary.
    expect(emptyPrimarySamples).toBe(0);

    // The recreated member is the primary and has every key: those written
    // before the move, and every write acknowledged through the Service.
    expect(acknowledged.length).toBeGreaterThan(0);
    const reader = memberClient(moved);
    await reader.connect();
    try {
      expect(await reader.call('ROLE')).toEqual(
        expect.arrayContaining(['master']),
      );
      expect(await reader.dbsize()).toBe(KEYS + acknowledged.length);
      expect(await reader.get(`entry:${KEYS - 1}`)).toBe(`value-${KEYS - 1}`);
      const values = await reader.mget(...acknowledged);
      // The acknowledged writes the member lacks: none.
      expect(acknowledged.filter((key, i) => values[i] !== key)).toEqual([]);
      await reader.set('after-move', '1');
    } finally {
      reader.disconnect();
    }

    // Never fewer ready pods behind the Service than the budget asks for, nor
    // fewer ready members than the quorum.
    expect(lowest.samples).toBeGreaterThan(0);
    expect(lowest.selected).toBeGreaterThanOrEqual(MIN_AVAILABLE);
    expect(lowest.members).toBeGreaterThanOrEqual(QUORUM);
  }, 180_000);
  it('sets the readiness gate of a member only once it holds the data: never on an empty primary; on a promoted copy, after which kwok, as a kubelet, makes it Ready; a second time changes nothing', async () => {
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const name = 'gated';
    await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name },
        spec: {
          nodeName: 'on-demand-a',
          readinessGates: [{ conditionType: MEMBER_READY_GATE }],
          containers: [
            {
              name: 'valkey',
              image: 'valkey/valkey:8',
              ports: [{ name: 'valkey', containerPort: port }],
            },
          ],
        },
      },
    });
    const read = () => core.readNamespacedPod({ namespace: NAMESPACE, name });
    const running = await until('the gated member to answer', async () => {
      const pod = await read();
      return pod.status?.podIP && (await answers(pod)) ? pod : undefined;
    });
    // Its containers are ready; the gate, which nobody set, keeps it unready.
    expect(hasCondition(running, 'ContainersReady')).toBe(true);
    expect(isReady(running)).toBe(false);

    const handoff = new StatefulSetHandoff(
      new NamespacePods(kc, NAMESPACE),
      name,
      {},
    );
    const member = memberClient(running);
    await member.connect();
    try {
      // An empty primary: refused, whatever the lineage, and left unready.
      handoff.lineage = () => 'f'.repeat(40);
      await expect(handoff.openGate()).rejects.toThrow(PermanentMigrationError);
      expect(hasCondition(await read(), MEMBER_READY_GATE)).toBe(false);

      // A copy of another member's data, promoted: let in.
      const [primary] = await cluster.pods('app=cache');
      await member.call('REPLICAOF', primary.status!.podIP!, String(port));
      const lineage = await until('the copy to sync', async () => {
        const info = await member.info('replication');
        const field = (key: string) =>
          new RegExp(`^${key}:(.*)$`, 'm').exec(info)?.[1]?.trim();
        return field('master_link_status') === 'up' && field('master_replid');
      });
      await member.call('REPLICAOF', 'NO', 'ONE');
      handoff.lineage = () => lineage;
      await handoff.openGate();
    } finally {
      member.disconnect();
    }
    const ready = await until('the gated member to be Ready', async () => {
      const pod = await read();
      return isReady(pod) && pod;
    });
    expect(hasCondition(ready, MEMBER_READY_GATE)).toBe(true);

    // Idempotent: the pod is not written again.
    await handoff.openGate();
    expect((await read()).metadata!.resourceVersion).toBe(
      ready.metadata!.resourceVersion,
    );
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name });
  });
});
