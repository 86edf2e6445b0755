/**
 * What the cluster's pools cost: spot prices from EC2 (`AwsCloudProvider`) when
 * the AWS provider is enabled, on-demand prices from the chart's configuration,
 * and, for what neither knows, the price table the operator ships (`operator/data`,
 * see its README). A pool whose price nobody knows has none here: the status says
 * so instead of inventing one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { CapacityType } from '../../api/v1alpha1';
import { AwsCloudProvider } from '../../cloud/aws/AwsCloudProvider';
import {
  parseCsv,
  parseSpotPriceHistory,
  regionOfZone,
} from '../../cloud/marketData';
import { SHIPPED_DATA_DIR } from '../../cloud/marketFiles';
import { Clock, systemClock } from '../../core/clock';
import type { NodeView, PoolKey } from '../../core/model';

/** Spot prices change a few times a day at most; EC2 is asked this often. */
export const PRICE_REFRESH_INTERVAL_MS = 5 * 60_000;

/** The shipped tables (see operator/data/README.md). */
const SHIPPED_ON_DEMAND_FILE = 'aws_ondemand_prices_us-east-1_2026-07.csv';
const SHIPPED_SPOT_FILE =
  'aws_spot_price_history_eu-west-1_2021-12_2022-06.csv';

/** A price, and where it came from, for the status to say. */
export interface KnownPrice {
  usdPerHour: number;
  source: string;
}

/** A pool of nodes, as priced: one capacity type of one instance type in one zone. */
export interface PricedPoolKey extends PoolKey {
  capacityType: CapacityType;
}

/** The prices the operator knows, by pool. */
export class PriceBook {
  /** `zone/instanceType` → spot price. */
  private readonly spot = new Map<string, KnownPrice>();
  /** `region/instanceType` → on-demand price. */
  private readonly onDemand = new Map<string, KnownPrice>();

  /** A book that answers from `first` and, for what it lacks, from `then`. */
  static layered(first: PriceBook, then: PriceBook): PriceBook {
    const book = new PriceBook();
    for (const source of [then, first]) {
      source.spot.forEach((price, key) => book.spot.set(key, price));
      source.onDemand.forEach((price, key) => book.onDemand.set(key, price));
    }
    return book;
  }

  setSpot(zone: string, instanceType: string, price: KnownPrice): this {
    this.spot.set(`${zone}/${instanceType}`, price);
    return this;
  }

  setOnDemand(region: string, instanceType: string, price: KnownPrice): this {
    this.onDemand.set(`${region}/${instanceType}`, price);
    return this;
  }

  /** USD per node-hour of the pool's own capacity type, if known. */
  priceOf(pool: PricedPoolKey): KnownPrice | undefined {
    return pool.capacityType === 'spot'
      ? this.spot.get(`${pool.zone}/${pool.instanceType}`)
      : this.onDemandPriceOf(pool);
  }

  /** USD per node-hour of the pool's instance type on demand in its region, if known. */
  onDemandPriceOf(pool: PoolKey): KnownPrice | undefined {
    return this.onDemand.get(`${regionOfZone(pool.zone)}/${pool.instanceType}`);
  }
}

/**
 * The shipped table: on-demand prices of its region, and each (zone, type)'s
 * last spot price in its history. Both are old by the time a cluster reads
 * them; the source says how old.
 */
export function shippedPriceBook(dir = SHIPPED_DATA_DIR): PriceBook {
  const book = new PriceBook();
  const onDemandFile = path.join(dir, SHIPPED_ON_DEMAND_FILE);
  const rows = parseCsv(fs.readFileSync(onDemandFile, 'utf8'), onDemandFile, [
    'region',
    'instance_type',
    'ondemand_usd_per_hour',
    'generated_at',
  ]);
  for (const row of rows) {
    const usdPerHour = Number(row.ondemand_usd_per_hour);
    if (!Number.isFinite(usdPerHour)) continue;
    book.setOnDemand(row.region, row.instance_type, {
      usdPerHour,
      source: `shipped on-demand price table (${row.generated_at.slice(
        0,
        10,
      )})`,
    });
  }
  const spotFile = path.join(dir, SHIPPED_SPOT_FILE);
  // Sorted by time: the last change of a pool is the price it had at the end.
  for (const change of parseSpotPriceHistory(
    fs.readFileSync(spotFile, 'utf8'),
    spotFile,
  )) {
    book.setSpot(change.zone, change.instanceType, {
      usdPerHour: change.priceUsdPerHour,
      source: `shipped spot price history (last change ${new Date(change.at)
        .toISOString()
        .slice(0, 10)})`,
    });
  }
  return book;
}

/** Where the AWS provider's prices come from. */
export interface AwsPricing {
  ec2: EC2Client;
  region: string;
  /** On-demand USD per hour by instance type in the region (EC2's API has none). */
  onDemandPricesUsdPerHour?: Record<string, number>;
}

/**
 * The prices the operator works with, refreshed every `intervalMs` rather than
 * per decision: EC2's spot prices for the instance types the cluster's nodes
 * have, over the configured and shipped prices. A refresh that fails keeps the
 * prices of the last one that worked, and says why in `lastError`.
 */
export class PoolPriceFeed {
  private fallback?: PriceBook;
  private fromAws = new PriceBook();
  private book?: PriceBook;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  /** Why the last refresh from AWS failed, until one succeeds. */
  lastError?: string;

  constructor(
    private readonly options: {
      aws?: AwsPricing;
      /** Prices for what AWS does not say; the shipped table when omitted. */
      fallback?: () => PriceBook;
      intervalMs?: number;
      clock?: Clock;
      onError?: (error: unknown) => void;
    },
  ) {}

  /** The prices now; the fallback table alone until the first refresh. */
  current(): PriceBook {
    this.book ??= this.fallbackBook();
    return this.book;
  }

  /**
   * Refreshes now and then on the interval; resolves after the first refresh.
   * The instance types of `nodes` (the cluster's) are what EC2 is asked about.
   */
  async start(nodes: () => NodeView[]): Promise<void> {
    this.timer ??= setInterval(() => {
      this.refresh(nodes).catch(() => {});
    }, this.options.intervalMs ?? PRICE_REFRESH_INTERVAL_MS);
    this.timer.unref?.();
    await this.refresh(nodes);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Asks EC2 for the spot prices of the instance types of `nodes` now. */
  refresh(nodes: () => NodeView[]): Promise<void> {
    this.refreshing ??= this.refreshOnce(nodes()).finally(
      () => (this.refreshing = undefined),
    );
    return this.refreshing;
  }

  private async refreshOnce(nodes: NodeView[]): Promise<void> {
    const aws = this.options.aws;
    if (!aws) {
      this.book = this.fallbackBook();
      return;
    }
    const book = new PriceBook();
    for (const [instanceType, usdPerHour] of Object.entries(
      aws.onDemandPricesUsdPerHour ?? {},
    )) {
      book.setOnDemand(aws.region, instanceType, {
        usdPerHour,
        source: 'providers.aws.onDemandPricesUsdPerHour',
      });
    }
    const instanceTypes = [
      ...new Set(
        nodes
          .filter(
            node =>
              node.capacityType === 'spot' &&
              regionOfZone(node.zone) === aws.region,
          )
          .map(node => node.instanceType),
      ),
    ].sort();
    const at = (this.options.clock ?? systemClock).now();
    try {
      if (instanceTypes.length > 0) {
        const provider = new AwsCloudProvider({
          ec2: aws.ec2,
          region: aws.region,
          instanceTypes,
          onDemandPrices: new Map(),
        });
        for (const price of await provider.spotPrices(at)) {
          book.setSpot(price.zone, price.instanceType, {
            usdPerHour: price.usdPerHour,
            // One source for the region: the status names it, not each pool's change time.
            source: `EC2 spot price history (${aws.region})`,
          });
        }
      }
      this.fromAws = book;
      this.lastError = undefined;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      this.options.onError?.(error);
      // The configured on-demand prices hold whatever EC2 says.
      for (const [instanceType, price] of Object.entries(
        aws.onDemandPricesUsdPerHour ?? {},
      )) {
        this.fromAws.setOnDemand(aws.region, instanceType, {
          usdPerHour: price,
          source: 'providers.aws.onDemandPricesUsdPerHour',
        });
      }
    }
    this.book = PriceBook.layered(this.fromAws, this.fallbackBook());
  }

  private fallbackBook(): PriceBook {
    if (!this.fallback) {
      try {
        this.fallback = (this.options.fallback ?? shippedPriceBook)();
      } catch (error) {
        // An image without the table prices what AWS prices; status names the rest unknown.
        this.options.onError?.(
          new Error(
            `no shipped price table (${
              error instanceof Error ? error.message : error
            }); copy operator/data beside the bundle (see chart README)`,
          ),
        );
        this.fallback = new PriceBook();
      }
    }
    return this.fallback;
  }
}
