import Box from '@mui/material/Box';
import LinearProgress from '@mui/material/LinearProgress';
import List from '@mui/material/List';
import ListItem from '@mui/material/ListItem';
import ListItemText from '@mui/material/ListItemText';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useApi } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import type { AvailabilitySeries } from '@ferry/plugin-ferry-common';
import { ferryApiRef, TimeRange } from '../../api';
import {
  formatAvailability,
  formatBucketTime,
  formatDateTime,
  formatPercent,
} from '../../format';
import { ChartFigure } from '../ChartFigure';
import { useChartTheme } from '../chartTheme';
import { HistoryCard } from '../HistoryCard';
import { StatBlock } from '../StatBlock';

/** How many at-risk moments are listed before "and N more". */
const AT_RISK_SHOWN = 10;

/** Below this share of error budget left, the bar turns to a warning. */
const BUDGET_WARNING_BELOW = 0.25;

function budgetColor(budget: number): 'success' | 'warning' | 'error' {
  if (budget <= 0) return 'error';
  return budget < BUDGET_WARNING_BELOW ? 'warning' : 'success';
}

/**
 * Y-axis floors for availability, each with a tick step that reads well:
 * availability lives near 100 %, so the axis zooms in as far as the data lets it.
 */
const AVAILABILITY_SCALES = [
  { floor: 99.9, step: 0.025, digits: 3 },
  { floor: 99.8, step: 0.05, digits: 2 },
  { floor: 99.5, step: 0.1, digits: 1 },
  { floor: 99, step: 0.25, digits: 2 },
  { floor: 98, step: 0.5, digits: 1 },
  { floor: 95, step: 1, digits: 0 },
  { floor: 90, step: 2.5, digits: 1 },
  { floor: 80, step: 5, digits: 0 },
  { floor: 50, step: 10, digits: 0 },
  { floor: 0, step: 25, digits: 0 },
];

/** The tightest scale that shows the lowest point with a little room below it. */
export function availabilityScale(lowestPct: number) {
  const scale =
    AVAILABILITY_SCALES.find(
      s => s.floor < lowestPct - (100 - lowestPct) * 0.1,
    ) ?? AVAILABILITY_SCALES[AVAILABILITY_SCALES.length - 1];
  const ticks: number[] = [];
  for (let t = scale.floor; t <= 100 + 1e-9; t += scale.step) {
    ticks.push(Math.round(t * 1000) / 1000);
  }
  return { floor: scale.floor, ticks, digits: scale.digits };
}

function AvailabilityChart(props: { series: AvailabilitySeries }) {
  const { series } = props;
  const colors = useChartTheme();
  const data = series.points.map(p => ({
    label: formatBucketTime(p.time, series.bucket),
    availabilityPct: p.availability * 100,
    minReadyMembers: p.minReadyMembers,
    requiredMembers: p.requiredMembers,
  }));
  const lowest = Math.min(
    series.target,
    ...series.points.map(p => p.availability),
  );
  const scale = availabilityScale(lowest * 100);
  const summary = `Availability per ${series.bucket}: ${formatAvailability(
    series.observed,
  )} observed against a target of ${formatAvailability(series.target)}.`;
  return (
    <ChartFigure
      testId="ferry-availability-chart"
      summary={summary}
      columns={[
        'Time',
        'Availability',
        'Fewest ready members',
        'Members needed',
      ]}
      rows={series.points.map((p, i) => [
        data[i].label,
        formatAvailability(p.availability),
        p.minReadyMembers,
        p.requiredMembers,
      ])}
    >
      <ResponsiveContainer width="100%" height="100%">
        <LineChart
          data={data}
          margin={{ top: 16, right: 16, bottom: 8, left: 16 }}
        >
          <CartesianGrid stroke={colors.grid} strokeDasharray="3 3" />
          <XAxis
            dataKey="label"
            tick={colors.axis}
            stroke={colors.grid}
            minTickGap={24}
          />
          <YAxis
            domain={[scale.floor, 100]}
            ticks={scale.ticks}
            allowDataOverflow
            tick={colors.axis}
            stroke={colors.grid}
            tickFormatter={(v: number) => `${v.toFixed(scale.digits)} %`}
            width={80}
            label={{
              value: 'Availability (%)',
              angle: -90,
              position: 'insideLeft',
              fill: colors.axis.fill,
              fontSize: colors.axis.fontSize,
              style: { textAnchor: 'middle' },
            }}
          />
          <Tooltip
            {...colors.tooltip}
            formatter={(value: number, name: string) => [
              `${value.toFixed(3)} %`,
              name,
            ]}
          />
          <Legend wrapperStyle={colors.legend} />
          <ReferenceLine
            y={series.target * 100}
            stroke={colors.bad}
            strokeDasharray="6 4"
            label={{
              value: `Target ${formatAvailability(series.target)}`,
              position: 'insideBottomRight',
              fill: colors.axis.fill,
              fontSize: 12,
            }}
          />
          <Line
            type="linear"
            dataKey="availabilityPct"
            name="Availability"
            stroke={colors.good}
            dot={false}
            isAnimationActive={false}
          />
        </LineChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

/** Availability against the target, the error budget left and the moments quorum was at risk. */
export function AvailabilityCard(props: {
  entityRef: CompoundEntityRef;
  range: TimeRange;
  rangeLabel: string;
}) {
  const { entityRef, range, rangeLabel } = props;
  const ferryApi = useApi(ferryApiRef);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  return (
    <HistoryCard
      id="ferry-availability"
      testId="ferry-availability-card"
      title="Availability"
      subheader={`Share of time with enough ready members for quorum, last ${rangeLabel}`}
      what="availability"
      rangeLabel={rangeLabel}
      load={() => ferryApi.getAvailability(entityRef, range)}
      deps={[ferryApi, refKey]}
    >
      {series => {
        const meets = series.observed >= series.target;
        const budget = Math.max(0, Math.min(1, series.errorBudgetRemaining));
        return (
          <Stack spacing={2}>
            <Stack direction="row" spacing={4} flexWrap="wrap" useFlexGap>
              <StatBlock
                testId="ferry-availability-observed"
                label="Observed"
                tone={meets ? 'good' : 'bad'}
                value={`${formatAvailability(series.observed)} ${
                  meets ? '(meets target)' : '(below target)'
                }`}
              />
              <StatBlock
                testId="ferry-availability-target"
                label="Target"
                value={formatAvailability(series.target)}
              />
              <StatBlock
                testId="ferry-error-budget"
                label="Error budget left"
                value={formatPercent(budget, 0)}
                minWidth={200}
              >
                <LinearProgress
                  variant="determinate"
                  value={budget * 100}
                  color={budgetColor(budget)}
                  aria-labelledby="ferry-error-budget-label"
                />
              </StatBlock>
            </Stack>
            <AvailabilityChart series={series} />
            <Box data-testid="ferry-at-risk">
              <Typography variant="subtitle2" component="h3">
                Moments the quorum was at risk
              </Typography>
              {series.atRisk.length === 0 ? (
                <Typography variant="body2" color="text.secondary">
                  None in the last {rangeLabel}: the service always had more
                  ready members than it needs.
                </Typography>
              ) : (
                <List dense aria-label="Moments the quorum was at risk">
                  {series.atRisk.slice(0, AT_RISK_SHOWN).map(m => (
                    <ListItem
                      key={m.time}
                      disableGutters
                      data-testid="ferry-at-risk-moment"
                    >
                      <ListItemText
                        primary={formatDateTime(m.time)}
                        secondary={`${m.readyMembers} ready of ${m.requiredMembers} needed`}
                      />
                    </ListItem>
                  ))}
                  {series.atRisk.length > AT_RISK_SHOWN && (
                    <ListItem disableGutters>
                      <ListItemText
                        secondary={`and ${
                          series.atRisk.length - AT_RISK_SHOWN
                        } more; pick a shorter range to see them`}
                      />
                    </ListItem>
                  )}
                </List>
              )}
            </Box>
          </Stack>
        );
      }}
    </HistoryCard>
  );
}
