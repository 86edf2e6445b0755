import type { V1Pod } from '@kubernetes/client-node';
import { PodGroups } from './PodGroups';

function pod(name: string, node?: string): V1Pod {
  return {
    metadata: { namespace: 'shop', name },
    spec: { nodeName: node } as V1Pod['spec'],
  };
}

describe('PodGroups', () => {
  it('groups pods as their changes arrive, as grouping every pod again would', () => {
    const byNode = new PodGroups(p => p.spec?.nodeName || undefined);
    const cache = new Map<string, V1Pod>();
    const regroup = (node: string) =>
      [...cache.values()].filter(p => p.spec?.nodeName === node);
    const events: ['ADDED' | 'MODIFIED' | 'DELETED', V1Pod][] = [
      ['ADDED', pod('a', 'n1')],
      ['ADDED', pod('b', 'n1')],
      ['ADDED', pod('c', 'n2')],
      ['ADDED', pod('unbound')],
      ['MODIFIED', pod('a', 'n2')],
      ['MODIFIED', pod('unbound', 'n1')],
      ['DELETED', pod('c', 'n2')],
      ['MODIFIED', pod('b', 'n1')],
    ];
    for (const [type, object] of events) {
      if (type === 'DELETED') cache.delete(object.metadata!.name!);
      else cache.set(object.metadata!.name!, object);
      byNode.apply({ type, object });
      for (const node of ['n1', 'n2', 'n3']) {
        expect(
          byNode
            .get(node)
            .map(p => p.metadata!.name)
            .sort(),
        ).toEqual(
          regroup(node)
            .map(p => p.metadata!.name)
            .sort(),
        );
      }
    }
  });

  it("keeps a group's list while none of its pods changes", () => {
    const byNode = new PodGroups(p => p.spec?.nodeName || undefined);
    byNode.apply({ type: 'ADDED', object: pod('a', 'n1') });
    byNode.apply({ type: 'ADDED', object: pod('b', 'n2') });
    const n1 = byNode.get('n1');
    const n2 = byNode.get('n2');
    byNode.apply({ type: 'MODIFIED', object: pod('b', 'n2') });
    expect(byNode.get('n1')).toBe(n1);
    expect(byNode.get('n2')).not.toBe(n2);
    expect(byNode.get('n2')).toHaveLength(1);
  });
});
