/**
 * The `aws` cloud: what EC2 says about its spot market, read through
 * `@aws-sdk/client-ec2` — the spot price in effect per (instance type, zone)
 * (DescribeSpotPriceHistory), each type's vCPUs and memory
 * (DescribeInstanceTypes) and how likely a spot request is to succeed
 * (GetSpotPlacementScores). Nodes themselves are launched and removed by
 * Karpenter or the node groups, and interruptions arrive through EventBridge and
 * SQS (`SqsInterruptionQueue`), so the provider is a `CloudProvider` only: it neither launches nor polls
 * (it is no `NodeProvisioner` and no `CloudSignalSource`).
 */
import {
  DescribeInstanceTypesCommand,
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  GetSpotPlacementScoresCommand,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import type { PoolKey, Resources } from '../../core/model';
import {
  CloudProvider,
  SpotPoolOffer,
  TERMINATION_NOTICE_MS,
} from '../CloudProvider';
import { ALLOCATABLE_SHARE } from '../SimulatedCloudProvider';
import { callAws } from './awsErrors';

/**
 * The spot products Ferry prices: Linux nodes. EC2 reports a pool's price under
 * either name (the "(Amazon VPC)" one dates from EC2-Classic), so ask for both,
 * as Karpenter does, and keep the latest change per pool.
 */
export const LINUX_PRODUCT_DESCRIPTIONS = [
  'Linux/UNIX',
  'Linux/UNIX (Amazon VPC)',
];
/** DescribeInstanceTypes takes at most this many names per request. */
const INSTANCE_TYPES_PER_REQUEST = 100;
/** The largest page DescribeSpotPriceHistory returns: fewest round trips. */
const SPOT_PRICE_PAGE_SIZE = 1000;
/** Instance shapes change with new generations, not minute to minute. */
export const INSTANCE_SHAPE_TTL_MS = 24 * 60 * 60 * 1000;

/** The IAM actions the provider calls, as a policy names them. */
export const EC2_ACTIONS = {
  spotPriceHistory: 'ec2:DescribeSpotPriceHistory',
  instanceTypes: 'ec2:DescribeInstanceTypes',
  placementScores: 'ec2:GetSpotPlacementScores',
} as const;

/** A spot price as EC2 reported it. */
export interface SpotPrice extends PoolKey {
  usdPerHour: number;
  /** When this price took effect (ms since epoch). */
  since: number;
}

/** What one instance type offers. */
export interface InstanceShape {
  instanceType: string;
  vcpus: number;
  memoryMiB: number;
}

/** How likely a spot request of this size is to succeed, 1 (unlikely) to 10 (very likely). */
export interface SpotPlacementScore {
  region: string;
  /** The zone's ID (`use1-az1`), for scores per zone; absent for a regional score. */
  availabilityZoneId?: string;
  score: number;
}

/** What to ask GetSpotPlacementScores. */
export interface SpotPlacementScoreRequest {
  instanceTypes: string[];
  /** Nodes wanted. */
  targetCapacity: number;
  /** Score zones rather than whole regions. */
  perZone?: boolean;
  regions?: string[];
}

/** Everything the AWS provider is made of. */
export interface AwsCloudProviderOptions {
  ec2: EC2Client;
  region: string;
  /** The instance types the operator may place onto. */
  instanceTypes: string[];
  /**
   * On-demand USD per hour by instance type. EC2's API has no on-demand prices
   * (the Price List API does, in another region and format), so they come from
   * configuration or the shipped price table; a type without one is left out.
   */
  onDemandPrices: ReadonlyMap<string, number>;
  productDescriptions?: string[];
  /** Now, for the shape cache. */
  now?: () => number;
}

/** The AWS cloud as the operator uses it. */
export class AwsCloudProvider implements CloudProvider {
  readonly cloud = 'aws' as const;
  readonly terminationNoticeMs = TERMINATION_NOTICE_MS.aws;
  private shapes?: { at: number; byType: Map<string, InstanceShape> };

  constructor(private readonly options: AwsCloudProviderOptions) {}

  /** The spot price in effect at `at` in every (type, zone) of the region, following every page. */
  async spotPrices(at: number): Promise<SpotPrice[]> {
    const latest = new Map<string, SpotPrice>();
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await callAws(EC2_ACTIONS.spotPriceHistory, () =>
        this.options.ec2.send(
          new DescribeSpotPriceHistoryCommand({
            InstanceTypes: this.options.instanceTypes as _InstanceType[],
            ProductDescriptions:
              this.options.productDescriptions ?? LINUX_PRODUCT_DESCRIPTIONS,
            // Equal start and end: EC2 answers with the last change before it, the price in effect.
            StartTime: new Date(at),
            EndTime: new Date(at),
            MaxResults: SPOT_PRICE_PAGE_SIZE,
            NextToken: token,
          }),
        ),
      );
      for (const entry of page.SpotPriceHistory ?? []) {
        if (
          !entry.InstanceType ||
          !entry.AvailabilityZone ||
          entry.SpotPrice === undefined
        )
          continue;
        const usdPerHour = Number(entry.SpotPrice);
        const since = entry.Timestamp?.getTime() ?? at;
        if (!Number.isFinite(usdPerHour) || since > at) continue;
        const key = `${entry.InstanceType}@${entry.AvailabilityZone}`;
        const known = latest.get(key);
        if (!known || known.since < since) {
          latest.set(key, {
            instanceType: entry.InstanceType,
            zone: entry.AvailabilityZone,
            usdPerHour,
            since,
          });
        }
      }
      // An empty string ends the history as surely as no token does.
      nextToken = page.NextToken || undefined;
    } while (nextToken);
    return [...latest.values()];
  }

  /** vCPUs and memory of the configured instance types, cached for a day. */
  async instanceShapes(): Promise<Map<string, InstanceShape>> {
    const now = this.options.now?.() ?? Date.now();
    if (this.shapes && now - this.shapes.at < INSTANCE_SHAPE_TTL_MS)
      return this.shapes.byType;
    const byType = new Map<string, InstanceShape>();
    const wanted = this.options.instanceTypes;
    for (let i = 0; i < wanted.length; i += INSTANCE_TYPES_PER_REQUEST) {
      let nextToken: string | undefined;
      do {
        const token = nextToken;
        const page = await callAws(EC2_ACTIONS.instanceTypes, () =>
          this.options.ec2.send(
            new DescribeInstanceTypesCommand({
              InstanceTypes: wanted.slice(
                i,
                i + INSTANCE_TYPES_PER_REQUEST,
              ) as _InstanceType[],
              NextToken: token,
            }),
          ),
        );
        for (const info of page.InstanceTypes ?? []) {
          const vcpus = info.VCpuInfo?.DefaultVCpus;
          const memoryMiB = info.MemoryInfo?.SizeInMiB;
          if (
            !info.InstanceType ||
            vcpus === undefined ||
            memoryMiB === undefined
          )
            continue;
          byType.set(info.InstanceType, {
            instanceType: info.InstanceType,
            vcpus,
            memoryMiB,
          });
        }
        nextToken = page.NextToken || undefined;
      } while (nextToken);
    }
    this.shapes = { at: now, byType };
    return byType;
  }

  /** Placement scores for a request, every page of them. */
  async spotPlacementScores(
    request: SpotPlacementScoreRequest,
  ): Promise<SpotPlacementScore[]> {
    const scores: SpotPlacementScore[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const page = await callAws(EC2_ACTIONS.placementScores, () =>
        this.options.ec2.send(
          new GetSpotPlacementScoresCommand({
            InstanceTypes: request.instanceTypes,
            TargetCapacity: request.targetCapacity,
            TargetCapacityUnitType: 'units',
            SingleAvailabilityZone: request.perZone ?? false,
            RegionNames: request.regions ?? [this.options.region],
            NextToken: token,
          }),
        ),
      );
      for (const entry of page.SpotPlacementScores ?? []) {
        if (!entry.Region || entry.Score === undefined) continue;
        scores.push({
          region: entry.Region,
          availabilityZoneId: entry.AvailabilityZoneId,
          score: entry.Score,
        });
      }
      nextToken = page.NextToken || undefined;
    } while (nextToken);
    return scores;
  }

  /** What one node of a type offers to pods, after the kubelet's and system's share. */
  allocatableOf(shape: InstanceShape): Resources {
    return {
      cpuMillis: Math.floor(shape.vcpus * 1000 * ALLOCATABLE_SHARE),
      memoryMiB: Math.floor(shape.memoryMiB * ALLOCATABLE_SHARE),
    };
  }

  async listSpotPools(at: number): Promise<SpotPoolOffer[]> {
    const [prices, shapes] = await Promise.all([
      this.spotPrices(at),
      this.instanceShapes(),
    ]);
    const offers: SpotPoolOffer[] = [];
    for (const price of prices) {
      const shape = shapes.get(price.instanceType);
      const onDemand = this.options.onDemandPrices.get(price.instanceType);
      if (!shape || onDemand === undefined) continue;
      offers.push({
        instanceType: price.instanceType,
        zone: price.zone,
        region: this.options.region,
        spotPriceUsdPerHour: price.usdPerHour,
        onDemandPriceUsdPerHour: onDemand,
        allocatable: this.allocatableOf(shape),
        // EC2 only says so when a launch fails; the provisioner finds out first.
        launchable: true,
      });
    }
    return offers.sort((a, b) =>
      a.instanceType === b.instanceType
        ? a.zone.localeCompare(b.zone)
        : a.instanceType.localeCompare(b.instanceType),
    );
  }
}
