import { parseOnDemandPrices, parseSpotAdvisor, parseSpotPriceHistory, parseSpotTrace, regionOfZone } from './marketData';

describe('market data parsers', () => {
  it('reads an AWS price change log by zone name or zone ID, in time order', () => {
    const byName = parseSpotPriceHistory(
      'timestamp_utc,region,availability_zone,instance_type,spot_price_usd_per_hour\n' +
        '2022-01-02T00:00:00Z,eu-west-1,eu-west-1a,r5.large,0.041\n' +
        '2022-01-01T00:00:00Z,eu-west-1,eu-west-1a,r5.large,0.040\n',
      'prices.csv',
    );
    expect(byName.map(c => c.priceUsdPerHour)).toEqual([0.04, 0.041]);
    const byId = parseSpotPriceHistory(
      'timestamp_utc,region,availability_zone_id,instance_type,spot_price_usd_per_hour\n2022-05-31T18:20:41Z,eu-west-3,euw3-az2,g4dn.4xlarge,0.4664\n',
      'snapshot.csv',
    );
    expect(byId[0]).toMatchObject({ zone: 'euw3-az2', instanceType: 'g4dn.4xlarge' });
  });

  it('says which column is missing and which cell is wrong', () => {
    expect(() => parseSpotPriceHistory('timestamp_utc,region\n', 'bad.csv')).toThrow(/bad.csv lacks the column\(s\) .*instance_type/);
    expect(() =>
      parseSpotPriceHistory(
        'timestamp_utc,region,availability_zone,instance_type,spot_price_usd_per_hour\n2022-01-01T00:00:00Z,eu-west-1,eu-west-1a,r5.large,cheap\n',
        'p.csv',
      ),
    ).toThrow(/p.csv line 2: spot_price_usd_per_hour is "cheap", not a number/);
    expect(() =>
      parseSpotPriceHistory(
        'timestamp_utc,region,availability_zone,instance_type,spot_price_usd_per_hour\nyesterday,eu-west-1,eu-west-1a,r5.large,0.04\n',
        'p.csv',
      ),
    ).toThrow(/not an ISO-8601 time/);
  });

  it('reads on-demand prices and advisor bands', () => {
    expect(parseOnDemandPrices('region,instance_type,ondemand_usd_per_hour\nus-east-1,r5.large,0.126\n', 'od.csv').get('r5.large')).toBe(0.126);
    const advisor = parseSpotAdvisor(
      'region,instance_type,interruption_range_index,interruption_frequency_label,savings_vs_ondemand_pct,vcpus,memory_gib,emr_supported\n' +
        'eu-west-1,r5.large,1,5-10%,55,2,16.0,True\n',
      'advisor.csv',
    );
    expect(advisor.get('eu-west-1/r5.large')).toMatchObject({ band: 1, vcpus: 2, memoryGiB: 16 });
    expect(() =>
      parseSpotAdvisor(
        'region,instance_type,interruption_range_index,interruption_frequency_label,savings_vs_ondemand_pct,vcpus,memory_gib\neu-west-1,r5.large,9,x,55,2,16\n',
        'advisor.csv',
      ),
    ).toThrow(/interruption_range_index 9 is not 0..4/);
  });

  it('reads a single-node SkyPilot trace and refuses a multi-node one', () => {
    const meta = { cloud: 'aws' as const, zone: 'us-west-2a', instanceType: 'p3.2xlarge', startAt: 0 };
    const trace = parseSpotTrace('{"metadata":{"gap_seconds":600},"data":[0,0,1,0]}', 't.json', meta);
    expect(trace).toMatchObject({ tickMs: 600_000, unavailable: [false, false, true, false] });
    expect(() => parseSpotTrace('{"metadata":{"gap_seconds":300},"data":[4,3]}', 'multi.json', meta)).toThrow(/only single-node traces/);
    expect(() => parseSpotTrace('not json', 'x.json', meta)).toThrow(/x.json is not JSON/);
  });

  it('finds the region of AWS and GCP zone names', () => {
    expect(regionOfZone('eu-west-1a')).toBe('eu-west-1');
    expect(regionOfZone('us-central1-a')).toBe('us-central1');
  });
});
