/**
 * A checkpoint move whose target node dies while it restores the member: the
 * images reached spot-b, Ferry's runtime wrapper there began `runc restore`, and
 * at that moment the node goes the way a reclaimed spot instance goes (its kubelet,
 * containerd, agent and the half-restored container killed at once, its link cut).
 *
 * The source was paused from the dump on, so it is the most up-to-date copy there
 * is: the Migration rolls back to it and ends RolledBack in bounded time, saying in
 * its message what was at risk. The same process serves every key on the source
 * node, running (not left paused), and no checkpoint image is left behind there.
 *
 * A StatefulSet's member cannot keep its source: the old incarnation is deleted
 * (and its container killed) before the StatefulSet recreates it on the target.
 * Its images, dumped on the source with every page, stay there until the restore
 * is confirmed, and when the target dies the member is recreated on the source
 * (pinned there by the placement webhook, Ferry's own placement of a member under
 * a move) and restored from them: the same process, every key.
 */
import fs from 'node:fs';
import {
  AdmissionWebhookServer,
  JsonPatchOperation,
} from '../../src/kube/admission/AdmissionWebhookServer';
import { migrationPlacement } from '../../src/kube/admission/PodPlacer';
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { registerFerryWebhooks } from '../kube/ferryWebhooks';
import {
  CheckpointNodes,
  NAMESPACE,
  valkeyPodTemplate,
  waitFor,
} from './checkpointNodes';
import { nodeTestImages } from './nodeTestImages';

jest.setTimeout(900_000);

/**
 * Keys the member holds (DEBUG POPULATE, 100-byte values): about 50 MB, so that
 * the restore lasts long enough for the test to catch it under way.
 */
const KEYS = 300_000;
/**
 * How long the Migration may take to reach a final phase after the target died:
 * a few agent calls that fail and a rollback, not a call's five-minute timeout
 * (a notice would run out while the source stays frozen).
 */
const SETTLE_AFTER_LOSS_MS = 120_000;

let nodes: CheckpointNodes;
let webhook: AdmissionWebhookServer | undefined;

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
});

afterAll(async () => {
  await webhook?.stop();
  await nodes?.stop();
});

/**
 * The placement webhook's answer for members under a move, over the Migrations
 * of `store` (the operator's webhook reads them from its cluster state).
 */
async function placeMembersUnderMoves(
  store: InMemoryMigrationStore,
): Promise<void> {
  webhook = new AdmissionWebhookServer({
    tls: nodes.cluster.controlPlane.issueServingCertificate('webhook'),
    host: '127.0.0.1',
    mutatePod: async (pod, admission): Promise<JsonPatchOperation[]> => {
      const migration = (await store.list()).find(
        m =>
          m.metadata.namespace === admission.namespace &&
          m.spec.pod === pod.metadata?.name &&
          !/^(Succeeded|Failed|RolledBack)$/.test(m.status?.phase ?? ''),
      );
      return (migration && migrationPlacement(pod, migration)) ?? [];
    },
  });
  const port = await webhook.start();
  await registerFerryWebhooks(
    nodes.cluster.controlPlane.kubeConfig(),
    port,
    nodes.cluster.controlPlane.caPem,
  );
}

/** A one-member Valkey StatefulSet on `node`. */
function valkeyStatefulSet(name: string, node: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: valkeyPodTemplate(name, node, nodeTestImages().valkey.name),
    },
  });
}

describe('a checkpoint move whose target node dies mid-restore', () => {
  it('rolls back to the paused source, which serves every key from the same process, and says what was at risk', async () => {
    const { cluster } = nodes;
    const app = 'cache-lost-target';
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);
    const containerId = nodes.containerId(source.name);

    const { sm } = nodes.machine();
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'Deployment', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'spot-b',
      reason: 'drain',
      driver: 'checkpoint',
    });
    let ended = false;
    const running = sm.run(NAMESPACE, planned.metadata.name).finally(() => {
      ended = true;
    });
    running.catch(() => {});

    const record = await nodes.restoreBegins(
      'spot-b',
      `${NAMESPACE}.${planned.metadata.name}`,
      () => ended,
    );
    const killedAt = Date.now();
    cluster.kill(cluster.node('spot-b'));
    // What the wrapper had written when its node died: a claim alone means the
    // restore was under way.
    const wrapperSaid = fs.readFileSync(record, 'utf8').trim();
    expect(cluster.pidsOf('spot-b')).toEqual([]);

    const done = await running;
    const settledMs = Date.now() - killedAt;
    console.log(
      `target lost mid-restore (its wrapper had written '${wrapperSaid}'): ${done.status?.phase} ${settledMs} ms after the kill (failed in ${done.status?.failedPhase}): ${done.status?.message}`,
    );
    expect(wrapperSaid).toMatch(/^claimed by /);
    expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(
      /^RolledBack: /,
    );
    expect(settledMs).toBeLessThan(SETTLE_AFTER_LOSS_MS);
    // What was at risk, in words: the target's loss cost nothing, as the source held it all.
    expect(done.status?.message).toContain('spot-b');
    expect(done.status?.message).toMatch(/nothing was at risk/);

    // The source serves on: one member, the same process, every key, running.
    const serving = await waitFor('one member, on spot-a', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 && pods[0].node === 'spot-a'
        ? pods[0]
        : undefined;
    });
    expect(serving.uid).toBe(source.uid);
    expect(nodes.runcState('spot-a', containerId)).toBe('running');
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    expect(nodes.cli(serving.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(serving.name, ['dbsize'])).toBe(String(KEYS + 1));
    expect(
      nodes.cli(serving.name, ['set', 'written-after-the-loss', 'yes']),
    ).toBe('OK');
    expect(nodes.imagesLeft('spot-a')).toEqual([]);
  });

  it("restores a StatefulSet's member on its source from the images kept there, every key in the same process", async () => {
    const { cluster } = nodes;
    const app = 'cache-sts-lost-target';
    const store = new InMemoryMigrationStore();
    await placeMembersUnderMoves(store);
    cluster.kubectl(['apply', '-f', '-'], valkeyStatefulSet(app, 'spot-a'));
    const source = await waitFor('the member on spot-a, serving', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 &&
        pods[0].node === 'spot-a' &&
        /PONG/.test(tryCli(pods[0].name, ['ping']))
        ? pods[0]
        : undefined;
    });
    expect(
      nodes.cli(source.name, ['debug', 'populate', String(KEYS), 'key', '100']),
    ).toBe('OK');
    // The last write before the move, acknowledged: it must survive.
    expect(
      nodes.cli(source.name, ['set', 'written-before-the-move', 'yes']),
    ).toBe('OK');
    const before = nodes.info(source.name);
    const digest = nodes.cli(source.name, ['debug', 'digest']);

    const { sm } = nodes.machine(store);
    // spot-b died in the first case: the target is on-demand-c.
    const planned = await sm.plan(NAMESPACE, `${app}-ckpt`, {
      workloadRef: { kind: 'StatefulSet', name: app },
      pod: source.name,
      sourceNode: 'spot-a',
      targetNode: 'on-demand-c',
      reason: 'drain',
      driver: 'checkpoint',
    });
    let ended = false;
    const running = sm.run(NAMESPACE, planned.metadata.name).finally(() => {
      ended = true;
    });
    running.catch(() => {});

    const record = await nodes.restoreBegins(
      'on-demand-c',
      `${NAMESPACE}.${planned.metadata.name}`,
      () => ended,
    );
    const killedAt = Date.now();
    cluster.kill(cluster.node('on-demand-c'));
    const wrapperSaid = fs.readFileSync(record, 'utf8').trim();

    const done = await running;
    const settledMs = Date.now() - killedAt;
    console.log(
      `StatefulSet member's target lost mid-restore (its wrapper had written '${wrapperSaid}'): ${done.status?.phase} ${settledMs} ms after the kill (failed in ${done.status?.failedPhase}): ${done.status?.message}`,
    );
    if (done.status?.phase !== 'RolledBack')
      console.log(nodes.nodeLogs('spot-a'));
    expect(wrapperSaid).toMatch(/^claimed by /);
    expect(`${done.status?.phase}: ${done.status?.message}`).toMatch(
      /^RolledBack: /,
    );
    expect(done.status?.message).toMatch(
      /nothing was at risk: \S+ was restored on spot-a from the checkpoint kept there/,
    );
    expect(settledMs).toBeLessThan(SETTLE_AFTER_LOSS_MS);

    // One member, recreated on spot-a, the same process with every key.
    const serving = await waitFor('one member, on spot-a', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 && pods[0].node === 'spot-a'
        ? pods[0]
        : undefined;
    });
    expect(serving.uid).not.toBe(source.uid);
    expect(nodes.info(serving.name).runId).toBe(before.runId);
    expect(nodes.cli(serving.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(serving.name, ['dbsize'])).toBe(String(KEYS + 1));
    expect(nodes.cli(serving.name, ['get', 'written-before-the-move'])).toBe(
      'yes',
    );
    expect(
      nodes.cli(serving.name, ['set', 'written-after-the-loss', 'yes']),
    ).toBe('OK');
    expect(nodes.imagesLeft('spot-a')).toEqual([]);
  });
});

/** valkey-cli's answer, or '' while the member cannot answer yet. */
function tryCli(pod: string, args: string[]): string {
  try {
    return nodes.cli(pod, args);
  } catch {
    return '';
  }
}
