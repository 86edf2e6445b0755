export { StatBlock } from './StatBlock';
