import { useMemo } from 'react';
import Box from '@mui/material/Box';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { useApi } from '@backstage/core-plugin-api';
import { getCompoundEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { ferryApiRef } from '../../api';
import { useLoader } from '../../hooks/useLoader';
import { STATUS_REFRESH_MS } from '../../refresh';
import { EmptyPanel, ErrorPanel, LoadingPanel, isNotFound } from '../Feedback';
import { PlacementCard } from '../PlacementCard';
import { SpotSummary } from '../SpotSummary';

/**
 * The "Spot" tab of an entity: its spot status at a glance, where its
 * replicas run, and (further down) its policy, cost, availability and
 * migrations.
 */
export function EntitySpotContent() {
  const { entity } = useEntity();
  const ferryApi = useApi(ferryApiRef);
  const entityRef = useMemo(() => getCompoundEntityRef(entity), [entity]);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  const status = useLoader(() => ferryApi.getStatus(entityRef), [ferryApi, refKey], {
    refreshMs: STATUS_REFRESH_MS,
  });

  let body;
  if (status.loading) {
    body = <LoadingPanel label="Loading where this service runs and what it costs…" />;
  } else if (status.value) {
    body = (
      <Stack spacing={3}>
        {status.error && (
          <ErrorPanel
            title="Could not refresh the spot status; showing the last figures"
            error={status.error}
            onRetry={status.retry}
          />
        )}
        <SpotSummary status={status.value} />
        <PlacementCard replicas={status.value.replicas} />
      </Stack>
    );
  } else if (isNotFound(status.error)) {
    body = (
      <EmptyPanel title="Ferry has no status for this service yet" testId="ferry-no-status">
        Status appears once the operator has found and placed this service's
        workload. If you have just opted in, give it a minute. Otherwise check that
        the entity's <code>backstage.io/kubernetes-id</code> annotation matches the
        labels of its pods.
      </EmptyPanel>
    );
  } else {
    body = (
      <ErrorPanel
        title="Could not load the spot status of this service"
        error={status.error!}
        onRetry={status.retry}
      />
    );
  }

  return (
    <Box data-testid="ferry-entity-tab" component="article" aria-labelledby="ferry-tab-title">
      <Typography id="ferry-tab-title" variant="h5" component="h1" sx={{ mb: 2 }}>
        Spot capacity
      </Typography>
      {body}
    </Box>
  );
}
