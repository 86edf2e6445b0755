import { zoneOfVolume } from './KubeVolumeDriver';

function volumeWithTerms(
  ...terms: { key: string; operator: string; values?: string[] }[][]
) {
  return {
    spec: {
      nodeAffinity: {
        required: {
          nodeSelectorTerms: terms.map(matchExpressions => ({
            matchExpressions,
          })),
        },
      },
    },
  };
}

describe('zoneOfVolume', () => {
  it('reads the zone of a zonal volume by the well-known label or a CSI driver’s own zone key', () => {
    expect(
      zoneOfVolume(
        volumeWithTerms([
          {
            key: 'topology.kubernetes.io/zone',
            operator: 'In',
            values: ['us-east-1a'],
          },
        ]),
      ),
    ).toBe('us-east-1a');
    expect(
      zoneOfVolume(
        volumeWithTerms([
          {
            key: 'topology.ebs.csi.aws.com/zone',
            operator: 'In',
            values: ['us-east-1b'],
          },
        ]),
      ),
    ).toBe('us-east-1b');
  });

  it('gives no zone for a volume every zone reaches, or several (a regional disk)', () => {
    expect(zoneOfVolume({ spec: {} })).toBeUndefined();
    expect(
      zoneOfVolume(
        volumeWithTerms(
          [
            {
              key: 'topology.gke.io/zone',
              operator: 'In',
              values: ['europe-west1-b'],
            },
          ],
          [
            {
              key: 'topology.gke.io/zone',
              operator: 'In',
              values: ['europe-west1-c'],
            },
          ],
        ),
      ),
    ).toBeUndefined();
  });

  it('ignores keys that say nothing of zones', () => {
    expect(
      zoneOfVolume(
        volumeWithTerms([
          {
            key: 'kubernetes.io/hostname',
            operator: 'In',
            values: ['node-1'],
          },
        ]),
      ),
    ).toBeUndefined();
  });
});
