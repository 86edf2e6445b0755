import { HIBERNATE_AFTER_ANNOTATION } from '../client/ferryKeys';
import { HibernationController } from './HibernationController';
import {
  FakeHibernationCluster,
  sleepablePod,
} from './__testUtils__/FakeHibernationCluster';

function controllerOn(
  cluster: FakeHibernationCluster,
  fromPolicies: Record<string, string> = {},
): HibernationController {
  return new HibernationController({
    cluster,
    agents: cluster.agents,
    policyHibernateAfter: () => new Map(Object.entries(fromPolicies)),
  });
}

describe('HibernationController', () => {
  it("watches a member whose SpotPolicy gives hibernateAfter, with the policy's idle period", async () => {
    const cluster = new FakeHibernationCluster();
    cluster.put(sleepablePod('cache-0'));
    await controllerOn(cluster, { 'shop/cache-0': '10m' }).reconcileAll();
    expect(cluster.watched.get('hib-uid-cache-0')).toEqual({
      idleMs: 600_000,
      ports: [6379],
    });
    expect(
      cluster.pods.get('shop/cache-0')?.metadata?.labels?.[
        'ferry.dev/hibernation'
      ],
    ).toBe('RUNNING');
  });

  it("takes the policy's idle period over the pod's own annotation", async () => {
    const cluster = new FakeHibernationCluster();
    cluster.put(
      sleepablePod('cache-0', {
        annotations: { [HIBERNATE_AFTER_ANNOTATION]: '10s' },
      }),
    );
    await controllerOn(cluster, { 'shop/cache-0': '2h' }).reconcileAll();
    expect(cluster.watched.get('hib-uid-cache-0')?.idleMs).toBe(7_200_000);
  });

  it('follows the annotation alone, and leaves a pod that asks for neither', async () => {
    const cluster = new FakeHibernationCluster();
    cluster.put(
      sleepablePod('annotated', {
        annotations: { [HIBERNATE_AFTER_ANNOTATION]: '10s' },
      }),
    );
    cluster.put(sleepablePod('plain'));
    // A policy of another namespace's pod of the same name does not apply.
    await controllerOn(cluster, { 'other/plain': '10m' }).reconcileAll();
    expect([...cluster.watched.keys()]).toEqual(['hib-uid-annotated']);
    expect(cluster.watched.get('hib-uid-annotated')?.idleMs).toBe(10_000);
  });

  it('says on the pod why a member of several replicas may not sleep, whichever asked', async () => {
    const cluster = new FakeHibernationCluster();
    cluster.replicas = 3;
    cluster.put(sleepablePod('cache-0'));
    await controllerOn(cluster, { 'shop/cache-0': '10m' }).reconcileAll();
    expect(cluster.watched.size).toBe(0);
    expect(
      cluster.pods.get('shop/cache-0')?.metadata?.annotations?.[
        'ferry.dev/hibernation-refused'
      ],
    ).toMatch(/3 replicas, whose quorum of 2/);
  });
});
