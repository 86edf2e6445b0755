import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Migration, SpotPolicy } from '../api/v1alpha1';
import { capacityTypeFromLabels } from '../cloud/nodeLabels';
import { ManualClock } from '../core/clock';
import {
  MIGRATIONS,
  NODES,
  PODS,
  SPOT_POLICIES,
} from '../kube/client/resources';
import { DemoCluster } from './DemoCluster';
import { EXAMPLE_WORKLOADS } from './exampleWorkloads';

const NOW = Date.parse('2026-12-01T00:00:00Z');

async function runFor(
  demo: DemoCluster,
  clock: ManualClock,
  ms: number,
  stepMs = 1_000,
): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(stepMs);
    await demo.advance();
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

describe('DemoCluster', () => {
  it('runs the example services on the real controllers: the annotated ones opt in and move to spot, a notice moves a member off its node', async () => {
    const clock = new ManualClock(NOW);
    const probe = new DemoCluster({
      workloads: [],
      clock,
      seed: 14,
      marketNow: 0,
    });
    const marketNow = probe.provider.market.startAt + 24 * 3_600_000;
    const demo = new DemoCluster({
      workloads: EXAMPLE_WORKLOADS,
      clock,
      seed: 14,
      marketNow,
    });
    await demo.start();
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
      await runFor(demo, clock, 20 * 60_000);
      const policies = demo.cluster.objects<SpotPolicy>(SPOT_POLICIES);
      expect(
        policies.map(p => `${p.metadata.name}:${p.spec.enabled}`).sort(),
      ).toEqual(['agent-memory:false', 'job-queue:true', 'session-store:true']);
      expect(spotOf('session-store')).toHaveLength(2);
      expect(spotOf('agent-memory')).toHaveLength(0);
      const onSpot = spotOf('session-store')[0];
      expect(demo.listReclaimableSpotNodes()).toContain(onSpot.spec!.nodeName);
      demo.reclaimNode(onSpot.spec!.nodeName!);
      expect(demo.listReclaimableSpotNodes()).not.toContain(
        onSpot.spec!.nodeName,
      );
      expect(demo.listSpotNodesInUse()).toContain(onSpot.spec!.nodeName);
      await runFor(demo, clock, 3 * 60_000);
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
});
