import Box from '@mui/material/Box';
import Grid from '@mui/material/Grid';
import Typography from '@mui/material/Typography';
import type { EntitySpotStatus } from '@ferry/plugin-ferry-common';
import {
  formatAvailability,
  formatDateTime,
  formatPercent,
  formatUsd,
  formatUsdPerHour,
  savingsShare,
} from '../../format';
import { unknownPrices } from '../../prices';
import { StatBlock } from '../StatBlock';

/** The headline figures of an entity on spot: cost, savings, availability, replicas. */
export function SpotSummary(props: { status: EntitySpotStatus }) {
  const { cost, availability, replicas, policy } = props.status;
  const spot = replicas.filter(r => r.capacityType === 'spot').length;
  const ready = replicas.filter(r => r.ready).length;
  const meetsTarget = availability.observed >= availability.target;
  const share = savingsShare(cost.hourlyCostUsd, cost.onDemandHourlyCostUsd);
  const unpriced = unknownPrices(props.status);
  const allUnpriced =
    unpriced !== undefined && unpriced.replicas === replicas.length;

  return (
    <Box
      component="section"
      aria-label="Spot summary"
      data-testid="ferry-summary"
    >
      <Grid container spacing={2}>
        <Grid item xs={12} sm={6} md={3}>
          <StatBlock
            tile
            testId="ferry-hourly-cost"
            label="Hourly cost"
            value={
              allUnpriced ? 'Unknown' : formatUsdPerHour(cost.hourlyCostUsd)
            }
            detail={
              unpriced ? (
                <span title={unpriced.message}>
                  no price known for {unpriced.replicas} of {replicas.length}{' '}
                  replicas, so cost and savings leave them out
                </span>
              ) : (
                <>
                  vs {formatUsdPerHour(cost.onDemandHourlyCostUsd)} on demand (
                  {formatPercent(share, 0)} less)
                </>
              )
            }
          />
        </Grid>
        <Grid item xs={12} sm={6} md={3}>
          <StatBlock
            tile
            testId="ferry-savings"
            label="Savings to date"
            value={formatUsd(cost.savingsToDateUsd)}
            tone={cost.savingsToDateUsd > 0 ? 'good' : undefined}
            detail={<>spent {formatUsd(cost.spendToDateUsd)} so far</>}
          />
        </Grid>
        <Grid item xs={12} sm={6} md={3}>
          <StatBlock
            tile
            testId="ferry-availability"
            label="Availability"
            value={formatAvailability(availability.observed)}
            tone={meetsTarget ? 'good' : 'bad'}
            detail={
              <>
                target {formatAvailability(availability.target)} ·{' '}
                {meetsTarget ? 'meets target' : 'below target'} · error budget
                left{' '}
                {formatPercent(
                  Math.max(0, availability.errorBudgetRemaining),
                  0,
                )}
              </>
            }
          />
        </Grid>
        <Grid item xs={12} sm={6} md={3}>
          <StatBlock
            tile
            testId="ferry-replica-summary"
            label="Replicas"
            value={
              <>
                {spot} spot · {replicas.length - spot} permanent
              </>
            }
            detail={
              <>
                {ready} of {replicas.length} ready (
                {availability.requiredMembers} needed for quorum) ·{' '}
                {policy.enabled ? 'spot on' : 'spot off'}
              </>
            }
          />
        </Grid>
      </Grid>
      <Typography
        variant="caption"
        color="text.secondary"
        component="p"
        sx={{ mt: 1 }}
      >
        Last reported by the operator {formatDateTime(props.status.updatedAt)} ·{' '}
        {props.status.migrationsTotal} migration
        {props.status.migrationsTotal === 1 ? '' : 's'} so far
      </Typography>
    </Box>
  );
}
