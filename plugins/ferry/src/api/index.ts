export { ferryApiRef } from './FerryApi';
export type { FerryApi, MigrationQuery, TimeRange } from './FerryApi';
export { FerryClient } from './FerryClient';
