import { SpotTrace } from './marketData';
import { SimulatedCloudProvider } from './SimulatedCloudProvider';
import { SimulatedMarketData, SimulatedSpotMarket } from './SimulatedSpotMarket';
import { TERMINATION_NOTICE_MS } from './CloudProvider';
import { capacityTypeFromLabels, NODE_LABELS } from './nodeLabels';

const T0 = Date.parse('2022-01-01T00:00:00Z');
const HOUR = 3_600_000;

function data(): SimulatedMarketData {
  const trace: SpotTrace = {
    source: 'trace.json',
    cloud: 'aws',
    zone: 'us-west-2a',
    instanceType: 'p3.2xlarge',
    startAt: 0,
    tickMs: 600_000,
    // Available for 5 hours, reclaimed for one, then available again.
    unavailable: [...Array(30).fill(false), ...Array(6).fill(true), ...Array(30).fill(false)],
  };
  return {
    prices: [
      { at: T0, region: 'eu-west-1', zone: 'eu-west-1a', instanceType: 'r5.large', priceUsdPerHour: 0.04 },
      { at: T0 + 2 * HOUR, region: 'eu-west-1', zone: 'eu-west-1a', instanceType: 'r5.large', priceUsdPerHour: 0.05 },
      { at: T0 + 10 * HOUR, region: 'eu-west-1', zone: 'eu-west-1a', instanceType: 'r5.large', priceUsdPerHour: 0.05 },
    ],
    onDemand: new Map([['r5.large', 0.126]]),
    advisor: new Map([
      ['eu-west-1/r5.large', { region: 'eu-west-1', instanceType: 'r5.large', band: 4, savingsPct: 55, vcpus: 2, memoryGiB: 16 }],
      ['us-west-2/p3.2xlarge', { region: 'us-west-2', instanceType: 'p3.2xlarge', band: 4, savingsPct: 80, vcpus: 8, memoryGiB: 61 }],
    ]),
    traces: [trace],
  };
}

describe('SimulatedSpotMarket', () => {
  it('holds each price until the pool\'s next change', () => {
    const market = new SimulatedSpotMarket(data(), { seed: 1, noticeMs: TERMINATION_NOTICE_MS.aws });
    expect(market.spotPrice('r5.large@eu-west-1a', T0 + HOUR)).toBe(0.04);
    expect(market.spotPrice('r5.large@eu-west-1a', T0 + 3 * HOUR)).toBe(0.05);
  });

  it('replays the same interruptions for the same seed', () => {
    const a = new SimulatedSpotMarket(data(), { seed: 42, noticeMs: TERMINATION_NOTICE_MS.aws });
    const b = new SimulatedSpotMarket(data(), { seed: 42, noticeMs: TERMINATION_NOTICE_MS.aws });
    expect(a.interruptionsOf('r5.large@eu-west-1a')).toEqual(b.interruptionsOf('r5.large@eu-west-1a'));
    expect(a.interruptionsOf('r5.large@eu-west-1a').length).toBeGreaterThan(0);
  });

  it('warns one notice ahead of each reclaim and has no capacity until it is back', () => {
    const market = new SimulatedSpotMarket(data(), { seed: 3, noticeMs: TERMINATION_NOTICE_MS.gcp });
    const [first] = market.interruptionsOf('r5.large@eu-west-1a');
    expect(first.reclaimAt - first.noticeAt).toBe(30_000);
    expect(first.restoredAt - first.reclaimAt).toBe(HOUR);
    expect(market.launchable('r5.large@eu-west-1a', first.noticeAt - 1)).toBe(true);
    expect(market.launchable('r5.large@eu-west-1a', first.reclaimAt + 1)).toBe(false);
    expect(market.launchable('r5.large@eu-west-1a', first.restoredAt)).toBe(true);
  });

  it('says what is missing when an instance type cannot be priced', () => {
    expect(() => new SimulatedSpotMarket({ ...data(), onDemand: new Map() }, { seed: 1, noticeMs: 1, instanceTypes: ['r5.large'] })).toThrow(
      /r5.large has no on-demand price for eu-west-1/,
    );
  });
});

describe('SimulatedCloudProvider', () => {
  it('labels nodes as Karpenter and EKS do, and reclaims them after a 2-minute notice', () => {
    const market = new SimulatedSpotMarket(data(), { seed: 3, noticeMs: TERMINATION_NOTICE_MS.aws });
    const cloud = new SimulatedCloudProvider(market, 'aws');
    const node = cloud.launch({ instanceType: 'r5.large', zone: 'eu-west-1a' }, 'spot', T0)!;
    expect(node.labels).toMatchObject({
      [NODE_LABELS.karpenterCapacityType]: 'spot',
      [NODE_LABELS.eksCapacityType]: 'SPOT',
      [NODE_LABELS.instanceType]: 'r5.large',
      [NODE_LABELS.zone]: 'eu-west-1a',
    });
    expect(capacityTypeFromLabels(node.labels)).toBe('spot');
    const [first] = market.interruptionsOf('r5.large@eu-west-1a');
    const signals = cloud.signalsBetween(T0, first.reclaimAt + 1);
    expect(signals).toContainEqual({ kind: 'termination-notice', node: node.name, at: first.noticeAt, terminatesAt: first.noticeAt + 120_000 });
    expect(signals).toContainEqual({ kind: 'terminated', node: node.name, at: first.reclaimAt });
    expect(cloud.node(node.name)).toBeUndefined();
  });

  it('recognises GKE and AKS spot labels', () => {
    expect(capacityTypeFromLabels({ 'cloud.google.com/gke-spot': 'true' })).toBe('spot');
    expect(capacityTypeFromLabels({ 'kubernetes.azure.com/scalesetpriority': 'spot' })).toBe('spot');
    expect(capacityTypeFromLabels({ 'karpenter.sh/capacity-type': 'on-demand' })).toBe('on-demand');
  });

  it('refuses a market built with another cloud\'s notice', () => {
    const market = new SimulatedSpotMarket(data(), { seed: 3, noticeMs: TERMINATION_NOTICE_MS.aws });
    expect(() => new SimulatedCloudProvider(market, 'gcp')).toThrow(/build it with noticeMs: TERMINATION_NOTICE_MS.gcp/);
  });
});
