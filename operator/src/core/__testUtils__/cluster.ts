/** Builders of small clusters for the core's tests (not part of the operator). */
import fc from 'fast-check';
import type { CapacityType } from '../../api/v1alpha1';
import type { PlacementTarget } from '../capacity';
import { CapacityPool, MemberView, NodeView, Resources, WorkloadView } from '../model';

export const NODE_SIZE: Resources = { cpuMillis: 4000, memoryMiB: 16384 };
export const MEMBER_REQUESTS: Resources = { cpuMillis: 1000, memoryMiB: 4096 };

export function pool(
  instanceType: string,
  zone: string,
  capacityType: CapacityType,
  price: number,
  extra: Partial<CapacityPool> = {},
): CapacityPool {
  return {
    instanceType,
    zone,
    capacityType,
    priceUsdPerHour: price,
    onDemandPriceUsdPerHour: capacityType === 'spot' ? price * 3 : price,
    interruptionRisk: 0,
    allocatable: NODE_SIZE,
    launchable: true,
    ...extra,
  };
}

export function node(name: string, p: { instanceType: string; zone: string }, capacityType: CapacityType, used = 0): NodeView {
  return {
    name,
    instanceType: p.instanceType,
    zone: p.zone,
    capacityType,
    allocatable: NODE_SIZE,
    free: { cpuMillis: NODE_SIZE.cpuMillis - used * MEMBER_REQUESTS.cpuMillis, memoryMiB: NODE_SIZE.memoryMiB - used * MEMBER_REQUESTS.memoryMiB },
  };
}

export function workload(id: string, replicas: number, overrides: Partial<WorkloadView> = {}, stateBytes = 1e9): WorkloadView {
  return {
    id,
    permanentRatio: 0.3,
    maxConcurrentMoves: 1,
    members: Array.from({ length: replicas }, (_, i): MemberView => ({
      pod: `${id}-${i}`,
      requests: MEMBER_REQUESTS,
      ready: true,
      stateBytes,
    })),
    ...overrides,
  };
}

/** A market of spot pools (types × zones) and one permanent pool per zone. */
export const arbitraryMarket = fc
  .record({
    types: fc.integer({ min: 1, max: 4 }),
    zones: fc.integer({ min: 1, max: 4 }),
    prices: fc.array(fc.double({ min: 0.01, max: 0.2, noNaN: true }), { minLength: 16, maxLength: 16 }),
    risks: fc.array(fc.double({ min: 0, max: 0.5, noNaN: true }), { minLength: 16, maxLength: 16 }),
    launchable: fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
  })
  .map(({ types, zones, prices, risks, launchable }) => {
    const pools: CapacityPool[] = [];
    for (let t = 0; t < types; t++) {
      for (let z = 0; z < zones; z++) {
        const i = t * 4 + z;
        pools.push(pool(`t${t}.large`, `zone-${z}`, 'spot', prices[i], { interruptionRisk: risks[i], launchable: launchable[i] }));
      }
    }
    for (let z = 0; z < zones; z++) pools.push(pool('od.large', `zone-${z}`, 'on-demand', 0.3));
    return pools;
  });

/** A cluster where the last plan's targets have been carried out: new nodes launched, members moved. */
export class ClusterFixture {
  readonly nodes = new Map<string, NodeView>();
  private serial = 0;

  constructor(nodes: NodeView[] = []) {
    for (const n of nodes) this.nodes.set(n.name, n);
  }

  launch(target: PlacementTarget): string {
    if (target.kind === 'node') return target.node;
    const name = `new-${target.capacityType}-${++this.serial}-${target.pool.instanceType}-${target.pool.zone}`;
    this.nodes.set(name, { ...node(name, target.pool, target.capacityType) });
    return name;
  }

  move(member: MemberView, target: PlacementTarget): void {
    const to = this.launch(target);
    if (member.node) this.adjust(member.node, member.requests, +1);
    this.adjust(to, member.requests, -1);
    member.node = to;
  }

  private adjust(nodeName: string, r: Resources, sign: number): void {
    const n = this.nodes.get(nodeName);
    if (!n) return;
    n.free = { cpuMillis: n.free.cpuMillis + sign * r.cpuMillis, memoryMiB: n.free.memoryMiB + sign * r.memoryMiB };
  }
}
