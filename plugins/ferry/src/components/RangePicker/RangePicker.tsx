import ToggleButton from '@mui/material/ToggleButton';
import ToggleButtonGroup from '@mui/material/ToggleButtonGroup';
import type { TimeRange } from '../../api';

/** The ranges a person can pick, each with its length. */
export const RANGES = {
  '24h': { label: '24 hours', ms: 24 * 3600_000 },
  '7d': { label: '7 days', ms: 7 * 24 * 3600_000 },
  '30d': { label: '30 days', ms: 30 * 24 * 3600_000 },
  '90d': { label: '90 days', ms: 90 * 24 * 3600_000 },
  '1y': { label: '1 year', ms: 365 * 24 * 3600_000 },
} as const;

/** One of {@link RANGES}. */
export type RangeKey = keyof typeof RANGES;

/** The range a tab opens with. */
export const DEFAULT_RANGE: RangeKey = '30d';

/** The time range ending now that a key stands for. */
export function rangeOf(key: RangeKey, now = Date.now()): TimeRange {
  return {
    from: new Date(now - RANGES[key].ms).toISOString(),
    to: new Date(now).toISOString(),
  };
}

/** A row of toggle buttons to pick the time range of the history charts. */
export function RangePicker(props: {
  value: RangeKey;
  onChange: (value: RangeKey) => void;
}) {
  return (
    <ToggleButtonGroup
      exclusive
      size="small"
      value={props.value}
      aria-label="Time range"
      onChange={(_, value: RangeKey | null) => value && props.onChange(value)}
    >
      {(Object.keys(RANGES) as RangeKey[]).map(key => (
        <ToggleButton
          key={key}
          value={key}
          aria-label={`Last ${RANGES[key].label}`}
        >
          {RANGES[key].label}
        </ToggleButton>
      ))}
    </ToggleButtonGroup>
  );
}
