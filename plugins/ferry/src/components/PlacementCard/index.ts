export {
  PlacementCard,
  CapacityChip,
  RiskChip,
  poolsOf,
} from './PlacementCard';
export type { PlacementPool } from './PlacementCard';
