import type { V1Node } from '@kubernetes/client-node';
import { nodeSelectorTermMatches } from './StatefulSetValkeyDriver';

const node: V1Node = {
  metadata: {
    name: 'spot-1-b',
    labels: {
      'topology.kubernetes.io/zone': 'us-east-1b',
      'node.kubernetes.io/instance-type': 'm5.large',
    },
  },
};

describe('nodeSelectorTermMatches, for the node affinity of a volume', () => {
  it('lets a node mount a volume of its own zone, and no other zone', () => {
    const zone = (values: string[]) => ({
      matchExpressions: [
        { key: 'topology.kubernetes.io/zone', operator: 'In', values },
      ],
    });
    expect(nodeSelectorTermMatches(zone(['us-east-1b']), node)).toBe(true);
    expect(nodeSelectorTermMatches(zone(['us-east-1a']), node)).toBe(false);
  });

  it('needs every expression of a term, and reads matchFields as the node name', () => {
    expect(
      nodeSelectorTermMatches(
        {
          matchExpressions: [
            { key: 'topology.kubernetes.io/zone', operator: 'Exists' },
            { key: 'local-disk', operator: 'DoesNotExist' },
            {
              key: 'node.kubernetes.io/instance-type',
              operator: 'NotIn',
              values: ['m5.xlarge'],
            },
          ],
          matchFields: [
            { key: 'metadata.name', operator: 'In', values: ['spot-1-b'] },
          ],
        },
        node,
      ),
    ).toBe(true);
    expect(
      nodeSelectorTermMatches(
        {
          matchFields: [
            { key: 'metadata.name', operator: 'In', values: ['spot-1-a'] },
          ],
        },
        node,
      ),
    ).toBe(false);
    expect(
      nodeSelectorTermMatches(
        { matchExpressions: [{ key: 'local-disk', operator: 'Exists' }] },
        node,
      ),
    ).toBe(false);
  });
});
