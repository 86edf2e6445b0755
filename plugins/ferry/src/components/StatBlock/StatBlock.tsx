import { ReactNode } from 'react';
import Box from '@mui/material/Box';
import Card from '@mui/material/Card';
import CardContent from '@mui/material/CardContent';
import Typography from '@mui/material/Typography';

const TONE_COLORS = { good: 'success.main', bad: 'error.main' } as const;

/**
 * One figure with its label, the stat block every card uses (as cost-insights'
 * `LegendItem` is): a group named by the label, the value under it, an
 * optional line of detail and anything else that explains the figure (a bar).
 * A `tile` stands on its own in an outlined card with a larger value, as the
 * headline figures of a page do; otherwise it sits inside a card.
 */
export function StatBlock(props: {
  label: string;
  value: ReactNode;
  /** `data-testid` of the group; the label's id is `<testId>-label`. */
  testId: string;
  detail?: ReactNode;
  /** Colours the value: `good` (success) or `bad` (error). */
  tone?: 'good' | 'bad';
  tile?: boolean;
  minWidth?: number;
  /** Shown under the value, e.g. a progress bar labelled by `<testId>-label`. */
  children?: ReactNode;
}) {
  const labelId = `${props.testId}-label`;
  const block = (
    <Box
      role="group"
      aria-labelledby={labelId}
      data-testid={props.testId}
      minWidth={props.minWidth}
    >
      <Typography
        id={labelId}
        variant="overline"
        color="text.secondary"
        component="h3"
      >
        {props.label}
      </Typography>
      <Typography
        variant={props.tile ? 'h5' : 'h6'}
        component="p"
        color={props.tone ? TONE_COLORS[props.tone] : 'text.primary'}
      >
        {props.value}
      </Typography>
      {props.detail && (
        <Typography variant="body2" color="text.secondary" component="p">
          {props.detail}
        </Typography>
      )}
      {props.children}
    </Box>
  );
  if (!props.tile) return block;
  return (
    <Card variant="outlined" sx={{ height: '100%' }}>
      <CardContent>{block}</CardContent>
    </Card>
  );
}
