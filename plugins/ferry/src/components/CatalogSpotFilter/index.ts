export { EntitySpotPicker } from './EntitySpotPicker';
export { EntitySpotFilter, isOnSpot } from './EntitySpotFilter';
export type { FerryCatalogFilters } from './EntitySpotFilter';
export { createFerrySpotColumn } from './spotColumn';
