import { LoggerService } from '@backstage/backend-plugin-api';
import { DatabaseFerryStore } from '../../database/DatabaseFerryStore';
import {
  entityRefOf,
  HistoryIngestion,
  settingsOf,
  sourceOf,
} from '../HistoryIngestion/HistoryIngestion';
import { CATALOG_SYNC_ACTOR } from '../PolicyService/PolicyService';
import { ClusterRegistry, DEMO_CLUSTER_NAME } from './ClusterRegistry';

/** What recording a demo cluster's history did. */
export interface DemoHistoryRecord {
  /** Reports recorded. */
  reports: number;
  /** Epoch ms of the first and the last report, on the demo's clock. */
  from?: number;
  to?: number;
  /** Wall time the replay and the writes took. */
  elapsedMs: number;
  /** Of that, the replay's. */
  simulatedMs?: number;
}

/**
 * Records the past a demo cluster replays before the portal serves, through
 * the same ingestion as its live reports, so that the portal starts as if it
 * had watched the simulated cluster all along: cost and availability samples
 * from each report, the Migrations of that past, and the catalog sync's opt-in
 * of each service when its policy was created.
 */
export class DemoHistory {
  constructor(
    private readonly clusters: ClusterRegistry,
    private readonly ingestion: HistoryIngestion,
    private readonly store: DatabaseFerryStore,
    private readonly logger: LoggerService,
  ) {}

  async record(): Promise<DemoHistoryRecord> {
    const started = Date.now();
    const demo = this.clusters.demo;
    const result: DemoHistoryRecord = { reports: 0, elapsedMs: 0 };
    if (!demo?.replayHistory) return result;
    const opted = new Set<string>();
    // The replay runs inside the iterator: time it apart from the writes.
    // A demo on the operator's controllers replays asynchronously (they wait on
    // its virtual clock); one that simulates in-line replays synchronously.
    const replay = demo.replayHistory();
    const reports =
      Symbol.asyncIterator in replay
        ? replay[Symbol.asyncIterator]()
        : replay[Symbol.iterator]();
    let simulatedMs = 0;
    try {
      for (;;) {
        const replayStarted = Date.now();
        const next = await reports.next();
        simulatedMs += Date.now() - replayStarted;
        if (next.done) break;
        const report = next.value;
        for (const policy of report.policies) {
          const entityRef = entityRefOf(policy);
          if (!entityRef || opted.has(entityRef)) continue;
          opted.add(entityRef);
          // The demo's policies of that past come from catalog annotations, as
          // the catalog sync would have written them when they were created.
          if (sourceOf(policy) !== 'catalog') continue;
          await this.store.recordPolicyChange({
            entityRef,
            source: 'catalog',
            changedBy: CATALOG_SYNC_ACTOR,
            changedAt: Date.parse(
              policy.metadata.creationTimestamp ??
                new Date(report.at).toISOString(),
            ),
            after: settingsOf(policy),
          });
        }
        await this.ingestion.recordPolicies(
          DEMO_CLUSTER_NAME,
          report.policies,
          report.at,
        );
        result.reports += 1;
        result.from ??= report.at;
        result.to = report.at;
      }
    } finally {
      // After a failed write too: the demo ticks only once its replay has ended.
      await reports.return?.();
    }
    // The Migrations of that past, the spot pools and the report of now.
    await this.ingestion.ingestCluster(this.clusters.get(DEMO_CLUSTER_NAME));
    result.elapsedMs = Date.now() - started;
    result.simulatedMs = simulatedMs;
    if (result.reports > 0) {
      const days = ((result.to! - result.from!) / 86_400_000).toFixed(1);
      const seconds = (ms: number) => (ms / 1000).toFixed(1);
      this.logger.info(
        `Ferry demo: recorded ${days} days of the simulated cluster's history (${
          result.reports
        } reports) in ${seconds(result.elapsedMs)} s (the replay ${seconds(
          simulatedMs,
        )} s, the writes the rest)`,
      );
    }
    return result;
  }
}
