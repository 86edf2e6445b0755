import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Migration, SpotPolicy } from '../api/v1alpha1';
import { capacityTypeFromLabels } from '../cloud/nodeLabels';
import { VirtualClock } from '../core/clock';
import {
  MIGRATIONS,
  NODES,
  PODS,
  SPOT_POLICIES,
} from '../kube/client/resources';
import { DemoCluster } from './DemoCluster';
import { EXAMPLE_WORKLOADS } from './exampleWorkloads';

const NOW = Date.parse('2026-12-01T00:00:00Z');

async function runFor(clock: VirtualClock, ms: number): Promise<void> {
  await clock.runUntil(clock.now() + ms);
}

describe('DemoCluster', () => {
  it('runs the example services on the real controllers: the annotated ones opt in and move to spot, a notice moves a member off its node', async () => {
    const clock = new VirtualClock(NOW);
    // A day into the market data, no history: the services start on permanent capacity.
    const demo = new DemoCluster({
      workloads: EXAMPLE_WORKLOADS,
      clock,
      seed: 14,
    });
    await demo.boot();
    try {
      const spotOf = (name: string) =>
        demo.cluster.objects<V1Pod>(PODS).filter(p => {
          if (p.metadata?.labels?.app !== name) return false;
          const node = demo.cluster.object<V1Node>(
            NODES,
            p.spec?.nodeName ?? '',
          );
          return (
            node &&
            capacityTypeFromLabels(node.metadata?.labels ?? {}) === 'spot'
          );
        });
      await runFor(clock, 20 * 60_000);
      const policies = demo.cluster.objects<SpotPolicy>(SPOT_POLICIES);
      expect(
        policies.map(p => `${p.metadata.name}:${p.spec.enabled}`).sort(),
      ).toEqual(['agent-memory:false', 'job-queue:true', 'session-store:true']);
      expect(spotOf('session-store')).toHaveLength(2);
      expect(spotOf('agent-memory')).toHaveLength(0);
      const onSpot = spotOf('session-store')[0];
      expect(demo.listReclaimableSpotNodes()).toContain(onSpot.spec!.nodeName);
      await demo.reclaimNode(onSpot.spec!.nodeName!);
      expect(demo.listReclaimableSpotNodes()).not.toContain(
        onSpot.spec!.nodeName,
      );
      expect(demo.listSpotNodesInUse()).toContain(onSpot.spec!.nodeName);
      await runFor(clock, 3 * 60_000);
      const notices = demo.cluster
        .objects<Migration>(MIGRATIONS)
        .filter(m => m.spec.reason === 'notice');
      expect(notices.map(m => [m.spec.pod, m.status?.phase])).toContainEqual([
        onSpot.metadata!.name,
        'Succeeded',
      ]);
    } finally {
      await demo.stop();
    }
  }, 120_000);

  it('replays days of the market through the controllers in virtual time and reports what the portal would have read', async () => {
    const clock = new VirtualClock(NOW);
    const demo = new DemoCluster({
      workloads: EXAMPLE_WORKLOADS,
      clock,
      seed: 14,
      historyDays: 2,
    });
    const started = Date.now();
    const reports = [];
    try {
      for await (const report of demo.replayHistory()) reports.push(report);
      // Two days of timers (status, risk, the cloud's events) take seconds, not days.
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(clock.now()).toBe(NOW + 2 * 24 * 3_600_000);
      expect(demo.historyEnd).toBe(clock.now());
      const hourly = reports.filter(r => (r.at - NOW) % 3_600_000 === 0);
      expect(hourly.map(r => r.at)).toEqual(
        Array.from({ length: 48 }, (_, i) => NOW + (i + 1) * 3_600_000),
      );
      const last = reports[reports.length - 1];
      const store = last.policies.find(
        p => p.metadata.name === 'session-store',
      );
      // Opted in from the catalog when the history began, as the portal's sync writes it.
      expect(store?.metadata.annotations).toMatchObject({
        'ferry.dev/entity-ref': 'component:default/session-store',
        'ferry.dev/policy-source': 'catalog',
      });
      expect(Date.parse(store!.metadata.creationTimestamp!)).toBe(NOW);
      // The status controller's accounting over those days, on spot for two of three.
      expect(store?.status?.cost?.spendToDateUsd).toBeGreaterThan(0);
      expect(store?.status?.cost?.savingsToDateUsd).toBeGreaterThan(0);
      expect(
        store?.status?.replicas?.filter(r => r.capacityType === 'spot'),
      ).toHaveLength(2);
      // Risk comes from the operator's risk feed, not 0.
      expect(
        Math.max(
          ...(store?.status?.replicas ?? []).map(r => r.interruptionRisk),
        ),
      ).toBeGreaterThan(0);
      // The history runs once.
      const again = [];
      for await (const report of demo.replayHistory()) again.push(report);
      expect(again).toEqual([]);
    } finally {
      await demo.stop();
    }
  }, 120_000);
});
