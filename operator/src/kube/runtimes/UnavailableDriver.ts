import {
  MigrationDriver,
  PermanentMigrationError,
} from '../../migration/MigrationDriver';

/**
 * Stands for a migration method whose driver has no Kubernetes runtime in this
 * build: a Migration asking for it fails before anything is touched (it rolls
 * back with the reason in its status and a Warning Event), instead of waiting
 * forever for a driver that is not there.
 */
export class UnavailableDriver implements MigrationDriver {
  constructor(
    readonly method: MigrationDriver['method'],
    private readonly reason: string,
  ) {}

  async prepareTarget(): Promise<void> {
    throw new PermanentMigrationError(
      `the ${this.method} migration method is not available on this operator: ${this.reason}; the member was not moved`,
    );
  }
  async transfer(): Promise<void> {}
  async switchOver(): Promise<void> {}
  async verify(): Promise<void> {}
  async cleanUp(): Promise<void> {}
  async rollBack(): Promise<void> {
    // Nothing was done, so nothing to undo.
  }
}
