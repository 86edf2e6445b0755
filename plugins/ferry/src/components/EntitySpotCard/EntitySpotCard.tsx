import { useMemo } from 'react';
import Stack from '@mui/material/Stack';
import Typography from '@mui/material/Typography';
import { Link } from '@backstage/core-components';
import { useApi, useRouteRef } from '@backstage/core-plugin-api';
import { getCompoundEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import type { MigrationRecord } from '@ferry/plugin-ferry-common';
import { ferryApiRef } from '../../api';
import {
  formatAvailability,
  formatDateTime,
  formatPercent,
  formatUsd,
  savingsShare,
} from '../../format';
import { useLoader } from '../../hooks/useLoader';
import { unknownPrices } from '../../prices';
import { STATUS_REFRESH_MS } from '../../refresh';
import { entityContentRouteRef } from '../../routes';
import { ErrorPanel, LoadingPanel, isNotFound } from '../Feedback';
import { SectionCard } from '../SectionCard';
import { StatBlock } from '../StatBlock';

/** The path of the entity's Spot tab, or none when the app has not mounted it. */
function useSpotTabLink(): string | undefined {
  let link: (() => string) | undefined;
  try {
    // useRouteRef calls its own hooks unconditionally and throws only after
    // them when the tab is not mounted, so the order of hooks stays the same.
    // eslint-disable-next-line react-hooks/rules-of-hooks
    link = useRouteRef(entityContentRouteRef);
  } catch {
    link = undefined;
  }
  return link?.();
}

function lastMoveText(move: MigrationRecord | undefined): string {
  if (!move) return 'none yet';
  return `${move.reason}, ${move.outcome} · ${formatDateTime(move.startedAt)}`;
}

/**
 * The Overview card of an entity on Ferry: savings to date, availability
 * against its target, replicas on spot and on permanent capacity, and the last
 * move, with a link to the Spot tab.
 */
export function EntitySpotCard() {
  const { entity } = useEntity();
  const ferryApi = useApi(ferryApiRef);
  const entityRef = useMemo(() => getCompoundEntityRef(entity), [entity]);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  const tabLink = useSpotTabLink();
  const summary = useLoader(
    async () => {
      const [status, moves] = await Promise.all([
        ferryApi.getStatus(entityRef),
        ferryApi.getMigrations(entityRef, { limit: 1 }),
      ]);
      return { status, lastMove: moves.items[0] };
    },
    [ferryApi, refKey],
    { refreshMs: STATUS_REFRESH_MS },
  );

  let body;
  if (summary.loading) {
    body = <LoadingPanel label="Loading the spot summary…" />;
  } else if (summary.value) {
    const { status, lastMove } = summary.value;
    const { cost, availability, replicas } = status;
    const spot = replicas.filter(r => r.capacityType === 'spot').length;
    const share = savingsShare(cost.hourlyCostUsd, cost.onDemandHourlyCostUsd);
    const unpriced = unknownPrices(status);
    body = (
      <Stack spacing={1.5}>
        <StatBlock
          testId="ferry-card-savings"
          label="Savings to date"
          value={`${formatUsd(cost.savingsToDateUsd)} (${
            unpriced
              ? `no price known for ${unpriced.replicas} of ${replicas.length} replicas`
              : `${formatPercent(share, 0)} below on demand`
          })`}
        />
        <StatBlock
          testId="ferry-card-availability"
          label="Availability"
          value={`${formatAvailability(
            availability.observed,
          )} · target ${formatAvailability(availability.target)}`}
        />
        <StatBlock
          testId="ferry-card-replicas"
          label="Replicas"
          value={`${spot} spot · ${replicas.length - spot} permanent`}
        />
        <StatBlock
          testId="ferry-card-last-move"
          label="Last move"
          value={lastMoveText(lastMove)}
        />
      </Stack>
    );
  } else if (isNotFound(summary.error)) {
    body = (
      <Typography color="text.secondary" data-testid="ferry-card-no-status">
        The operator has not reported on this service yet.
      </Typography>
    );
  } else {
    body = (
      <ErrorPanel
        title="Could not load the spot summary"
        error={summary.error!}
        onRetry={summary.retry}
      />
    );
  }

  return (
    <SectionCard
      id="ferry-spot-card"
      title="Spot capacity"
      fullHeight
      actions={
        tabLink && (
          <Link to={tabLink} data-testid="ferry-card-link">
            Open the Spot tab
          </Link>
        )
      }
    >
      {body}
    </SectionCard>
  );
}
