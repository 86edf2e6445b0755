import {
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  EC2ServiceException,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import type { NodeView } from '../../core/model';
import { poolsOfNodes, UNPRICED_POOL_USD_PER_HOUR } from './poolsOfNodes';
import { PoolPriceFeed, PriceBook, shippedPriceBook } from './PoolPriceFeed';

const ec2Mock = mockClient(EC2Client);
const AT = Date.parse('2026-11-22T12:00:00Z');

beforeEach(() => ec2Mock.reset());

function node(
  name: string,
  instanceType: string,
  zone: string,
  capacityType: 'spot' | 'on-demand',
): NodeView {
  const allocatable = { cpuMillis: 2000, memoryMiB: 8192 };
  return {
    name,
    instanceType,
    zone,
    capacityType,
    allocatable,
    free: allocatable,
  };
}

const NODES = [
  node('spot-a', 'm5.large', 'eu-west-1a', 'spot'),
  node('spot-b', 'c5.xlarge', 'eu-west-1b', 'spot'),
  node('od-a', 'm5.large', 'eu-west-1a', 'on-demand'),
  node('elsewhere', 'm5.large', 'us-west-2a', 'spot'),
];

function feed(onDemandPricesUsdPerHour = { 'm5.large': 0.107 }) {
  return new PoolPriceFeed({
    aws: {
      ec2: new EC2Client({ region: 'eu-west-1' }),
      region: 'eu-west-1',
      onDemandPricesUsdPerHour,
    },
    fallback: () => new PriceBook(),
    clock: { now: () => AT },
  });
}

describe('shippedPriceBook', () => {
  it('knows on-demand prices of its region and the last spot price of each pool in its history', () => {
    const book = shippedPriceBook();
    expect(
      book.priceOf({
        instanceType: 'm5.large',
        zone: 'us-east-1a',
        capacityType: 'on-demand',
      }),
    ).toEqual({
      usdPerHour: 0.096,
      source: 'shipped on-demand price table (2026-07-20)',
    });
    // The on-demand table is us-east-1's: other regions' prices differ, so it says nothing.
    expect(
      book.onDemandPriceOf({ instanceType: 'm5.large', zone: 'eu-west-1a' }),
    ).toBeUndefined();
    expect(
      book.priceOf({
        instanceType: 'r5.large',
        zone: 'eu-west-1a',
        capacityType: 'spot',
      }),
    ).toEqual({
      usdPerHour: 0.045,
      source: 'shipped spot price history (last change 2022-06-07)',
    });
    expect(
      book.priceOf({
        instanceType: 'c5.xlarge',
        zone: 'us-east-1a',
        capacityType: 'spot',
      }),
    ).toBeUndefined();
  });
});

describe('PoolPriceFeed with the AWS provider', () => {
  it("asks EC2 for the spot prices of the region's spot instance types, once per refresh", async () => {
    ec2Mock.on(DescribeSpotPriceHistoryCommand).resolves({
      SpotPriceHistory: [
        {
          InstanceType: 'm5.large',
          AvailabilityZone: 'eu-west-1a',
          SpotPrice: '0.038000',
          Timestamp: new Date(AT - 60_000),
        },
      ],
    });
    const prices = feed();
    await prices.refresh(() => NODES);
    const calls = ec2Mock.commandCalls(DescribeSpotPriceHistoryCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input.InstanceTypes).toEqual([
      'c5.xlarge',
      'm5.large',
    ]);
    const book = prices.current();
    // Reading prices asks EC2 nothing: only a refresh does.
    book.priceOf(NODES[0]);
    expect(ec2Mock.commandCalls(DescribeSpotPriceHistoryCommand)).toHaveLength(
      1,
    );
    expect(book.priceOf(NODES[0])?.usdPerHour).toBe(0.038);
    expect(book.priceOf(NODES[0])?.source).toContain('EC2 spot price history');
    expect(book.priceOf(NODES[2])).toEqual({
      usdPerHour: 0.107,
      source: 'providers.aws.onDemandPricesUsdPerHour',
    });
    expect(book.priceOf(NODES[1])).toBeUndefined();

    const pools = poolsOfNodes(NODES, book);
    const pool = (type: string, zone: string, capacity: string) =>
      pools.find(
        p =>
          p.instanceType === type &&
          p.zone === zone &&
          p.capacityType === capacity,
      );
    expect(pool('m5.large', 'eu-west-1a', 'spot')).toMatchObject({
      priceUsdPerHour: 0.038,
      onDemandPriceUsdPerHour: 0.107,
    });
    expect(pool('c5.xlarge', 'eu-west-1b', 'spot')?.priceUsdPerHour).toBe(
      UNPRICED_POOL_USD_PER_HOUR,
    );
  });

  it('keeps the last prices EC2 gave when a refresh fails, and says why', async () => {
    ec2Mock
      .on(DescribeSpotPriceHistoryCommand)
      .resolvesOnce({
        SpotPriceHistory: [
          {
            InstanceType: 'm5.large',
            AvailabilityZone: 'eu-west-1a',
            SpotPrice: '0.038000',
            Timestamp: new Date(AT - 60_000),
          },
        ],
      })
      .rejectsOnce(
        new EC2ServiceException({
          name: 'UnauthorizedOperation',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
          message: 'not authorized',
        }),
      );
    const prices = feed();
    await prices.refresh(() => NODES);
    await prices.refresh(() => NODES);
    expect(prices.lastError).toContain('ec2:DescribeSpotPriceHistory');
    expect(prices.current().priceOf(NODES[0])?.usdPerHour).toBe(0.038);
    expect(prices.current().priceOf(NODES[2])?.usdPerHour).toBe(0.107);
  });

  it('falls back to the table for what EC2 and the configuration do not price', async () => {
    ec2Mock.on(DescribeSpotPriceHistoryCommand).resolves({});
    const prices = new PoolPriceFeed({
      aws: { ec2: new EC2Client({ region: 'eu-west-1' }), region: 'eu-west-1' },
      fallback: () =>
        new PriceBook().setSpot('eu-west-1b', 'c5.xlarge', {
          usdPerHour: 0.07,
          source: 'table',
        }),
    });
    await prices.refresh(() => NODES);
    expect(prices.current().priceOf(NODES[1])?.source).toBe('table');
  });

  it('prices from the table alone, with no EC2 calls, when AWS is not enabled', async () => {
    const prices = new PoolPriceFeed({});
    await prices.refresh(() => NODES);
    expect(ec2Mock.calls()).toHaveLength(0);
    expect(
      prices.current().priceOf({
        instanceType: 'r5.large',
        zone: 'eu-west-1a',
        capacityType: 'spot',
      })?.usdPerHour,
    ).toBe(0.045);
  });
});
