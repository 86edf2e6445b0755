export { EntitySpotCard } from './EntitySpotCard';
