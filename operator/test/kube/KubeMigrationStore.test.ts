import { CoreV1Api } from '@kubernetes/client-node';
import type { MigrationSpec } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { KubeMigrationStore } from '../../src/kube/stores/KubeMigrationStore';
import type {
  MigrationDriver,
  MigrationStepContext,
} from '../../src/migration/MigrationDriver';
import { MigrationConflictError } from '../../src/migration/MigrationStore';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { until } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
/** Where the restart test runs, so that resuming finds only its own migration. */
const RESUME_NAMESPACE = 'resume';

const SPEC: MigrationSpec = {
  workloadRef: { kind: 'StatefulSet', name: 'cache' },
  pod: 'cache-1',
  sourceNode: 'spot-m5-large-us-east-1a',
  targetNode: 'on-demand-m5-large-us-east-1b',
  reason: 'notice',
  driver: 'reschedule',
};

/** A driver that records its steps; `transfer` can be held open to stop the operator mid-move. */
class RecordingDriver implements MigrationDriver {
  readonly method = 'reschedule' as const;
  readonly steps: string[] = [];
  holdTransfer?: Promise<void>;

  async prepareTarget(ctx: MigrationStepContext) {
    this.steps.push('prepareTarget');
    ctx.state.targetPod = `${ctx.migration.spec.pod}-next`;
  }
  async transfer(ctx: MigrationStepContext) {
    this.steps.push(`transfer(${ctx.state.targetPod})`);
    if (this.holdTransfer) {
      await Promise.race([
        this.holdTransfer,
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () =>
            reject(new Error('operator stopping')),
          ),
        ),
      ]);
    }
    ctx.addBytesMoved(4096);
  }
  async switchOver(ctx: MigrationStepContext) {
    this.steps.push('switchOver');
    ctx.recordWritePause(3);
  }
  async verify() {
    this.steps.push('verify');
  }
  async cleanUp() {
    this.steps.push('cleanUp');
  }
  async rollBack() {
    this.steps.push('rollBack');
  }
}

describe('Migrations stored as objects on a real API server', () => {
  let cluster: LocalControlPlane;
  let migrations = 0;

  beforeAll(async () => {
    cluster = await LocalControlPlane.start({
      controllerManager: false,
      scheduler: false,
      kwok: false,
    });
    const kc = cluster.kubeConfig();
    await installFerryCrds(kc);
    for (const name of [NAMESPACE, RESUME_NAMESPACE]) {
      await kc
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name } } });
    }
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const store = (namespace = NAMESPACE) =>
    new KubeMigrationStore(cluster.kubeConfig(), namespace);
  const nextName = () => `cache-1-${++migrations}`;

  it('creates with status, refuses a second create, and swaps status only from the version it read', async () => {
    const name = nextName();
    const machine = new MigrationStateMachine({
      store: store(),
      drivers: [],
      clock: systemClock,
    });
    const planned = await machine.plan(NAMESPACE, name, SPEC);
    expect(planned.status).toMatchObject({
      phase: 'Planned',
      bytesMoved: 0,
      attempts: 0,
    });
    expect(await store().get(NAMESPACE, name)).toMatchObject({
      spec: SPEC,
      status: { phase: 'Planned' },
    });
    expect(await store().get(NAMESPACE, 'nothing')).toBeUndefined();

    await expect(machine.plan(NAMESPACE, name, SPEC)).rejects.toBeInstanceOf(
      MigrationConflictError,
    );

    const first = await store().updateStatus({
      ...planned,
      status: { ...planned.status!, message: 'first' },
    });
    await expect(
      store().updateStatus({
        ...planned,
        status: { ...planned.status!, message: 'stale' },
      }),
    ).rejects.toBeInstanceOf(MigrationConflictError);
    expect((await store().get(NAMESPACE, name))?.status?.message).toBe('first');
    expect(first.metadata.resourceVersion).not.toBe(
      planned.metadata.resourceVersion,
    );
  });

  it('runs a migration through its phases, every step recorded on the object', async () => {
    const name = nextName();
    const driver = new RecordingDriver();
    const machine = new MigrationStateMachine({
      store: store(),
      drivers: [driver],
      clock: systemClock,
    });
    await machine.plan(NAMESPACE, name, SPEC);
    const done = await machine.run(NAMESPACE, name);
    expect(done.status).toMatchObject({
      phase: 'Succeeded',
      bytesMoved: 4096,
      writePauseMs: 3,
    });
    const stored = await store().get(NAMESPACE, name);
    expect(stored?.status?.phases.map(p => p.phase)).toEqual([
      'Planned',
      'PreparingTarget',
      'Transferring',
      'SwitchingOver',
      'Verifying',
      'CleaningUp',
    ]);
    expect(
      cluster.kubectl(['get', 'migration', '-n', NAMESPACE, name]),
    ).toMatch(/Succeeded/);
  });

  it('resumes, in a new operator, a migration the old one left mid-transfer', async () => {
    const name = nextName();
    const first = new RecordingDriver();
    let release!: () => void;
    first.holdTransfer = new Promise(resolve => (release = resolve));
    const stopping = new AbortController();
    const oldOperator = new MigrationStateMachine({
      store: store(RESUME_NAMESPACE),
      drivers: [first],
      clock: systemClock,
    });
    await oldOperator.plan(RESUME_NAMESPACE, name, SPEC);
    const running = oldOperator.run(RESUME_NAMESPACE, name, stopping.signal);
    await until(
      `${name} to be Transferring`,
      async () =>
        (
          await store(RESUME_NAMESPACE).get(RESUME_NAMESPACE, name)
        )?.status?.phase === 'Transferring',
      { intervalMs: 20 },
    );
    stopping.abort();
    await expect(running).rejects.toThrow();
    release();
    expect(
      (await store(RESUME_NAMESPACE).get(RESUME_NAMESPACE, name))?.status
        ?.phase,
    ).toBe('Transferring');

    const second = new RecordingDriver();
    const newOperator = new MigrationStateMachine({
      store: store(RESUME_NAMESPACE),
      drivers: [second],
      clock: systemClock,
    });
    const resumed = await newOperator.resumeAll();
    expect(resumed.map(m => [m.metadata.name, m.status?.phase])).toEqual([
      [name, 'Succeeded'],
    ]);
    // The transfer runs again from the state the old operator recorded.
    expect(second.steps).toEqual([
      'transfer(cache-1-next)',
      'switchOver',
      'verify',
      'cleanUp',
    ]);
  });

  it('runs a Migration a person created with kubectl, without status', async () => {
    const name = nextName();
    cluster.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'ferry.dev/v1alpha1',
        kind: 'Migration',
        metadata: { name, namespace: NAMESPACE },
        spec: SPEC,
      }),
    );
    expect((await store().get(NAMESPACE, name))?.status?.phase).toBe('Planned');
    const driver = new RecordingDriver();
    const machine = new MigrationStateMachine({
      store: store(),
      drivers: [driver],
      clock: systemClock,
    });
    expect((await machine.run(NAMESPACE, name)).status?.phase).toBe(
      'Succeeded',
    );
  });
});
