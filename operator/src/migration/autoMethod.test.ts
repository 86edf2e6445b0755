import type { SpotPolicy } from '../api/v1alpha1';
import type { PlannedMove } from '../core/migrationPlanner';
import { autoMethodChooser, AutoMethodFacts } from './autoMethod';
import type { MeasuredServer } from './valkey/serverFacts';
import { countClientFlags } from './valkey/serverFacts';

const NOW = 1_000_000;
const move = (deadlineInMs?: number): PlannedMove => ({
  workload: 'shop/sessions',
  pod: 'sessions-1',
  sourceNode: 'spot-a',
  target: { kind: 'node', node: 'spot-b' } as PlannedMove['target'],
  reason: 'notice',
  deadline: deadlineInMs === undefined ? undefined : NOW + deadlineInMs,
  startAt: NOW,
  finishAt: NOW + 1_000,
  permanentFallback: false,
  meetsDeadline: true,
});
const policy = { metadata: { namespace: 'shop', name: 'sessions' } } as SpotPolicy;
const endpoint = { name: 'sessions-1', node: 'spot-a', host: '10.0.0.5', port: 6379 };

function chooser(server: MeasuredServer | undefined, facts: Partial<AutoMethodFacts> = {}) {
  const measured: string[] = [];
  const choose = autoMethodChooser({
    clock: { now: () => NOW },
    linkBytesPerSec: 1e9,
    measure: async e => {
      measured.push(e.name);
      return server!;
    },
    facts: {
      member: async () => (server ? { endpoint, access: {} } : undefined),
      ferryRuntime: async () => true,
      zonalVolume: async () => undefined,
      ...facts,
    },
  });
  return { choose, measured };
}

const valkey = (pubsubClients: number, blockedClients: number, datasetBytes = 100 * 2 ** 20): MeasuredServer => ({
  kind: 'valkey',
  version: [9, 1],
  pubsubClients,
  blockedClients,
  datasetBytes,
});

describe('autoMethodChooser', () => {
  it('measures the member and hands off a plain cache, checkpoints one with subscribers', async () => {
    const plain = chooser(valkey(0, 0));
    expect(await plain.choose(move(30_000), policy)).toMatchObject({ driver: 'valkey' });
    expect(plain.measured).toEqual(['sessions-1']);
    const events = chooser(valkey(4, 2));
    const choice = await events.choose(move(30_000), policy);
    expect(choice.driver).toBe('checkpoint');
    expect(choice.reason).toContain('4 subscribed and 2 blocked clients');
    expect(choice.reason).toContain('30.0 s left');
  });

  it('hands off members with subscribers when the pod does not run under the ferry runtime class', async () => {
    const { choose } = chooser(valkey(4, 0), { ferryRuntime: async () => false });
    const choice = await choose(move(120_000), policy);
    expect(choice.driver).toBe('valkey');
    expect(choice.reason).toContain('reconnect within the switch');
  });

  it('says when nothing moves the state before a 30 s notice runs out', async () => {
    const { choose } = chooser(valkey(0, 0, 16 * 2 ** 30), { ferryRuntime: async () => false });
    const choice = await choose(move(30_000), policy);
    expect(choice.driver).toBe('reschedule');
    expect(choice.reason).toMatch(/^reschedule to permanent capacity: .*16\.0 GiB.*the in-memory state is lost; the planner's target \(spot-b\) stands/);
  });

  it('moves a member that serves no Valkey/Redis by checkpoint, or by its zonal volume', async () => {
    const { choose, measured } = chooser(undefined, { processBytes: async () => 2 ** 28 });
    expect((await choose(move(), policy)).driver).toBe('checkpoint');
    expect(measured).toEqual([]);
    const volume = chooser(undefined, {
      ferryRuntime: async () => false,
      zonalVolume: async () => ({ sameZoneTarget: true }),
    });
    expect((await volume.choose(move(120_000), policy)).driver).toBe('volume');
  });
});

describe('countClientFlags', () => {
  it('counts subscribed (P) and blocked (b) clients from CLIENT LIST', () => {
    const list = [
      'id=3 addr=10.0.0.9:4000 name= age=5 idle=0 flags=N db=0 sub=0 psub=0 cmd=set',
      'id=4 addr=10.0.0.9:4001 name= age=5 idle=5 flags=P db=0 sub=1 psub=0 cmd=subscribe',
      'id=5 addr=10.0.0.9:4002 name= age=5 idle=5 flags=P db=0 sub=0 psub=1 cmd=psubscribe',
      'id=6 addr=10.0.0.9:4003 name= age=5 idle=2 flags=b db=0 sub=0 psub=0 cmd=blpop',
      '',
    ].join('\n');
    expect(countClientFlags(list)).toEqual({ pubsubClients: 2, blockedClients: 1 });
  });
});
