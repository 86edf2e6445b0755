/**
 * How often live views ask again. A spot reclaim gives two minutes' notice at
 * best, so a view older than this would miss most of a migration.
 */
export const STATUS_REFRESH_MS = 10_000;
