import { useMemo, useState } from 'react';
import Box from '@mui/material/Box';
import Grid from '@mui/material/Grid';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useApi } from '@backstage/core-plugin-api';
import { getCompoundEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { ferryApiRef } from '../../api';
import { useLoader } from '../../hooks/useLoader';
import { unknownPrices } from '../../prices';
import { STATUS_REFRESH_MS } from '../../refresh';
import { AvailabilityCard } from '../AvailabilityCard';
import { CostCard } from '../CostCard';
import { EmptyPanel, ErrorPanel, LoadingPanel, isNotFound } from '../Feedback';
import { HealthNotice } from '../HealthNotice';
import { MigrationsCard } from '../MigrationsCard';
import { PlacementCard } from '../PlacementCard';
import { PolicyCard } from '../PolicyCard';
import {
  DEFAULT_RANGE,
  RANGES,
  RangeKey,
  RangePicker,
  rangeOf,
} from '../RangePicker';
import { SpotSummary } from '../SpotSummary';

/**
 * The "Spot" tab of an entity: its spot status at a glance, the opt-in
 * policy, where its replicas run, cost and availability over time, and its
 * migrations.
 */
/** How far the operator's clock may run ahead of the browser's before the history follows it. */
const OPERATOR_CLOCK_LEAD_MS = 60_000;

export function EntitySpotContent() {
  const { entity } = useEntity();
  const ferryApi = useApi(ferryApiRef);
  const entityRef = useMemo(() => getCompoundEntityRef(entity), [entity]);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  const status = useLoader(
    () => ferryApi.getStatus(entityRef),
    [ferryApi, refKey],
    {
      refreshMs: STATUS_REFRESH_MS,
    },
  );
  const [rangeKey, setRangeKey] = useState<RangeKey>(DEFAULT_RANGE);
  // Demo mode runs simulated time ahead of the wall clock, and the operator stamps
  // its samples in that time: the history then ends at the operator's now, or the
  // newest samples would lie past the range's end.
  const reportedAt = status.value ? Date.parse(status.value.updatedAt) : NaN;
  const operatorAheadAt =
    reportedAt - Date.now() > OPERATOR_CLOCK_LEAD_MS ? reportedAt : undefined;
  // Otherwise the range is fixed when picked, so refreshes of other views do not
  // refetch history.
  const range = useMemo(
    () => rangeOf(rangeKey, operatorAheadAt),
    [rangeKey, operatorAheadAt],
  );
  const rangeLabel = RANGES[rangeKey].label;

  let statusViews;
  if (status.loading) {
    statusViews = (
      <LoadingPanel label="Loading where this service runs and what it costs…" />
    );
  } else if (status.value) {
    statusViews = (
      <>
        {status.error && (
          <ErrorPanel
            title="Could not refresh the spot status; showing the last figures"
            error={status.error}
            onRetry={status.retry}
          />
        )}
        <SpotSummary status={status.value} />
      </>
    );
  } else if (isNotFound(status.error)) {
    statusViews = (
      <EmptyPanel
        title="Ferry has no status for this service yet"
        testId="ferry-no-status"
      >
        Status appears once the operator has found and placed this service's
        workload. To put it on spot, switch on "Run on spot capacity" below and
        save. If you have just opted in, give it a minute. Otherwise check that
        the entity's <code>backstage.io/kubernetes-id</code> annotation matches
        the labels of its pods.
        {status.error?.message && (
          <Box component="span" display="block" mt={1}>
            Ferry says: {status.error.message}
          </Box>
        )}
      </EmptyPanel>
    );
  } else {
    statusViews = (
      <ErrorPanel
        title="Could not load the spot status of this service"
        error={status.error!}
        onRetry={status.retry}
      />
    );
  }

  return (
    <Box
      data-testid="ferry-entity-tab"
      component="article"
      aria-labelledby="ferry-tab-title"
    >
      <Typography
        id="ferry-tab-title"
        variant="h5"
        component="h1"
        sx={{ mb: 2 }}
      >
        Spot capacity
      </Typography>
      <Stack spacing={3}>
        <HealthNotice />
        {statusViews}
        <PolicyCard
          entityRef={entityRef}
          status={status.value}
          onSaved={status.retry}
        />
        {status.value && (
          <PlacementCard
            replicas={status.value.replicas}
            pricesMissing={unknownPrices(status.value) !== undefined}
          />
        )}
        {/* History loads alongside the status rather than after it. When the
            status failed, the one error above says what to do. */}
        {(status.loading || status.value) && (
          <>
            <Box
              component="section"
              aria-labelledby="ferry-history-title"
              display="flex"
              alignItems="center"
              justifyContent="space-between"
              flexWrap="wrap"
              gap={2}
            >
              <Typography id="ferry-history-title" variant="h6" component="h2">
                History
              </Typography>
              <RangePicker value={rangeKey} onChange={setRangeKey} />
            </Box>
            {/* A Box, because Stack's spacing would cancel the Grid's negative margins. */}
            <Box>
              <Grid container spacing={3}>
                <Grid item xs={12} lg={6}>
                  <CostCard
                    entityRef={entityRef}
                    range={range}
                    rangeLabel={rangeLabel}
                  />
                </Grid>
                <Grid item xs={12} lg={6}>
                  <AvailabilityCard
                    entityRef={entityRef}
                    range={range}
                    rangeLabel={rangeLabel}
                  />
                </Grid>
              </Grid>
            </Box>
            <MigrationsCard entityRef={entityRef} />
          </>
        )}
      </Stack>
    </Box>
  );
}
