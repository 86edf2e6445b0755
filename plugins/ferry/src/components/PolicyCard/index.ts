export {
  PolicyCard,
  AVAILABILITY_TARGETS,
  MIGRATION_METHODS,
} from './PolicyCard';
