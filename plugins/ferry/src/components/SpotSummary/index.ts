export { SpotSummary } from './SpotSummary';
