import Alert from '@mui/material/Alert';
import Stack from '@mui/material/Stack';
import type { SxProps, Theme } from '@mui/material/styles';
import { useApi } from '@backstage/core-plugin-api';
import { ferryApiRef } from '../../api';
import { useLoader } from '../../hooks/useLoader';

/**
 * Says when Ferry runs against a simulated cloud, and which clusters it cannot
 * reach, so a person reading the figures knows where they come from. Silent
 * while loading or when the health check itself fails: the views below report
 * their own errors.
 */
export function HealthNotice(props: { sx?: SxProps<Theme> }) {
  const ferryApi = useApi(ferryApiRef);
  const health = useLoader(() => ferryApi.getHealth(), [ferryApi]);
  if (!health.value) return null;
  const unreachable = health.value.clusters.filter(c => !c.reachable);
  if (health.value.mode !== 'demo' && unreachable.length === 0) return null;
  return (
    <Stack spacing={1} data-testid="ferry-health" sx={props.sx}>
      {health.value.mode === 'demo' && (
        <Alert severity="info">
          Demo mode: the operator runs against a simulated cloud that replays
          real spot-market data. Costs, reclaims and migrations here are
          simulated.
        </Alert>
      )}
      {unreachable.map(c => (
        <Alert severity="warning" key={c.name}>
          Ferry cannot reach cluster {c.name}
          {c.message ? `: ${c.message}` : ''}. Figures for its services may be
          out of date; check the cluster configuration of the Ferry backend.
        </Alert>
      ))}
    </Stack>
  );
}
