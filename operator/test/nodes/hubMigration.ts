/**
 * One `valkey` hand-off on real nodes, run from the cluster's network as the
 * operator's pod runs it: the driver's admin connections go to the members' pod
 * addresses, which only the cluster's namespaces route to (RealNodeCluster.hubAccess).
 *
 *   nsenter --net=<hub> -- node --import tsx hubMigration.ts '<HubMigrationSpec as JSON>'
 *
 * It plans the Migration, runs it to its end, and prints `migration <the Migration as JSON>`.
 */
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { MigrationSpec } from '../../src/api/v1alpha1';
import { systemClock } from '../../src/core/clock';
import { KubeValkeyDriver } from '../../src/kube/runtimes/valkey/KubeValkeyDriver';
import { InMemoryMigrationStore } from '../../src/migration/MigrationStore';
import { MigrationStateMachine } from '../../src/migration/MigrationStateMachine';

/** What the process is told on its command line. */
export interface HubMigrationSpec {
  /** A kubeconfig that reaches the API server from the hub. */
  kubeconfig: string;
  namespace: string;
  name: string;
  spec: MigrationSpec;
}

/** The line prefix the Migration is printed after. */
export const MIGRATION_LINE = 'migration ';

async function main(): Promise<void> {
  const { kubeconfig, namespace, name, spec } = JSON.parse(
    process.argv[2] ?? '',
  ) as HubMigrationSpec;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  const sm = new MigrationStateMachine({
    store: new InMemoryMigrationStore(),
    // As main.ts wires it; the members have no password.
    drivers: [
      new KubeValkeyDriver({ kubeConfig, access: {}, clock: systemClock }),
    ],
    clock: systemClock,
  });
  await sm.plan(namespace, name, spec);
  const done = await sm.run(namespace, name);
  process.stdout.write(`${MIGRATION_LINE}${JSON.stringify(done)}\n`);
}

// Run as a process only: the bench imports its spec and line.
if (path.basename(process.argv[1] ?? '') === 'hubMigration.ts') {
  main().then(
    () => process.exit(0),
    error => {
      process.stderr.write(`hubMigration: ${error.stack ?? error}\n`);
      process.exit(1);
    },
  );
}
