import Stack from '@mui/material/Stack';
import {
  Area,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { useApi } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import type { CostSeries } from '@ferry/plugin-ferry-common';
import { ferryApiRef, TimeRange } from '../../api';
import {
  formatBucketTime,
  formatPercent,
  formatUsd,
  savingsShare,
} from '../../format';
import { ChartFigure } from '../ChartFigure';
import { useChartTheme } from '../chartTheme';
import { HistoryCard } from '../HistoryCard';
import { StatBlock } from '../StatBlock';

function CostChart(props: { series: CostSeries }) {
  const { series } = props;
  const colors = useChartTheme();
  const unit = series.bucket === 'day' ? 'USD per day' : 'USD per hour';
  const data = series.points.map(p => ({
    ...p,
    label: formatBucketTime(p.time, series.bucket),
  }));
  const summary = `Cost per ${series.bucket}: ${formatUsd(
    series.totalUsd,
  )} spent on spot and permanent capacity against ${formatUsd(
    series.onDemandUsd,
  )} on demand, ${formatUsd(series.savingsUsd)} saved.`;
  return (
    <ChartFigure
      testId="ferry-cost-chart"
      summary={summary}
      columns={[
        'Time',
        'Spot (USD)',
        'Permanent (USD)',
        'On-demand equivalent (USD)',
      ]}
      rows={data.map(p => [
        p.label,
        formatUsd(p.spotUsd),
        formatUsd(p.permanentUsd),
        formatUsd(p.onDemandUsd),
      ])}
    >
      <ResponsiveContainer width="100%" height="100%">
        <ComposedChart
          data={data}
          margin={{ top: 8, right: 16, bottom: 8, left: 16 }}
        >
          <CartesianGrid stroke={colors.grid} strokeDasharray="3 3" />
          <XAxis
            dataKey="label"
            tick={colors.axis}
            stroke={colors.grid}
            minTickGap={24}
          />
          <YAxis
            tick={colors.axis}
            stroke={colors.grid}
            tickFormatter={(v: number) => `$${v}`}
            label={{
              value: unit,
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
              formatUsd(value),
              name,
            ]}
          />
          <Legend wrapperStyle={colors.legend} />
          <Area
            type="linear"
            dataKey="permanentUsd"
            name="Permanent"
            stackId="spend"
            stroke={colors.permanent}
            fill={colors.permanent}
            fillOpacity={0.35}
            isAnimationActive={false}
          />
          <Area
            type="linear"
            dataKey="spotUsd"
            name="Spot"
            stackId="spend"
            stroke={colors.spot}
            fill={colors.spot}
            fillOpacity={0.35}
            isAnimationActive={false}
          />
          <Line
            type="linear"
            dataKey="onDemandUsd"
            name="On-demand equivalent"
            stroke={colors.onDemand}
            strokeDasharray="6 4"
            dot={false}
            isAnimationActive={false}
          />
        </ComposedChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

/** Actual spend (spot and permanent) against the on-demand counterfactual. */
export function CostCard(props: {
  entityRef: CompoundEntityRef;
  range: TimeRange;
  rangeLabel: string;
}) {
  const { entityRef, range, rangeLabel } = props;
  const ferryApi = useApi(ferryApiRef);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  return (
    <HistoryCard
      id="ferry-cost"
      title="Cost"
      subheader={`Spot and permanent spend against the on-demand price, last ${rangeLabel}`}
      what="cost"
      rangeLabel={rangeLabel}
      load={() => ferryApi.getCost(entityRef, range)}
      deps={[ferryApi, refKey]}
    >
      {series => (
        <Stack spacing={2}>
          <Stack direction="row" spacing={4} flexWrap="wrap" useFlexGap>
            <StatBlock
              testId="ferry-cost-total"
              label="Spent"
              value={formatUsd(series.totalUsd)}
            />
            <StatBlock
              testId="ferry-cost-on-demand"
              label="On demand would have cost"
              value={formatUsd(series.onDemandUsd)}
            />
            <StatBlock
              testId="ferry-cost-savings"
              label="Saved"
              tone="good"
              value={`${formatUsd(series.savingsUsd)} (${formatPercent(
                savingsShare(series.totalUsd, series.onDemandUsd),
                0,
              )})`}
            />
          </Stack>
          <CostChart series={series} />
        </Stack>
      )}
    </HistoryCard>
  );
}
