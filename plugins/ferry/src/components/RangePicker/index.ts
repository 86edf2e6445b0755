export { RangePicker, RANGES, DEFAULT_RANGE, rangeOf } from './RangePicker';
export type { RangeKey } from './RangePicker';
