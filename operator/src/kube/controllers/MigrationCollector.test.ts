import type { Migration, MigrationPhase } from '../../api/v1alpha1';
import {
  finishedAt,
  migrationsToCollect,
  MIGRATION_RETENTION_DEFAULTS,
} from './MigrationCollector';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const DAY = 86_400_000;

function migration(
  name: string,
  phase: MigrationPhase | undefined,
  finishedDaysAgo: number,
  workload = 'cache',
): Migration {
  const at = new Date(NOW - finishedDaysAgo * DAY).toISOString();
  return {
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      name,
      namespace: 'shop',
      creationTimestamp: new Date(NOW - 30 * DAY).toISOString(),
    },
    spec: {
      workloadRef: { kind: 'StatefulSet', name: workload },
      pod: `${workload}-0`,
      sourceNode: 'spot-a',
      reason: 'notice',
      driver: 'valkey',
    },
    status: phase && {
      phase,
      phases: [{ phase, startedAt: at }],
      bytesMoved: 0,
      completedAt: ['Succeeded', 'RolledBack', 'Failed'].includes(phase)
        ? at
        : undefined,
    },
  };
}

const names = (ms: Migration[]) => ms.map(m => m.metadata.name).sort();

describe('migrationsToCollect', () => {
  it('keeps a week by default', () => {
    expect(MIGRATION_RETENTION_DEFAULTS.maxAgeMs).toBe(7 * DAY);
  });

  it('collects finished Migrations past the retention, counted from when they finished', () => {
    const chosen = migrationsToCollect(
      [
        migration('old-succeeded', 'Succeeded', 8),
        migration('old-rolled-back', 'RolledBack', 9),
        migration('old-failed', 'Failed', 10),
        migration('recent', 'Succeeded', 6),
      ],
      { maxAgeMs: 7 * DAY, maxPerWorkload: 100 },
      NOW,
    );
    expect(names(chosen)).toEqual([
      'old-failed',
      'old-rolled-back',
      'old-succeeded',
    ]);
  });

  it('never collects a Migration that is not final, however old', () => {
    const chosen = migrationsToCollect(
      [
        migration('transferring', 'Transferring', 20),
        migration('rolling-back', 'RollingBack', 20),
        // Made with kubectl and never started: Planned.
        migration('no-status', undefined, 20),
      ],
      { maxAgeMs: DAY, maxPerWorkload: 1 },
      NOW,
    );
    expect(chosen).toEqual([]);
  });

  it('keeps at most maxPerWorkload finished ones per workload, the newest', () => {
    const chosen = migrationsToCollect(
      [
        migration('a-1', 'Succeeded', 1),
        migration('a-2', 'Succeeded', 2),
        migration('a-3', 'Failed', 3),
        migration('a-running', 'Transferring', 4),
        migration('b-1', 'Succeeded', 3, 'queue'),
      ],
      { maxAgeMs: 7 * DAY, maxPerWorkload: 2 },
      NOW,
    );
    expect(names(chosen)).toEqual(['a-3']);
  });

  it('dates a Migration by its completion, else its last phase, else its creation', () => {
    const m = migration('m', 'Succeeded', 2);
    expect(finishedAt(m)).toBe(NOW - 2 * DAY);
    delete m.status!.completedAt;
    m.status!.phases = [
      { phase: 'Planned', startedAt: '2026-11-01T00:00:00Z' },
      {
        phase: 'Succeeded',
        startedAt: '2026-11-02T00:00:00Z',
        finishedAt: '2026-11-03T00:00:00Z',
      },
    ];
    expect(finishedAt(m)).toBe(Date.parse('2026-11-03T00:00:00Z'));
    m.status!.phases = [];
    expect(finishedAt(m)).toBe(NOW - 30 * DAY);
  });
});
