/**
 * The valkey driver on a cluster. Its runtime names members by pod name alone,
 * and one driver serves every Migration; so each Migration gets a runtime and a
 * redirector bound to its namespace and its source pod (a Deployment's member),
 * or a StatefulSet hand-off through a temporary member.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../../../core/clock';
import type {
  MigrationDriver,
  MigrationStepContext,
} from '../../../migration/MigrationDriver';
import type { ValkeyAccess } from '../../../migration/valkey/ValkeyAdmin';
import {
  SwitchoverMode,
  ValkeyDriver,
} from '../../../migration/valkey/ValkeyDriver';
import { KubeValkeyMembers, ReplicaSetHandoff } from './KubeValkeyMembers';
import { readValkeyAccess } from './readValkeyAccess';
import { StatefulSetValkeyDriver } from './StatefulSetValkeyDriver';

/** What the valkey driver on a cluster needs. */
export interface KubeValkeyDriverOptions {
  kubeConfig: KubeConfig;
  /**
   * The operator's credentials for every member. Unset (as main.ts wires it),
   * each Migration reads those its SpotPolicy names (`spec.valkey.authSecretRef`).
   */
  access?: ValkeyAccess;
  clock: Clock;
  switchover?: SwitchoverMode;
}

/**
 * The valkey driver for Migrations on a cluster: each Migration is run by a
 * `ValkeyDriver` whose runtime and redirector are bound to it (a Deployment's
 * member), or by a `StatefulSetValkeyDriver` (a StatefulSet's). The drivers
 * keep per-migration memory (the source's last seen offset), so one is kept
 * per Migration while it runs; a restarted operator makes a fresh one, which
 * the drivers allow for. The credentials are read from the Secret the
 * workload's SpotPolicy names when the driver is made, so a changed password
 * counts from the next Migration (or the next operator restart) on.
 */
export class KubeValkeyDriver implements MigrationDriver {
  readonly method = 'valkey' as const;
  private readonly running = new Map<string, MigrationDriver>();

  constructor(private readonly options: KubeValkeyDriverOptions) {}

  async prepareTarget(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).prepareTarget(ctx);
  }
  async transfer(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).transfer(ctx);
  }
  async switchOver(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).switchOver(ctx);
  }
  async verify(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).verify(ctx);
  }
  async cleanUp(ctx: MigrationStepContext): Promise<void> {
    await (await this.driverOf(ctx)).cleanUp(ctx);
    this.running.delete(keyOf(ctx));
  }
  async rollBack(ctx: MigrationStepContext): Promise<void> {
    // Nothing started (the credentials could not be read, say): nothing to undo,
    // and reading them again would only fail the rollback.
    if (Object.keys(ctx.state).length === 0) return;
    await (await this.driverOf(ctx)).rollBack(ctx);
    this.running.delete(keyOf(ctx));
  }
  async salvage(ctx: MigrationStepContext): Promise<void> {
    return (await this.driverOf(ctx)).salvage!(ctx);
  }

  private async driverOf(ctx: MigrationStepContext): Promise<MigrationDriver> {
    const key = keyOf(ctx);
    const known = this.running.get(key);
    if (known) return known;
    const { namespace } = ctx.migration.metadata;
    const { spec } = ctx.migration;
    const access =
      this.options.access ??
      (await readValkeyAccess(
        this.options.kubeConfig,
        namespace,
        spec.workloadRef,
      ));
    let driver: MigrationDriver;
    if (spec.workloadRef.kind === 'StatefulSet') {
      driver = new StatefulSetValkeyDriver({
        kubeConfig: this.options.kubeConfig,
        namespace,
        member: spec.pod,
        access,
        clock: this.options.clock,
        switchover: this.options.switchover,
      });
    } else {
      const bound = {
        kubeConfig: this.options.kubeConfig,
        namespace,
        sourcePod: spec.pod,
      };
      driver = new ValkeyDriver({
        runtime: new KubeValkeyMembers(bound),
        redirector: new ReplicaSetHandoff(bound),
        access,
        clock: this.options.clock,
        switchover: this.options.switchover,
      });
    }
    this.running.set(key, driver);
    return driver;
  }
}

function keyOf(ctx: MigrationStepContext): string {
  return `${ctx.migration.metadata.namespace}/${ctx.migration.metadata.name}`;
}
