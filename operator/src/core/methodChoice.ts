/**
 * The `auto` migration method: which driver moves one member, decided per move
 * from what was measured about it, with the reason in words for the Migration's
 * `status.methodReason`.
 *
 * What each method keeps (measured by `npm run bench -- migration` and the
 * per-method suite, docs/migration.md "What survives a move"):
 * - `checkpoint` keeps the process: connections, subscriptions, blocked clients
 *   and transactions in flight never notice. Its freeze is the whole copy.
 * - `valkey` keeps every acknowledged write with a pause of milliseconds, but
 *   every client reconnects; subscribers lose nothing only if they re-subscribe
 *   within the switch's bounded wait, and blocked clients must re-issue their
 *   command. Needs CLIENT PAUSE WRITE (Redis/Valkey 6.2+).
 * - `volume` keeps what is on disk (writes since the last fsync are lost), in
 *   the volume's zone, and takes the re-attach.
 * - `reschedule` keeps nothing in memory.
 */
import type { MigrationMethod } from '../api/v1alpha1';

/** A Valkey/Redis member as measured (INFO, CLIENT LIST). */
export interface ServerFacts {
  kind: 'valkey' | 'redis';
  /** [major, minor]. */
  version: [number, number];
  /** Clients subscribed to channels or patterns (CLIENT LIST flag `P`). */
  pubsubClients: number;
  /** Clients blocked in BLPOP, BRPOP, XREAD BLOCK... (CLIENT LIST flag `b`). */
  blockedClients: number;
}

/** What `auto` knows about one move. */
export interface MoveFacts {
  /** The member's server, when it is Valkey/Redis. */
  server?: ServerFacts;
  /** Bytes of state that move: the dataset for a hand-off, the process's memory for a checkpoint. */
  stateBytes: number;
  /** Time until the source node goes, if a notice said; undefined when there is no deadline. */
  timeLeftMs?: number;
  /** Bytes per second measured between the nodes. */
  linkBytesPerSec: number;
  /** Whether the pod runs under Ferry's RuntimeClass `ferry` and the target node has it (checkpoint). */
  ferryRuntime: boolean;
  /** Whether the member keeps its state on a zonal volume, and whether the target is in that zone. */
  zonalVolume?: { sameZoneTarget: boolean };
}

/** The chosen driver, or permanent capacity when nothing moves the state in time. */
export interface MethodChoice {
  method: Exclude<MigrationMethod, 'auto'>;
  /** True when the member should go to permanent capacity instead of spot. */
  permanentCapacity: boolean;
  /** Whether the chosen method is expected to finish in the time left. */
  fits: boolean;
  reason: string;
}

/**
 * Rates behind the estimates, measured here (docs/migration.md): a full sync
 * is bound by the servers' RDB encoding and loading, not the link (1 GiB in
 * 4.5-9 s on two shared cores); a checkpoint moves ~1.35x the dataset in pages
 * at the link's rate and reads them back on restore at ~1.3 GB/s.
 */
export const MOVE_RATES = {
  syncBytesPerSec: 130 * 2 ** 20,
  checkpointPageOverhead: 1.35,
  restoreBytesPerSec: 1.3e9,
  /** Starting the target member, agents' calls, the switch. */
  fixedMs: 1_000,
  /** Detach and attach of a zonal volume, and the server loading it. */
  volumeReattachMs: 40_000,
  /** Estimates are multiplied by this before they are compared with the time left. */
  safetyFactor: 1.5,
};

/** The hand-off's `CLIENT PAUSE WRITE` needs this version or newer. */
const MIN_HANDOFF_VERSION: [number, number] = [6, 2];

/** How long a `valkey` hand-off of `facts` takes, estimated (ms). */
export function estimateHandOffMs(facts: MoveFacts): number {
  const rate = Math.min(MOVE_RATES.syncBytesPerSec, facts.linkBytesPerSec);
  return MOVE_RATES.fixedMs + (facts.stateBytes / rate) * 1000;
}

/** How long a `checkpoint` move of `facts` takes, estimated (ms); the member is frozen for nearly all of it. */
export function estimateCheckpointMs(facts: MoveFacts): number {
  const pages = facts.stateBytes * MOVE_RATES.checkpointPageOverhead;
  return (
    MOVE_RATES.fixedMs +
    (pages / facts.linkBytesPerSec) * 1000 +
    (pages / MOVE_RATES.restoreBytesPerSec) * 1000
  );
}

function atLeast(version: [number, number], min: [number, number]): boolean {
  return version[0] > min[0] || (version[0] === min[0] && version[1] >= min[1]);
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Chooses the driver for one move under `auto`; pure, so every choice can be tested. */
export function chooseMethod(facts: MoveFacts): MethodChoice {
  const budget = facts.timeLeftMs;
  const fits = (ms: number) => budget === undefined || ms * MOVE_RATES.safetyFactor <= budget;
  const left = budget === undefined ? 'no deadline' : `${seconds(budget)} left`;
  const size = mib(facts.stateBytes);
  const server = facts.server;
  const name = server ? `${server.kind} ${server.version.join('.')}` : 'a member that is not Valkey/Redis';
  const handOffMs = estimateHandOffMs(facts);
  const checkpointMs = estimateCheckpointMs(facts);
  const canHandOff = server !== undefined && atLeast(server.version, MIN_HANDOFF_VERSION);
  const canCheckpoint = facts.ferryRuntime;
  const handOffFits = canHandOff && fits(handOffMs);
  const checkpointFits = canCheckpoint && fits(checkpointMs);
  const estimates = [
    canHandOff ? `valkey ~${seconds(handOffMs)}` : undefined,
    canCheckpoint ? `checkpoint ~${seconds(checkpointMs)}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const choice = (method: MethodChoice['method'], why: string, ok = true): MethodChoice => ({
    method,
    permanentCapacity: false,
    fits: ok,
    reason: `${method}: ${name}, ${size}, ${left}${estimates ? ` (${estimates})` : ''}; ${why}`,
  });

  const keepsClients = server !== undefined && server.pubsubClients + server.blockedClients > 0;
  if (keepsClients && checkpointFits) {
    return choice(
      'checkpoint',
      `${server!.pubsubClients} subscribed and ${server!.blockedClients} blocked clients keep their connections only with a checkpoint; a hand-off makes them reconnect and re-subscribe`,
    );
  }
  if (handOffFits) {
    const why = keepsClients
      ? `live hand-off; ${server!.pubsubClients} subscribed and ${server!.blockedClients} blocked clients reconnect within the switch (no ferry runtime class${canCheckpoint ? ' fast enough' : ''} for a checkpoint)`
      : 'live hand-off: writes pause for milliseconds, not for the copy';
    return choice('valkey', why);
  }
  if (checkpointFits) {
    let why = 'the process moves with its memory';
    if (canHandOff) why = 'a full sync would not finish in time; the checkpoint copies pages at the link rate';
    else if (server) why = `${name} has no CLIENT PAUSE WRITE (needs 6.2+) for a live hand-off`;
    return choice('checkpoint', why);
  }
  if (facts.zonalVolume?.sameZoneTarget && fits(MOVE_RATES.volumeReattachMs)) {
    return choice('volume', 'the state is on a zonal volume and the target is in its zone; writes since the last fsync are lost');
  }
  if (server === undefined && !canCheckpoint && !facts.zonalVolume) {
    return choice('reschedule', 'no state Ferry can move (no ferry runtime class, no volume): the replacement starts fresh');
  }
  // Nothing moves the state before the node goes: start the replacement where it
  // will not be taken again, and say what is lost.
  const tried = estimates || 'no live method available';
  return {
    method: 'reschedule',
    permanentCapacity: true,
    fits: false,
    reason: `reschedule to permanent capacity: ${name}, ${size}, ${left}; no method moves it in time (${tried}, each x${MOVE_RATES.safetyFactor} for safety); the in-memory state is lost`,
  };
}
