export { MigrationsCard, MIGRATIONS_PAGE_SIZE } from './MigrationsCard';
export { MigrationDetails } from './MigrationDetails';
export { REASON_NAMES, DRIVER_NAMES, OUTCOME_NAMES } from './names';
