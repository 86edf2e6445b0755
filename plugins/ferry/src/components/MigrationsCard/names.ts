import type {
  MigrationOutcome,
  MigrationReason,
  MigrationRecord,
} from '@ferry/plugin-ferry-common';

/** Why a migration started, in words. */
export const REASON_NAMES: Record<MigrationReason, string> = {
  notice: 'Termination notice',
  drain: 'Node drained',
  recommendation: 'Rebalance recommendation',
  prediction: 'Predicted interruption',
  policy: 'Policy change',
  rebalance: 'Floor or spread restored',
};

/** The drivers, in words. */
export const DRIVER_NAMES: Record<MigrationRecord['driver'], string> = {
  valkey: 'Valkey hand-off',
  checkpoint: 'Checkpoint (CRIU)',
  volume: 'Volume follows pod',
  reschedule: 'Reschedule',
};

/** How a migration ended, in words. */
export const OUTCOME_NAMES: Record<MigrationOutcome, string> = {
  running: 'Running',
  succeeded: 'Succeeded',
  'rolled-back': 'Rolled back',
  failed: 'Failed',
};

/** How long a migration took, or undefined while it runs. */
export function migrationDurationMs(m: MigrationRecord): number | undefined {
  if (!m.finishedAt) return undefined;
  return new Date(m.finishedAt).getTime() - new Date(m.startedAt).getTime();
}
