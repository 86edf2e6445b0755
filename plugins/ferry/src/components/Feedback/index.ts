export {
  EmptyPanel,
  ErrorPanel,
  LoadingPanel,
  isForbidden,
  isNotFound,
} from './Feedback';
