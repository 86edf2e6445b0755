// The portal's cluster client interface lives in @ferry/plugin-ferry-node.
export type {
  FerryClusterClient,
  MigrationQuery,
  SpotPoolSummary,
} from '@ferry/plugin-ferry-node';
