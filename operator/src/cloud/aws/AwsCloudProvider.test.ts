import {
  DescribeInstanceTypesCommand,
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  EC2ServiceException,
  GetSpotPlacementScoresCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsCloudProvider, EC2_ACTIONS } from './AwsCloudProvider';
import { AwsCredentialsError, AwsPermissionError } from './awsErrors';

const ec2Mock = mockClient(EC2Client);
const AT = Date.parse('2026-07-20T12:00:00Z');

function provider(instanceTypes = ['m5.large', 'c5.xlarge']) {
  return new AwsCloudProvider({
    ec2: new EC2Client({ region: 'us-east-1' }),
    region: 'us-east-1',
    instanceTypes,
    onDemandPrices: new Map([
      ['m5.large', 0.096],
      ['c5.xlarge', 0.17],
    ]),
  });
}

function shapes() {
  ec2Mock.on(DescribeInstanceTypesCommand).resolves({
    InstanceTypes: [
      {
        InstanceType: 'm5.large',
        VCpuInfo: { DefaultVCpus: 2 },
        MemoryInfo: { SizeInMiB: 8192 },
      },
      {
        InstanceType: 'c5.xlarge',
        VCpuInfo: { DefaultVCpus: 4 },
        MemoryInfo: { SizeInMiB: 8192 },
      },
    ],
  });
}

beforeEach(() => ec2Mock.reset());

describe('AwsCloudProvider', () => {
  it('follows every page of the spot price history and keeps the price in effect per pool', async () => {
    ec2Mock
      .on(DescribeSpotPriceHistoryCommand)
      .resolvesOnce({
        SpotPriceHistory: [
          {
            InstanceType: 'm5.large',
            AvailabilityZone: 'us-east-1a',
            SpotPrice: '0.035000',
            Timestamp: new Date(AT - 3_600_000),
          },
          {
            InstanceType: 'm5.large',
            AvailabilityZone: 'us-east-1b',
            SpotPrice: '0.031000',
            Timestamp: new Date(AT - 7_200_000),
          },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        SpotPriceHistory: [
          // A later change to the same pool supersedes the earlier one.
          {
            InstanceType: 'm5.large',
            AvailabilityZone: 'us-east-1a',
            SpotPrice: '0.038000',
            Timestamp: new Date(AT - 60_000),
          },
          {
            InstanceType: 'c5.xlarge',
            AvailabilityZone: 'us-east-1a',
            SpotPrice: '0.069000',
            Timestamp: new Date(AT - 60_000),
          },
        ],
        NextToken: '',
      });
    const prices = await provider().spotPrices(AT);
    const calls = ec2Mock.commandCalls(DescribeSpotPriceHistoryCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0].args[0].input).toMatchObject({
      InstanceTypes: ['m5.large', 'c5.xlarge'],
      ProductDescriptions: ['Linux/UNIX', 'Linux/UNIX (Amazon VPC)'],
      StartTime: new Date(AT),
      EndTime: new Date(AT),
    });
    expect(calls[0].args[0].input.NextToken).toBeUndefined();
    expect(calls[1].args[0].input.NextToken).toBe('page-2');
    expect(
      prices.sort((a, b) =>
        `${a.instanceType}${a.zone}`.localeCompare(
          `${b.instanceType}${b.zone}`,
        ),
      ),
    ).toEqual([
      {
        instanceType: 'c5.xlarge',
        zone: 'us-east-1a',
        usdPerHour: 0.069,
        since: AT - 60_000,
      },
      {
        instanceType: 'm5.large',
        zone: 'us-east-1a',
        usdPerHour: 0.038,
        since: AT - 60_000,
      },
      {
        instanceType: 'm5.large',
        zone: 'us-east-1b',
        usdPerHour: 0.031,
        since: AT - 7_200_000,
      },
    ]);
  });

  it('maps prices and instance shapes to the spot pools of the core', async () => {
    shapes();
    ec2Mock.on(DescribeSpotPriceHistoryCommand).resolves({
      SpotPriceHistory: [
        {
          InstanceType: 'c5.xlarge',
          AvailabilityZone: 'us-east-1b',
          SpotPrice: '0.0690',
          Timestamp: new Date(AT - 1),
        },
        {
          InstanceType: 'm5.large',
          AvailabilityZone: 'us-east-1a',
          SpotPrice: '0.0350',
          Timestamp: new Date(AT - 1),
        },
        // A type without a known on-demand price cannot be compared, so it is left out.
        {
          InstanceType: 'r5.large',
          AvailabilityZone: 'us-east-1a',
          SpotPrice: '0.04',
          Timestamp: new Date(AT - 1),
        },
      ],
    });
    const pools = await provider().listSpotPools(AT);
    expect(pools).toEqual([
      {
        instanceType: 'c5.xlarge',
        zone: 'us-east-1b',
        region: 'us-east-1',
        spotPriceUsdPerHour: 0.069,
        onDemandPriceUsdPerHour: 0.17,
        allocatable: { cpuMillis: 3600, memoryMiB: 7372 },
        launchable: true,
      },
      {
        instanceType: 'm5.large',
        zone: 'us-east-1a',
        region: 'us-east-1',
        spotPriceUsdPerHour: 0.035,
        onDemandPriceUsdPerHour: 0.096,
        allocatable: { cpuMillis: 1800, memoryMiB: 7372 },
        launchable: true,
      },
    ]);
  });

  it('asks for instance types at most 100 at a time, follows pages, and caches the shapes', async () => {
    const many = Array.from({ length: 150 }, (_, i) => `m5.type${i}`);
    ec2Mock.on(DescribeInstanceTypesCommand).callsFake(input => {
      const names: string[] = input.InstanceTypes;
      // Each request's types come back in two pages.
      const half = Math.ceil(names.length / 2);
      const page = input.NextToken ? names.slice(half) : names.slice(0, half);
      return {
        InstanceTypes: page.map(name => ({
          InstanceType: name,
          VCpuInfo: { DefaultVCpus: 2 },
          MemoryInfo: { SizeInMiB: 4096 },
        })),
        NextToken: input.NextToken ? undefined : 'more',
      };
    });
    const aws = provider(many);
    const found = await aws.instanceShapes();
    expect(found.size).toBe(150);
    expect(found.get('m5.type149')).toEqual({
      instanceType: 'm5.type149',
      vcpus: 2,
      memoryMiB: 4096,
    });
    const calls = ec2Mock.commandCalls(DescribeInstanceTypesCommand);
    expect(calls.map(c => c.args[0].input.InstanceTypes?.length)).toEqual([
      100, 100, 50, 50,
    ]);
    await aws.instanceShapes();
    expect(ec2Mock.commandCalls(DescribeInstanceTypesCommand)).toHaveLength(4);
  });

  it('reads spot placement scores per zone across pages', async () => {
    ec2Mock
      .on(GetSpotPlacementScoresCommand)
      .resolvesOnce({
        SpotPlacementScores: [
          { Region: 'us-east-1', AvailabilityZoneId: 'use1-az1', Score: 9 },
        ],
        NextToken: 'next',
      })
      .resolvesOnce({
        SpotPlacementScores: [
          { Region: 'us-east-1', AvailabilityZoneId: 'use1-az2', Score: 3 },
        ],
      });
    const scores = await provider().spotPlacementScores({
      instanceTypes: ['m5.large'],
      targetCapacity: 3,
      perZone: true,
    });
    expect(scores).toEqual([
      { region: 'us-east-1', availabilityZoneId: 'use1-az1', score: 9 },
      { region: 'us-east-1', availabilityZoneId: 'use1-az2', score: 3 },
    ]);
    expect(
      ec2Mock.commandCalls(GetSpotPlacementScoresCommand)[0].args[0].input,
    ).toMatchObject({
      InstanceTypes: ['m5.large'],
      TargetCapacity: 3,
      SingleAvailabilityZone: true,
      RegionNames: ['us-east-1'],
    });
  });

  it('names the IAM action the role lacks when EC2 refuses a call', async () => {
    shapes();
    ec2Mock.on(DescribeSpotPriceHistoryCommand).rejects(
      new EC2ServiceException({
        name: 'UnauthorizedOperation',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'You are not authorized to perform this operation.',
      }),
    );
    const failure = provider().listSpotPools(AT);
    await expect(failure).rejects.toBeInstanceOf(AwsPermissionError);
    await expect(failure).rejects.toMatchObject({
      action: EC2_ACTIONS.spotPriceHistory,
    });
    await expect(failure).rejects.toThrow(
      /needs "ec2:DescribeSpotPriceHistory" allowed/,
    );
  });

  it('says so when there are no credentials at all', async () => {
    const noCredentials = Object.assign(
      new Error('Could not load credentials from any providers'),
      {
        name: 'CredentialsProviderError',
      },
    );
    ec2Mock.on(GetSpotPlacementScoresCommand).rejects(noCredentials);
    const failure = provider().spotPlacementScores({
      instanceTypes: ['m5.large'],
      targetCapacity: 1,
    });
    await expect(failure).rejects.toBeInstanceOf(AwsCredentialsError);
    await expect(failure).rejects.toThrow(
      /no usable AWS credentials for ec2:GetSpotPlacementScores/,
    );
  });

  it('passes other failures through unchanged', async () => {
    const throttled = new EC2ServiceException({
      name: 'RequestLimitExceeded',
      $fault: 'client',
      $metadata: {},
      message: 'Request limit exceeded.',
    });
    ec2Mock.on(DescribeInstanceTypesCommand).rejects(throttled);
    await expect(provider().instanceShapes()).rejects.toBe(throttled);
  });
});
