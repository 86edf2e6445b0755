/* eslint-disable @backstage/no-relative-monorepo-imports -- the portal backend's
   cluster client must read the status the operator writes; the operator cannot
   depend on the backend, so this suite reaches it by path, as
   portalClusterClient.test.ts does. */
/**
 * What the leader keeps on a real cluster besides Migrations: each SpotPolicy's
 * status (placement, cost and savings at the prices EC2 gives, availability),
 * accrued across a change of leader; finished Migrations collected after the
 * retention, running ones never; and a replica with leader election off, which
 * leads at once without a Lease.
 */
import {
  DescribeSpotPriceHistoryCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { CoreV1Api } from '@kubernetes/client-node';
import { mockClient } from 'aws-sdk-client-mock';
import { KubernetesFerryClusterClient } from '../../../plugins/ferry-backend/src/services/Clusters/KubernetesFerryClusterClient';
import {
  FERRY_API_VERSION,
  Migration,
  MigrationStatus,
  SpotPolicy,
} from '../../src/api/v1alpha1';
import { apiRequest, collectionPath } from '../../src/kube/client/apiRequest';
import { KubeOperator } from '../../src/kube/KubeOperator';
import { patchStatus } from '../../src/kube/client/objects';
import { PoolPriceFeed, PriceBook } from '../../src/kube/pools/PoolPriceFeed';
import { MIGRATIONS, SPOT_POLICIES } from '../../src/kube/client/resources';
import type { AccountedSpotPolicyStatus } from '../../src/kube/controllers/spotPolicyStatus';
import type {
  MigrationDriver,
  MigrationStepContext,
} from '../../src/migration/MigrationDriver';
import { createFakeNodes, FakeNodeSpec, zonalFleet } from './fakeNodes';
import { installFerryCrds } from './ferryCrds';
import { LocalControlPlane } from './LocalControlPlane';
import { createOptedInSessions } from './optedInSessions';
import { portalToken, silentLogger } from './portalAccess';
import { until } from './until';
import { migrationsIn } from './migrations';
import { startOperator } from './startOperator';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const LEASE = {
  namespace: 'ferry-system',
  name: 'ferry-leader',
  leaseDurationMs: 2_000,
  renewDeadlineMs: 1_500,
  retryPeriodMs: 200,
};
/** Short, so a test sees spend accrue without waiting a minute. */
const STATUS_REFRESH_MS = 300;
const DAY_MS = 86_400_000;
const SPOT_USD_PER_HOUR = 0.035;
const ON_DEMAND_USD_PER_HOUR = 0.096;
/** A sessions member (500m, 1 GiB) takes a quarter of an m5.large (2 CPU, 8 GiB). */
const MEMBER_SHARE = 0.25;

/** Two spot nodes and one on-demand node in each of three zones. */
const FLEET: FakeNodeSpec[] = zonalFleet();

/** Stands for a driver in the middle of a long transfer, until the operator stops. */
class TransferringDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  async prepareTarget() {}
  async transfer(ctx: MigrationStepContext) {
    await new Promise((_, reject) =>
      ctx.signal.addEventListener('abort', () => reject(new Error('stopping'))),
    );
  }
  async switchOver() {}
  async verify() {}
  async cleanUp() {}
  async rollBack() {}
}

describe('SpotPolicy status and Migration history on a real cluster', () => {
  const ec2Mock = mockClient(EC2Client);
  let cluster: LocalControlPlane;
  let portal: KubernetesFerryClusterClient;
  const operators: KubeOperator[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start();
    const kc = cluster.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await installFerryCrds(kc);
    await createFakeNodes(kc, FLEET);
    for (const name of [NAMESPACE, LEASE.namespace]) {
      await core.createNamespace({ body: { metadata: { name } } });
    }
    portal = new KubernetesFerryClusterClient(
      {
        name: 'local',
        url: cluster.server,
        serviceAccountToken: await portalToken(kc),
        skipTLSVerify: false,
        caData: Buffer.from(cluster.caPem).toString('base64'),
      },
      silentLogger,
    );
    // EC2's answer for the region's spot pools; the on-demand price is configured.
    ec2Mock.on(DescribeSpotPriceHistoryCommand).resolves({
      SpotPriceHistory: ['a', 'b', 'c'].map(zone => ({
        InstanceType: 'm5.large',
        AvailabilityZone: `us-east-1${zone}`,
        SpotPrice: SPOT_USD_PER_HOUR.toFixed(6),
        Timestamp: new Date(Date.now() - 3_600_000),
      })),
    });
    await createOptedInSessions(kc, NAMESPACE, { availabilityTarget: 0.999 });
    // Members ready before any operator looks, so availability starts at 1.
    await until('three sessions members ready', async () => {
      const pods = await core.listNamespacedPod({ namespace: NAMESPACE });
      return (
        pods.items.filter(pod =>
          pod.status?.conditions?.some(
            c => c.type === 'Ready' && c.status === 'True',
          ),
        ).length === 3
      );
    });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(operators.map(o => o.stop()));
    await cluster?.stop();
    ec2Mock.restore();
  });

  async function operator(
    identity: string,
    lease: typeof LEASE | false = LEASE,
    /** `shipped`: no price source given, as a chart without providers.aws runs. */
    priced: 'ec2' | 'shipped' = 'ec2',
  ): Promise<KubeOperator> {
    const prices = new PoolPriceFeed({
      aws: {
        ec2: new EC2Client({ region: 'us-east-1' }),
        region: 'us-east-1',
        onDemandPricesUsdPerHour: { 'm5.large': ON_DEMAND_USD_PER_HOUR },
      },
      // Only what EC2 and the configuration say, so the test knows every price.
      fallback: () => new PriceBook(),
    });
    const { operator: op } = await startOperator(cluster, {
      identity,
      lease,
      drivers: [new TransferringDriver()],
      prices: priced === 'ec2' ? () => prices.current() : undefined,
      statusRefreshMs: STATUS_REFRESH_MS,
      migrationRetention: {
        maxAgeMs: 7 * DAY_MS,
        maxPerWorkload: 100,
        intervalMs: 500,
      },
    });
    operators.push(op);
    await prices.refresh(() => op.state.nodeViews());
    return op;
  }

  const status = async () =>
    (
      await apiRequest<SpotPolicy>(
        cluster.kubeConfig(),
        'GET',
        `${collectionPath(SPOT_POLICIES, NAMESPACE)}/sessions`,
      )
    ).status as AccountedSpotPolicyStatus | undefined;

  const condition = (s: AccountedSpotPolicyStatus, type: string) =>
    s.conditions.find(c => c.type === type);

  it('shows where the members run, what they cost against on demand, savings and availability — and the portal reads it', async () => {
    const a = await operator('operator-a');
    await until('operator-a to lead', () => a.isLeader);
    const written = await until('spend and savings accrued', async () => {
      const s = await status();
      return s && s.replicas.length === 3 && s.cost.savingsToDateUsd > 0
        ? s
        : undefined;
    });

    expect(written.observedGeneration).toBe(1);
    for (const replica of written.replicas) {
      expect(replica).toMatchObject({
        capacityType: 'spot',
        instanceType: 'm5.large',
        node: expect.stringMatching(/^spot-/),
        zone: expect.stringMatching(/^us-east-1[abc]$/),
        ready: true,
      });
      expect(replica.hourlyCostUsd).toBeCloseTo(
        SPOT_USD_PER_HOUR * MEMBER_SHARE,
        6,
      );
    }
    // Spread over the zones, as the Deployment's topology constraint asks.
    expect(new Set(written.replicas.map(r => r.zone)).size).toBe(3);
    expect(written.cost.hourlyCostUsd).toBeCloseTo(
      3 * SPOT_USD_PER_HOUR * MEMBER_SHARE,
      6,
    );
    expect(written.cost.onDemandHourlyCostUsd).toBeCloseTo(
      3 * ON_DEMAND_USD_PER_HOUR * MEMBER_SHARE,
      6,
    );
    // Every interval accrued at these rates: savings stand to spend as the rates do.
    expect(
      written.cost.savingsToDateUsd / written.cost.spendToDateUsd,
    ).toBeCloseTo(
      (ON_DEMAND_USD_PER_HOUR - SPOT_USD_PER_HOUR) / SPOT_USD_PER_HOUR,
      6,
    );
    expect(written.availability).toEqual({
      target: 0.999,
      observed: 1,
      errorBudgetRemaining: 1,
      requiredMembers: 2,
      readyMembers: 3,
    });
    expect(condition(written, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Placed',
      observedGeneration: 1,
    });
    expect(condition(written, 'PricesKnown')).toMatchObject({
      status: 'True',
      reason: 'Priced',
    });
    expect(condition(written, 'PricesKnown')?.message).toContain(
      'EC2 spot price history (us-east-1',
    );
    expect(condition(written, 'AvailabilityTargetMet')?.status).toBe('True');

    // The portal backend's client, with its least-privilege account.
    const seen = await portal.getSpotPolicy(NAMESPACE, 'sessions');
    expect(seen?.status?.replicas).toEqual(written.replicas);
    expect(seen?.status?.availability).toEqual(written.availability);
    expect(seen?.status?.cost.hourlyCostUsd).toBe(written.cost.hourlyCostUsd);
    expect(seen?.status?.cost.spendToDateUsd).toBeGreaterThanOrEqual(
      written.cost.spendToDateUsd,
    );
    expect(seen?.status?.conditions.find(c => c.type === 'Ready')?.reason).toBe(
      'Placed',
    );
  });

  it('goes on accruing from the status when another replica takes over', async () => {
    const [a] = operators;
    await a.stop();
    const left = (await status())!;
    const b = await operator('operator-b');
    await until('operator-b to lead', () => b.isLeader);
    const continued = await until('operator-b to write status', async () => {
      const s = await status();
      return s?.accounting &&
        Date.parse(s.accounting.accruedAt) >
          Date.parse(left.accounting!.accruedAt)
        ? s
        : undefined;
    });
    const elapsedMs =
      Date.parse(continued.accounting!.accruedAt) -
      Date.parse(left.accounting!.accruedAt);
    // From the totals operator-a left, over the time since, at the rates it recorded.
    expect(continued.accounting!.observedSeconds).toBeCloseTo(
      left.accounting!.observedSeconds + elapsedMs / 1000,
      3,
    );
    expect(continued.cost.spendToDateUsd).toBeCloseTo(
      left.cost.spendToDateUsd +
        (left.cost.hourlyCostUsd * elapsedMs) / 3_600_000,
      9,
    );
    expect(continued.cost.savingsToDateUsd).toBeGreaterThan(
      left.cost.savingsToDateUsd,
    );
    expect(continued.migrationsTotal).toBe(left.migrationsTotal);
  });

  it('collects a finished Migration past the retention, and neither a running nor a recent one', async () => {
    const kc = cluster.kubeConfig();
    const longAgo = new Date(Date.now() - 8 * DAY_MS).toISOString();
    const lately = new Date(Date.now() - 3_600_000).toISOString();
    const create = async (name: string, progress: MigrationStatus) => {
      await apiRequest<Migration>(
        kc,
        'POST',
        collectionPath(MIGRATIONS, NAMESPACE),
        {
          body: {
            apiVersion: FERRY_API_VERSION,
            kind: 'Migration',
            metadata: { name },
            spec: {
              workloadRef: { kind: 'StatefulSet', name: 'archive' },
              pod: 'archive-0',
              sourceNode: 'spot-1-a',
              reason: 'drain',
              driver: 'valkey',
            },
          },
        },
      );
      await patchStatus(kc, MIGRATIONS, NAMESPACE, name, progress);
    };
    await create('running-for-days', {
      phase: 'Transferring',
      phases: [
        { phase: 'Planned', startedAt: longAgo, finishedAt: longAgo },
        { phase: 'PreparingTarget', startedAt: longAgo, finishedAt: longAgo },
        { phase: 'Transferring', startedAt: longAgo },
      ],
      bytesMoved: 0,
    });
    await create('recent', {
      phase: 'Succeeded',
      phases: [{ phase: 'Succeeded', startedAt: lately }],
      bytesMoved: 0,
      completedAt: lately,
    });
    await create('old', {
      phase: 'Succeeded',
      phases: [{ phase: 'Succeeded', startedAt: longAgo }],
      bytesMoved: 0,
      completedAt: longAgo,
    });

    const names = async () =>
      (await migrationsIn(kc, NAMESPACE)).map(m => m.metadata.name).sort();
    // One pass judges all three: by the time `old` is gone, the others were spared.
    const left = await until('the old Migration to be collected', async () => {
      const now = await names();
      return now.includes('old') ? undefined : now;
    });
    expect(left).toEqual(['recent', 'running-for-days']);
  });

  it('leads at once without a Lease when leader election is off, and says which prices it does not know', async () => {
    const kc = cluster.kubeConfig();
    await Promise.all(operators.map(o => o.stop()));
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${LEASE.namespace}/leases`;
    await apiRequest(kc, 'DELETE', `${leases}/${LEASE.name}`);
    const before = (await status())!;

    const alone = await operator('operator-alone', false, 'shipped');
    expect(alone.isLeader).toBe(true);
    // It acts as leader: the status accrues again.
    const first = await until('operator-alone to write status', async () => {
      const s = await status();
      return s?.accounting &&
        Date.parse(s.accounting.accruedAt) >
          Date.parse(before.accounting!.accruedAt)
        ? s
        : undefined;
    });
    // The shipped table has us-east-1's on-demand prices but no spot price there:
    // the spot members are left out of cost, and no savings accrue from them.
    expect(condition(first, 'PricesKnown')).toMatchObject({
      status: 'False',
      reason: 'PriceUnknown',
    });
    expect(condition(first, 'PricesKnown')?.message).toContain(
      'm5.large in us-east-1',
    );
    expect(condition(first, 'PricesKnown')?.message).toContain('no spot price');
    expect(first.cost.hourlyCostUsd).toBe(0);
    expect(first.replicas.map(r => r.hourlyCostUsd)).toEqual([0, 0, 0]);
    const next = await until('a second write', async () => {
      const s = await status();
      return s?.accounting &&
        Date.parse(s.accounting.accruedAt) >
          Date.parse(first.accounting!.accruedAt)
        ? s
        : undefined;
    });
    expect(next.cost.savingsToDateUsd).toBe(first.cost.savingsToDateUsd);
    expect(next.cost.spendToDateUsd).toBe(first.cost.spendToDateUsd);
    expect(
      (await apiRequest<{ items: unknown[] }>(kc, 'GET', leases)).items,
    ).toEqual([]);
    const everywhere = await apiRequest<{
      items: { spec?: { holderIdentity?: string } }[];
    }>(kc, 'GET', '/apis/coordination.k8s.io/v1/leases');
    expect(
      everywhere.items.filter(l => l.spec?.holderIdentity === 'operator-alone'),
    ).toEqual([]);
    await alone.stop();
    expect(alone.isLeader).toBe(false);
  });

  it('records Events when the workload falls below its quorum and misses its availability target', async () => {
    const kc = cluster.kubeConfig();
    await operator('operator-d');
    // Four more members wanted and nowhere to run (spot nodes full, by a taint
    // that is no interruption signal): 3 ready of a quorum of 4.
    for (const spec of FLEET.filter(n => n.capacityType === 'spot')) {
      await apiRequest(kc, 'PATCH', `/api/v1/nodes/${spec.name}`, {
        contentType: 'application/merge-patch+json',
        body: {
          spec: { taints: [{ key: 'example.com/full', effect: 'NoSchedule' }] },
        },
      });
    }
    await apiRequest(
      kc,
      'PATCH',
      `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/sessions/scale`,
      {
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 7 } },
      },
    );
    const events = await until('both Warning Events', async () => {
      const list = (
        await apiRequest<{
          items: {
            type: string;
            reason: string;
            note: string;
            regarding: { kind: string; name: string };
          }[];
        }>(kc, 'GET', `/apis/events.k8s.io/v1/namespaces/${NAMESPACE}/events`)
      ).items.filter(
        e =>
          e.regarding.kind === 'SpotPolicy' && e.regarding.name === 'sessions',
      );
      const reasons = list.map(e => e.reason);
      return reasons.includes('BelowQuorum') &&
        reasons.includes('AvailabilityTargetMissed')
        ? list
        : undefined;
    });
    expect(events.every(e => e.type === 'Warning')).toBe(true);
    expect(events.find(e => e.reason === 'BelowQuorum')?.note).toContain(
      '3 of 4 required members ready',
    );
    const after = (await status())!;
    expect(condition(after, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'BelowQuorum',
    });
    expect(condition(after, 'AvailabilityTargetMet')).toMatchObject({
      status: 'False',
      reason: 'ErrorBudgetExhausted',
    });
    expect(after.availability.observed).toBeLessThan(0.999);
    expect(after.availability.errorBudgetRemaining).toBeLessThan(0);
  });
});
