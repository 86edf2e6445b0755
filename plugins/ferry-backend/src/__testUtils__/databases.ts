import { TestDatabaseId, TestDatabases } from '@backstage/backend-test-utils';

/**
 * The TestDatabases id of the PostgreSQL that `ferry_postgres`
 * (scripts/lib/postgres.sh) started, if it ran: it exports
 * FERRY_TEST_DATABASE_POSTGRES_ID and the matching
 * BACKSTAGE_TEST_DATABASE_POSTGRES<major>_CONNECTION_STRING.
 */
export const POSTGRES_ID = (process.env.FERRY_TEST_DATABASE_POSTGRES_ID ??
  Object.keys(process.env)
    .map(
      k =>
        /^BACKSTAGE_TEST_DATABASE_(POSTGRES\d+)_CONNECTION_STRING$/.exec(
          k,
        )?.[1],
    )
    .find(Boolean)
    ?.replace(/^POSTGRES/, 'POSTGRES_')) as TestDatabaseId | undefined;

/** SQLite always, and the PostgreSQL of `ferry_postgres` when it runs. */
export function ferryTestDatabases(): TestDatabases {
  return TestDatabases.create({
    ids: ['SQLITE_3', ...(POSTGRES_ID ? [POSTGRES_ID] : [])],
  });
}

/**
 * In CI a missing PostgreSQL is a failure, not a skip: the store must be
 * proven on both databases.
 */
export function assertPostgresInCi(): void {
  if (process.env.CI && !POSTGRES_ID) {
    throw new Error(
      "PostgreSQL is not available to the store tests: run `source scripts/lib/postgres.sh && ferry_postgres` before the suite (it installs Debian's postgresql and exports BACKSTAGE_TEST_DATABASE_POSTGRES<major>_CONNECTION_STRING)",
    );
  }
}
