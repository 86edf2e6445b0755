import { ConfigReader } from '@backstage/config';
import { DEFAULT_DEMO_SPEEDUP, readDemoConfig } from './config';

const withCluster = {
  kubernetes: {
    clusterLocatorMethods: [
      { type: 'config', clusters: [{ name: 'prod', url: 'https://k8s' }] },
    ],
  },
};

describe('readDemoConfig', () => {
  it('turns demo mode on when the Kubernetes plugin has no cluster', () => {
    expect(readDemoConfig(new ConfigReader({}))).toEqual({
      speedup: DEFAULT_DEMO_SPEEDUP,
      reclaimEveryMinutes: 30,
      seed: 14,
      historyDays: 30,
    });
    expect(
      readDemoConfig(
        new ConfigReader({
          kubernetes: {
            clusterLocatorMethods: [{ type: 'config', clusters: [] }],
          },
        }),
      ),
    ).toBeDefined();
  });

  it('leaves it off when a cluster is configured, unless asked', () => {
    expect(readDemoConfig(new ConfigReader(withCluster))).toBeUndefined();
    expect(
      readDemoConfig(
        new ConfigReader({
          ...withCluster,
          ferry: {
            demo: { enabled: true, speedup: 600, seed: 7, historyDays: 0 },
          },
        }),
      ),
    ).toEqual({
      speedup: 600,
      reclaimEveryMinutes: 30,
      seed: 7,
      historyDays: 0,
    });
    expect(
      readDemoConfig(new ConfigReader({ ferry: { demo: { enabled: false } } })),
    ).toBeUndefined();
  });

  it('says what is wrong with a bad speed, reclaim interval or history', () => {
    expect(() =>
      readDemoConfig(new ConfigReader({ ferry: { demo: { speedup: 0 } } })),
    ).toThrow(/ferry.demo.speedup must be a positive number/);
    expect(() =>
      readDemoConfig(
        new ConfigReader({ ferry: { demo: { reclaimEveryMinutes: -1 } } }),
      ),
    ).toThrow(/ferry.demo.reclaimEveryMinutes must be a positive number/);
    expect(() =>
      readDemoConfig(
        new ConfigReader({ ferry: { demo: { historyDays: -3 } } }),
      ),
    ).toThrow(/ferry.demo.historyDays must be 0 \(no history\)/);
  });
});
