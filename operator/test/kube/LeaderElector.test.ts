import { CoreV1Api } from '@kubernetes/client-node';
import {
  LeaderElector,
  LeaderElectorOptions,
  microTime,
} from '../../src/kube/leadership/LeaderElector';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { LocalControlPlane } from './LocalControlPlane';
import { eventually } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'ferry-system';
/** Short timings, in the same proportions as the defaults. */
const TIMINGS = {
  leaseDurationMs: 2_000,
  renewDeadlineMs: 1_500,
  retryPeriodMs: 200,
};

describe('LeaderElector on a real API server', () => {
  let cluster: LocalControlPlane;
  let leases = 0;
  const electors: LeaderElector[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start({
      controllerManager: false,
      scheduler: false,
      kwok: false,
    });
    await cluster
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE } } });
  }, 180_000);

  afterEach(async () => {
    await Promise.all(electors.splice(0).map(elector => elector.stop()));
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  function candidate(
    identity: string,
    lease: string,
    extra: Partial<LeaderElectorOptions> = {},
  ) {
    const log: string[] = [];
    const elector = new LeaderElector({
      kubeConfig: cluster.kubeConfig(),
      namespace: NAMESPACE,
      name: lease,
      identity,
      ...TIMINGS,
      onStartedLeading: () => log.push('started'),
      onStoppedLeading: () => log.push('stopped'),
      ...extra,
    });
    electors.push(elector);
    return { elector, log };
  }

  const readLease = (name: string) =>
    apiRequest(
      cluster.kubeConfig(),
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${name}`,
    );

  it('elects one of two candidates and hands over at once when the leader steps down', async () => {
    const lease = `operator-${++leases}`;
    const a = candidate('operator-a', lease);
    a.elector.run();
    await eventually(() => expect(a.elector.isLeader).toBe(true), {
      intervalMs: 25,
    });
    const b = candidate('operator-b', lease);
    b.elector.run();

    // b waits as long as a keeps renewing, well past one lease duration.
    await new Promise(resolve =>
      setTimeout(resolve, TIMINGS.leaseDurationMs * 2),
    );
    expect(b.elector.isLeader).toBe(false);
    expect((await readLease(lease)).spec.holderIdentity).toBe('operator-a');

    const handedOver = Date.now();
    await a.elector.stop();
    expect(a.log).toEqual(['started', 'stopped']);
    await eventually(() => expect(b.elector.isLeader).toBe(true), {
      intervalMs: 25,
    });
    // Released, not expired: b takes over within a retry or two.
    expect(Date.now() - handedOver).toBeLessThan(TIMINGS.leaseDurationMs);
    const spec = (await readLease(lease)).spec;
    expect(spec).toMatchObject({
      holderIdentity: 'operator-b',
      leaseTransitions: 1,
    });
  });

  it('takes over from a leader that vanished only once its lease has expired', async () => {
    const lease = `operator-${++leases}`;
    const now = Date.now();
    await apiRequest(
      cluster.kubeConfig(),
      'POST',
      `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`,
      {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: lease },
          spec: {
            holderIdentity: 'crashed-operator',
            leaseDurationSeconds: TIMINGS.leaseDurationMs / 1000,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 3,
          },
        },
      },
    );
    const leaders: string[] = [];
    const c = candidate('operator-c', lease, {
      onNewLeader: identity => leaders.push(identity),
    });
    const started = Date.now();
    c.elector.run();
    await eventually(() => expect(c.elector.isLeader).toBe(true), {
      intervalMs: 25,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(
      TIMINGS.leaseDurationMs,
    );
    expect(leaders).toEqual(['crashed-operator', 'operator-c']);
    expect((await readLease(lease)).spec.leaseTransitions).toBe(4);
  });

  it('stops leading when it can no longer renew, before anyone else may lead', async () => {
    const lease = `operator-${++leases}`;
    let signal: AbortSignal | undefined;
    const d = candidate('operator-d', lease, {
      onStartedLeading: s => (signal = s),
    });
    const ended = d.elector.run();
    await eventually(() => expect(d.elector.isLeader).toBe(true), {
      intervalMs: 25,
    });

    // Someone takes the lease by force: every renewal from now on fails. The
    // leader renews every retry period, so the write may need a few tries.
    for (;;) {
      const current = await readLease(lease);
      const now = Date.now();
      try {
        await apiRequest(
          cluster.kubeConfig(),
          'PUT',
          `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/${lease}`,
          {
            body: {
              ...current,
              spec: {
                ...current.spec,
                holderIdentity: 'intruder',
                leaseDurationSeconds: 3600,
                renewTime: microTime(now),
              },
            },
          },
        );
        break;
      } catch (error) {
        if ((error as { code?: number }).code !== 409) throw error;
      }
    }
    const lostAt = Date.now();
    await ended;
    expect(signal?.aborted).toBe(true);
    expect(d.elector.isLeader).toBe(false);
    const tookMs = Date.now() - lostAt;
    expect(tookMs).toBeLessThan(
      TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs * 2,
    );
  });
});
