export { EntitySpotContent } from './EntitySpotContent';
