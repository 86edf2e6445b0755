/**
 * Ferry's operator killed (SIGKILL) in the middle of a checkpoint move on real
 * nodes, and a new operator process taking over: once while the source node's
 * agent dumps the paused member and streams its pages, once while the target
 * node's runtime wrapper restores it. The operator runs as its own process
 * (operatorProcess.ts: KubeOperator with the checkpoint driver, leading on a
 * Lease) and the Migration lives in the cluster, as a planner would have created
 * it; the successor waits out the dead one's lease, finds the Migration in the
 * phase its predecessor last recorded and runs it to the end.
 *
 * After each: the Migration succeeded, the same Valkey process serves every key on
 * the target node, the source container is gone (not left paused), and no
 * checkpoint image is left on either node.
 *
 * Then the API server is restarted (SIGKILL, started again) during the switch,
 * under a steady write load, with the operator kept running as its Deployment
 * would keep it: once in a checkpoint move, once in a valkey hand-off. Each
 * move succeeds, one member serves as the primary, and no acknowledged write is lost.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import type { Migration } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { KubeMigrationStore } from '../../src/kube/stores/KubeMigrationStore';
import {
  isFinalPhase,
  MigrationStateMachine,
} from '../../src/migration/MigrationStateMachine';
import { installFerryCrds } from '../kube/ferryCrds';
import {
  CheckpointNodes,
  LEADING_LINE,
  NAMESPACE,
  waitFor,
} from './checkpointNodes';
import type { OperatorProcessSpec } from './operatorProcess';
import { WriteLoad } from './writeLoad';

jest.setTimeout(1_200_000);

const REPO_ROOT = path.resolve(__dirname, '../../..');
/** Keys the member holds (DEBUG POPULATE, 100-byte values): about 50 MB, so each phase lasts a while. */
const KEYS = 300_000;
/** The Lease's namespace, as the chart's release namespace. */
const OPERATOR_NAMESPACE = 'ferry-system';
/** How long an operator process may take to start and lead (a predecessor's lease runs out first). */
const LEAD_TIMEOUT_MS = 240_000;
/** How long a resumed Migration may take to end. */
const FINISH_TIMEOUT_MS = 400_000;

let nodes: CheckpointNodes;
let store: KubeMigrationStore;
const operators: ChildProcess[] = [];

beforeAll(async () => {
  nodes = await CheckpointNodes.start();
  const kubeConfig = nodes.cluster.controlPlane.kubeConfig();
  await installFerryCrds(kubeConfig);
  await kubeConfig.makeApiClient(CoreV1Api).createNamespace({
    body: { metadata: { name: OPERATOR_NAMESPACE } },
  });
  store = new KubeMigrationStore(kubeConfig);
});

afterAll(async () => {
  for (const operator of operators) kill(operator);
  await nodes?.stop();
});

/** Starts an operator process and waits until it leads. */
async function startOperator(identity: string): Promise<ChildProcess> {
  const { cluster, agents } = nodes;
  // In the hub's network, as an operator pod is in the cluster's: the valkey
  // driver dials members at their pod addresses.
  const hub = cluster.hubAccess('ferry-operator');
  const spec: OperatorProcessSpec = {
    kubeconfig: hub.kubeconfig,
    identity,
    leaseNamespace: OPERATOR_NAMESPACE,
    token: agents.token,
    agents: agents.urls(),
    egressSocket: cluster.egressSocket,
  };
  const logFile = path.join(
    cluster.controlPlane.workDir,
    `operator-${identity}.log`,
  );
  const log = fs.openSync(logFile, 'a');
  // Its own process group, so that a kill reaches Node and nothing survives it;
  // setpriv kills it with the test, should the test die first.
  const child = spawn(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      'nsenter',
      `--net=${hub.netns}`,
      '--',
      process.execPath,
      '--import',
      'tsx',
      path.join(__dirname, 'operatorProcess.ts'),
      JSON.stringify(spec),
    ],
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  operators.push(child);
  (child as ChildProcess & { logFile?: string }).logFile = logFile;
  await waitFor(
    `operator ${identity} to lead`,
    () => {
      const text = fs.readFileSync(logFile, 'utf8');
      if (child.exitCode !== null) {
        throw new Error(`operator ${identity} exited:\n${text}`);
      }
      return text.split('\n').includes(LEADING_LINE) ? true : undefined;
    },
    LEAD_TIMEOUT_MS,
  );
  return child;
}

/** Kills an operator process and everything it started, at once. */
function kill(operator: ChildProcess): void {
  try {
    process.kill(-operator.pid!, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

function operatorLog(operator: ChildProcess): string {
  const file = (operator as ChildProcess & { logFile?: string }).logFile;
  return file
    ? fs.readFileSync(file, 'utf8').split('\n').slice(-40).join('\n')
    : '';
}

async function finished(name: string): Promise<Migration> {
  return waitFor(
    `Migration ${name} to end`,
    async () => {
      // The API server may be restarting: then the Migration is looked at again.
      const m = await store.get(NAMESPACE, name).catch(() => undefined);
      return m && isFinalPhase(m.status?.phase ?? 'Planned') ? m : undefined;
    },
    FINISH_TIMEOUT_MS,
  );
}

/**
 * Keeps one operator process running, as the chart's Deployment does: one that
 * exits (a leader that could not renew its lease steps down and exits) is
 * replaced by a new one. Resolves once the first leads.
 */
async function superviseOperator(app: string): Promise<{
  stop: () => void;
  replaced: () => number;
  logs: () => string;
}> {
  const started = [await startOperator(`${app}-0`)];
  let stopped = false;
  const watching = (async () => {
    while (!stopped) {
      const current = started[started.length - 1];
      if (current.exitCode !== null || current.signalCode !== null) {
        // One started while the API server is still away exits too: again.
        await startOperator(`${app}-${started.length}`)
          .then(operator => started.push(operator))
          .catch(() => {});
      }
      await new Promise(resolve => setTimeout(resolve, 500));
    }
  })();
  watching.catch(() => {});
  return {
    stop: () => {
      stopped = true;
      for (const operator of started) kill(operator);
    },
    replaced: () => started.length - 1,
    logs: () => started.map(operatorLog).join('\n'),
  };
}

/**
 * Moves a member from spot-a to spot-b with an operator that is killed at
 * `killWhen`, and a successor that finishes the move; checks the outcome.
 */
async function moveWithOperatorKilled(
  app: string,
  killWhen: (imageId: string, moveEnded: () => boolean) => Promise<unknown>,
  /** The phase the Migration must have recorded when the operator died. */
  phaseAtKill: RegExp,
): Promise<void> {
  const source = await nodes.memberWithData(app, 'spot-a', KEYS);
  const before = nodes.info(source.name);
  const digest = nodes.cli(source.name, ['debug', 'digest']);
  const containerId = nodes.containerId(source.name);

  const first = await startOperator(`${app}-first`);
  const planner = new MigrationStateMachine({
    store,
    drivers: [],
    clock: systemClock,
  });
  const planned = await planner.plan(NAMESPACE, `${app}-ckpt`, {
    workloadRef: { kind: 'Deployment', name: app },
    pod: source.name,
    sourceNode: 'spot-a',
    targetNode: 'spot-b',
    reason: 'drain',
    driver: 'checkpoint',
  });
  const name = planned.metadata.name;
  let ended = false;
  const watch = finished(name).finally(() => {
    ended = true;
  });
  watch.catch(() => {});

  await killWhen(`${NAMESPACE}.${name}`, () => ended);
  kill(first);
  const killedAt = Date.now();
  const atKill = (await store.get(NAMESPACE, name))?.status;
  const successor = await startOperator(`${app}-successor`);
  try {
    await expectFinishedBySuccessor();
  } finally {
    // A failed expectation must not leave the successor holding the Lease: the
    // next case's operator would never lead (seen in a cold run: three cases
    // timed out waiting for it after the first failed).
    kill(successor);
  }

  async function expectFinishedBySuccessor(): Promise<void> {
    const ledAt = Date.now();
    const done = await watch;
    const state = done.status?.driverState ?? {};
    console.log(
      `operator killed in ${atKill?.phase} (recorded): the successor led ${
        ledAt - killedAt
      } ms later; ${done.status?.phase} ${
        Date.now() - killedAt
      } ms after the kill; freeze ${done.status?.writePauseMs} ms (dump ${
        state.dumpMs
      } ms, stream ${state.streamMs} ms), ${done.status?.bytesMoved} bytes: ${
        done.status?.message ?? ''
      }`,
    );
    if (done.status?.phase !== 'Succeeded') {
      console.log(
        `${operatorLog(first)}\n${operatorLog(successor)}\n${nodes.nodeLogs(
          'spot-b',
        )}`,
      );
    }
    expect(atKill?.phase).toMatch(phaseAtKill);
    expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
      /^Succeeded/,
    );
    expect(done.status?.bytesMoved).toBeGreaterThan(KEYS * 100);
    // The source stayed paused while no operator ran: the freeze the Migration
    // reports takes in that time, from the pause its predecessor asked for.
    expect(done.status?.writePauseMs).toBeGreaterThan(ledAt - killedAt);
    // The dump's own length, as its agent recorded it, also when the successor
    // asked for the images again after the dump had ended (it reported 0 before).
    expect(Number(state.dumpMs)).toBeGreaterThan(0);
    expect(Number(state.dumpMs)).toBeLessThan(done.status!.writePauseMs!);

    // The same process serves every key on the target; the source is gone, not paused.
    const moved = await waitFor('one member, on spot-b', () => {
      const pods = nodes.podsOf(app);
      return pods.length === 1 && pods[0].node === 'spot-b'
        ? pods[0]
        : undefined;
    });
    expect(nodes.info(moved.name).runId).toBe(before.runId);
    expect(nodes.cli(moved.name, ['debug', 'digest'])).toBe(digest);
    expect(nodes.cli(moved.name, ['get', 'written-before-the-move'])).toBe(
      'yes',
    );
    expect(nodes.runcState('spot-a', containerId)).toBe('gone');
    for (const node of ['spot-a', 'spot-b']) {
      expect(nodes.imagesLeft(node)).toEqual([]);
    }
  }
}

describe('a checkpoint move whose operator is killed and replaced', () => {
  it('finishes when the operator dies while the source dumps and streams', async () => {
    const app = 'cache-op-dump';
    await moveWithOperatorKilled(
      app,
      async () => {
        const [pod] = nodes.podsOf(app);
        const containerId = nodes.containerId(pod.name);
        // The agent pauses the container right before its dump.
        await waitFor(
          'the source paused for the dump',
          () =>
            nodes.runcState('spot-a', containerId) === 'paused'
              ? true
              : undefined,
          undefined,
          10,
        );
      },
      // The kill follows the pause; on a quiet machine the dump (about 0.4 s for
      // this member) can end before the pause is seen, with the source still
      // paused for the switch.
      /^(Transferring|SwitchingOver)$/,
    );
  });

  it('finishes when the operator dies while the target restores', async () => {
    await moveWithOperatorKilled(
      'cache-op-restore',
      (imageId, moveEnded) => nodes.restoreBegins('spot-b', imageId, moveEnded),
      /^(Transferring|SwitchingOver)$/,
    );
  });

  it('finishes a move whose API server restarts during the switch, under writes: no acknowledged write lost', async () => {
    const app = 'cache-api-restart';
    const { cluster } = nodes;
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const before = nodes.info(source.name);
    const containerId = nodes.containerId(source.name);
    const load = await WriteLoad.start(cluster, app, 'on-demand-c');
    const supervised = await superviseOperator(app);
    try {
      const planner = new MigrationStateMachine({
        store,
        drivers: [],
        clock: systemClock,
      });
      const planned = await planner.plan(NAMESPACE, `${app}-ckpt`, {
        workloadRef: { kind: 'Deployment', name: app },
        pod: source.name,
        sourceNode: 'spot-a',
        targetNode: 'spot-b',
        reason: 'drain',
        driver: 'checkpoint',
      });
      const name = planned.metadata.name;
      let ended = false;
      const watch = finished(name).finally(() => {
        ended = true;
      });
      watch.catch(() => {});
      // The switch: the images are on spot-b and its wrapper restores them,
      // while the operator waits for the replacement to serve and hands it
      // the Service. The API server goes then, and comes back.
      await nodes.restoreBegins('spot-b', `${NAMESPACE}.${name}`, () => ended);
      const restartedAt = Date.now();
      const { downMs } = await cluster.controlPlane.restartApiServer();
      const done = await watch;
      console.log(
        `API server restarted in the switch (down ${downMs} ms): ${
          done.status?.phase
        } ${
          Date.now() - restartedAt
        } ms after it went, ${supervised.replaced()} operator process(es) replaced; freeze ${
          done.status?.writePauseMs
        } ms: ${done.status?.message ?? ''}`,
      );
      if (done.status?.phase !== 'Succeeded') {
        console.log(`${supervised.logs()}\n${nodes.nodeLogs('spot-b')}`);
      }
      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
        /^Succeeded/,
      );
      const moved = await waitFor('one member, on spot-b', () => {
        const pods = nodes.podsOf(app);
        return pods.length === 1 && pods[0].node === 'spot-b'
          ? pods[0]
          : undefined;
      });
      expect(nodes.info(moved.name).runId).toBe(before.runId);
      expect(nodes.runcState('spot-a', containerId)).toBe('gone');
      const { acked, lost, longestWaitMs } = await load.check();
      console.log(
        `${app}: ${acked.length} acknowledged writes, ${
          lost.length
        } lost; the writer's longest wait from the restart on ${longestWaitMs(
          restartedAt - 1000,
          Date.now(),
        )} ms`,
      );
      expect(lost).toEqual([]);
      for (const node of ['spot-a', 'spot-b']) {
        expect(nodes.imagesLeft(node)).toEqual([]);
      }
    } finally {
      supervised.stop();
      load.stop();
    }
  });

  it('finishes a valkey hand-off whose API server restarts during the switch, under writes: one primary, no acknowledged write lost', async () => {
    const app = 'cache-api-restart-valkey';
    const { cluster } = nodes;
    const source = await nodes.memberWithData(app, 'spot-a', KEYS);
    const load = await WriteLoad.start(cluster, app, 'on-demand-c');
    const supervised = await superviseOperator(app);
    try {
      const planner = new MigrationStateMachine({
        store,
        drivers: [],
        clock: systemClock,
      });
      const planned = await planner.plan(NAMESPACE, `${app}-handoff`, {
        workloadRef: { kind: 'Deployment', name: app },
        pod: source.name,
        sourceNode: 'spot-a',
        targetNode: 'spot-b',
        reason: 'drain',
        driver: 'valkey',
      });
      const name = planned.metadata.name;
      // The switch: the new member has caught up, writes pause, it is promoted
      // and the Service's selector moves to it. The API server goes then.
      const phaseAtRestart = await waitFor(
        'the switch',
        async () => {
          const m = await store.get(NAMESPACE, name).catch(() => undefined);
          const phase = m?.status?.phase;
          return phase === 'SwitchingOver' || (phase && isFinalPhase(phase))
            ? phase
            : undefined;
        },
        FINISH_TIMEOUT_MS,
        20,
      );
      const restartedAt = Date.now();
      const { downMs } = await cluster.controlPlane.restartApiServer();
      const done = await finished(name);
      console.log(
        `API server restarted in the valkey switch (down ${downMs} ms): ${
          done.status?.phase
        } ${
          Date.now() - restartedAt
        } ms after it went, ${supervised.replaced()} operator process(es) replaced; write pause ${
          done.status?.writePauseMs
        } ms: ${done.status?.message ?? ''}`,
      );
      if (done.status?.phase !== 'Succeeded') {
        console.log(`${supervised.logs()}\n${nodes.nodeLogs('spot-b')}`);
      }
      expect(phaseAtRestart).toBe('SwitchingOver');
      expect(`${done.status?.phase}: ${done.status?.message ?? ''}`).toMatch(
        /^Succeeded/,
      );
      // One member, the new one, and it is the primary; the old one is gone.
      const moved = await waitFor('one member, on spot-b', () => {
        const pods = nodes.podsOf(app);
        return pods.length === 1 && pods[0].node === 'spot-b'
          ? pods[0]
          : undefined;
      });
      expect(nodes.cli(moved.name, ['info', 'replication'])).toMatch(
        /role:master/,
      );
      expect(nodes.cli(moved.name, ['get', 'written-before-the-move'])).toBe(
        'yes',
      );
      const { acked, lost, longestWaitMs } = await load.check();
      console.log(
        `${app}: ${acked.length} acknowledged writes, ${
          lost.length
        } lost; the writer's longest wait from the restart on ${longestWaitMs(
          restartedAt - 1000,
          Date.now(),
        )} ms`,
      );
      expect(lost).toEqual([]);
    } finally {
      supervised.stop();
      load.stop();
    }
  });
});
