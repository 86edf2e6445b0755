import { MoveFacts, ServerFacts, chooseMethod, estimateCheckpointMs, estimateHandOffMs, MOVE_RATES } from './methodChoice';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const LINK = 1e9;

const servers: Record<string, ServerFacts | undefined> = {
  'valkey 9.1': { kind: 'valkey', version: [9, 1], pubsubClients: 0, blockedClients: 0 },
  'valkey 8.1': { kind: 'valkey', version: [8, 1], pubsubClients: 0, blockedClients: 0 },
  'redis 7.0': { kind: 'redis', version: [7, 0], pubsubClients: 0, blockedClients: 0 },
  'redis 6.0': { kind: 'redis', version: [6, 0], pubsubClients: 0, blockedClients: 0 },
  'not valkey': undefined,
};
const features = {
  plain: { pubsubClients: 0, blockedClients: 0 },
  pubsub: { pubsubClients: 5, blockedClients: 0 },
  blocked: { pubsubClients: 0, blockedClients: 3 },
};
const sizes = { '100 MiB': 100 * MiB, '1 GiB': GiB, '8 GiB': 8 * GiB };
const timesLeft = { none: undefined, '120 s': 120_000, '30 s': 30_000, '5 s': 5_000 };

type Grid = [string, keyof typeof features, keyof typeof sizes, keyof typeof timesLeft, boolean];
const grid: Grid[] = [];
for (const server of Object.keys(servers)) {
  for (const feature of Object.keys(features) as (keyof typeof features)[]) {
    for (const size of Object.keys(sizes) as (keyof typeof sizes)[]) {
      for (const left of Object.keys(timesLeft) as (keyof typeof timesLeft)[]) {
        for (const runtime of [true, false]) grid.push([server, feature, size, left, runtime]);
      }
    }
  }
}

function factsOf([server, feature, size, left, runtime]: Grid): MoveFacts {
  const s = servers[server];
  return {
    server: s && { ...s, ...features[feature] },
    stateBytes: sizes[size],
    timeLeftMs: timesLeft[left],
    linkBytesPerSec: LINK,
    ferryRuntime: runtime,
  };
}

describe('chooseMethod over (server, features, size, time left, runtime)', () => {
  it.each(grid)('%s, %s, %s, %s left, ferry runtime %s', (...cell) => {
    const facts = factsOf(cell);
    const choice = chooseMethod(facts);
    const [server, feature, , , runtime] = cell;
    const budget = facts.timeLeftMs ?? Infinity;
    const fitsIn = (ms: number) => ms * MOVE_RATES.safetyFactor <= budget;
    const handOff = servers[server] !== undefined && server !== 'redis 6.0';
    const estimates: Record<string, number> = { valkey: estimateHandOffMs(facts), checkpoint: estimateCheckpointMs(facts) };
    const handOffFits = handOff && fitsIn(estimates.valkey);
    const checkpointFits = runtime && fitsIn(estimates.checkpoint);
    const keepsClients = feature !== 'plain' && servers[server] !== undefined;

    expect({
      // Never a method the member cannot use.
      usable: (choice.method !== 'valkey' || handOff) && (choice.method !== 'checkpoint' || runtime),
      // Whatever is chosen fits the time left, or the member goes to permanent capacity and the reason says so.
      fitsOrSaysWhy: choice.fits
        ? fitsIn(estimates[choice.method] ?? 0)
        : choice.permanentCapacity && /^reschedule to permanent capacity: .*no method moves it in time/.test(choice.reason),
      // Subscribers and blocked clients keep their connections when a checkpoint fits.
      clientsKept: !(keepsClients && checkpointFits) || /keep their connections only with a checkpoint/.test(choice.reason),
      // A plain Valkey/Redis member that a hand-off moves in time is handed off.
      plainHandedOff: !(feature === 'plain' && handOffFits) || choice.method === 'valkey',
      // A fitting method is never passed over for permanent capacity.
      noNeedlessFallback: !(handOffFits || checkpointFits) || !choice.permanentCapacity,
      // The reason names what was weighed.
      reasonNamesServer: choice.reason.includes(servers[server]?.kind ?? 'not Valkey/Redis'),
      reasonNamesSize: /MiB|GiB/.test(choice.reason),
    }).toEqual({
      usable: true,
      fitsOrSaysWhy: true,
      clientsKept: true,
      plainHandedOff: true,
      noNeedlessFallback: true,
      reasonNamesServer: true,
      reasonNamesSize: true,
    });
  });

  it('picks something that fits a 30 s notice, or says why it falls back to permanent capacity', () => {
    const base = { linkBytesPerSec: LINK, timeLeftMs: 30_000, ferryRuntime: false, server: servers['valkey 9.1'] };
    expect(chooseMethod({ ...base, stateBytes: GiB })).toMatchObject({ method: 'valkey', fits: true });
    const big = chooseMethod({ ...base, stateBytes: 4 * GiB });
    expect(big).toMatchObject({ method: 'reschedule', permanentCapacity: true, fits: false });
    expect(big.reason).toContain('30.0 s left');
    expect(big.reason).toContain('valkey ~');
    // With the runtime class the checkpoint copies at the link's rate and fits.
    expect(chooseMethod({ ...base, stateBytes: 4 * GiB, ferryRuntime: true })).toMatchObject({ method: 'checkpoint', fits: true });
  });

  it('moves a member on a zonal volume by its volume when nothing live fits and the target is in its zone', () => {
    const facts = { stateBytes: 8 * GiB, linkBytesPerSec: LINK, timeLeftMs: 120_000, ferryRuntime: false, zonalVolume: { sameZoneTarget: true } };
    expect(chooseMethod(facts).method).toBe('volume');
    expect(chooseMethod({ ...facts, zonalVolume: { sameZoneTarget: false } })).toMatchObject({ permanentCapacity: true });
  });

  it('reschedules a stateless member without ceremony', () => {
    expect(chooseMethod({ stateBytes: 0, linkBytesPerSec: LINK, ferryRuntime: false })).toMatchObject({
      method: 'reschedule',
      permanentCapacity: false,
    });
  });

  it('does not hand off a server without CLIENT PAUSE WRITE', () => {
    const choice = chooseMethod({ server: servers['redis 6.0'], stateBytes: 100 * MiB, linkBytesPerSec: LINK, ferryRuntime: true });
    expect(choice.method).toBe('checkpoint');
    expect(choice.reason).toContain('needs 6.2+');
  });
});
