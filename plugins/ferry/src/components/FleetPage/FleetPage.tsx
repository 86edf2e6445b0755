import { useMemo, useState } from 'react';
import Box from '@mui/material/Box';
import FormControlLabel from '@mui/material/FormControlLabel';
import Grid from '@mui/material/Grid';
import Link from '@mui/material/Link';
import Stack from '@mui/material/Stack';
import Switch from '@mui/material/Switch';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableContainer from '@mui/material/TableContainer';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import TableSortLabel from '@mui/material/TableSortLabel';
import TextField from '@mui/material/TextField';
import Typography from '@mui/material/Typography';
import { Link as RouterLink } from 'react-router-dom';
import { useApi, useRouteRef } from '@backstage/core-plugin-api';
import { parseEntityRef } from '@backstage/catalog-model';
import { entityRouteParams } from '@backstage/plugin-catalog-react';
import { catalogEntityRouteRef } from '../../routes';
import type { FleetService, FleetSummary } from '@ferry/plugin-ferry-common';
import { ferryApiRef } from '../../api';
import { useLoader } from '../../hooks/useLoader';
import { STATUS_REFRESH_MS } from '../../refresh';
import {
  formatAvailability,
  formatDateTime,
  formatPercent,
  formatUsd,
  formatUsdPerHour,
  savingsShare,
} from '../../format';
import { EmptyPanel, ErrorPanel, LoadingPanel } from '../Feedback';
import { SectionCard } from '../SectionCard';
import { StatBlock } from '../StatBlock';
import { HealthNotice } from '../HealthNotice';
import { RiskChip } from '../PlacementCard';
import { WHOLE_WORD_HEADERS } from '../tableLayout';

type SortKey =
  | 'service'
  | 'spotReplicas'
  | 'hourlyCost'
  | 'savings'
  | 'availability'
  | 'risk'
  | 'migrations';

const COLUMNS: { key: SortKey; label: string; numeric: boolean }[] = [
  { key: 'service', label: 'Service', numeric: false },
  { key: 'spotReplicas', label: 'Replicas on spot', numeric: true },
  { key: 'hourlyCost', label: 'Cost (USD/h)', numeric: true },
  { key: 'savings', label: 'Savings to date', numeric: true },
  { key: 'availability', label: 'Availability vs target', numeric: true },
  { key: 'risk', label: 'Highest pool risk', numeric: true },
  { key: 'migrations', label: 'Migrations', numeric: true },
];

function sortValue(s: FleetService, key: SortKey): number | string {
  switch (key) {
    case 'service':
      return s.entityRef;
    case 'spotReplicas':
      return s.spotReplicas;
    case 'hourlyCost':
      return s.hourlyCostUsd;
    case 'savings':
      return s.savingsToDateUsd;
    case 'availability':
      // By margin over the target: the services closest to breaking it sort together.
      return s.availability - s.availabilityTarget;
    case 'risk':
      return s.maxInterruptionRisk;
    default:
      return s.migrationsTotal;
  }
}

/** Sorts and filters the fleet's services the way the table shows them. */
export function selectServices(
  services: FleetService[],
  options: {
    query: string;
    belowTargetOnly: boolean;
    sortKey: SortKey;
    descending: boolean;
  },
): FleetService[] {
  const query = options.query.trim().toLocaleLowerCase();
  const matches = services.filter(s => {
    if (options.belowTargetOnly && s.availability >= s.availabilityTarget)
      return false;
    if (!query) return true;
    return [
      s.entityRef,
      s.workload.cluster,
      s.workload.namespace,
      s.workload.name,
    ]
      .join(' ')
      .toLocaleLowerCase()
      .includes(query);
  });
  const direction = options.descending ? -1 : 1;
  return matches.sort((a, b) => {
    const x = sortValue(a, options.sortKey);
    const y = sortValue(b, options.sortKey);
    const order =
      typeof x === 'string' ? x.localeCompare(y as string) : x - (y as number);
    return order * direction || a.entityRef.localeCompare(b.entityRef);
  });
}

function ServiceLink(props: { entityRef: string }) {
  const entityRoute = useRouteRef(catalogEntityRouteRef);
  let compound;
  try {
    compound = parseEntityRef(props.entityRef);
  } catch {
    return <>{props.entityRef}</>;
  }
  const label =
    compound.namespace === 'default'
      ? compound.name
      : `${compound.namespace}/${compound.name}`;
  if (!entityRoute) return <>{label}</>;
  return (
    <Link
      component={RouterLink}
      to={`${entityRoute(entityRouteParams(compound))}/spot`}
    >
      {label}
    </Link>
  );
}

function FleetView(props: { fleet: FleetSummary }) {
  const { fleet } = props;
  const [query, setQuery] = useState('');
  const [belowTargetOnly, setBelowTargetOnly] = useState(false);
  const [sortKey, setSortKey] = useState<SortKey>('savings');
  const [descending, setDescending] = useState(true);
  const services = useMemo(
    () =>
      selectServices([...fleet.services], {
        query,
        belowTargetOnly,
        sortKey,
        descending,
      }),
    [fleet.services, query, belowTargetOnly, sortKey, descending],
  );
  const { totals } = fleet;
  const belowTarget = fleet.services.filter(
    s => s.availability < s.availabilityTarget,
  ).length;

  const sortBy = (key: SortKey) => {
    if (key === sortKey) setDescending(d => !d);
    else {
      setSortKey(key);
      setDescending(key !== 'service');
    }
  };

  return (
    <Stack spacing={3}>
      {/* A Box, because Stack's spacing would cancel the Grid's negative margins. */}
      <Box component="section" aria-label="Fleet totals">
        <Grid container spacing={2}>
          <Grid item xs={12} sm={6} md={3}>
            <StatBlock
              tile
              testId="ferry-fleet-services"
              label="Services on Ferry"
              value={totals.services}
              detail={
                belowTarget
                  ? `${belowTarget} below their availability target`
                  : 'all meet their availability target'
              }
            />
          </Grid>
          <Grid item xs={12} sm={6} md={3}>
            <StatBlock
              tile
              testId="ferry-fleet-replicas"
              label="Replicas on spot"
              value={`${totals.spotReplicas} of ${totals.replicas}`}
            />
          </Grid>
          <Grid item xs={12} sm={6} md={3}>
            <StatBlock
              tile
              testId="ferry-fleet-cost"
              label="Hourly cost"
              value={formatUsdPerHour(totals.hourlyCostUsd)}
              detail={`vs ${formatUsdPerHour(
                totals.onDemandHourlyCostUsd,
              )} on demand (${formatPercent(
                savingsShare(
                  totals.hourlyCostUsd,
                  totals.onDemandHourlyCostUsd,
                ),
                0,
              )} less)`}
            />
          </Grid>
          <Grid item xs={12} sm={6} md={3}>
            <StatBlock
              tile
              testId="ferry-fleet-savings"
              label="Savings to date"
              value={formatUsd(totals.savingsToDateUsd)}
            />
          </Grid>
        </Grid>
      </Box>

      <SectionCard
        id="ferry-fleet-services"
        testId="ferry-fleet-services-card"
        title="Services"
        subheader="Every service that runs on Ferry; select a column heading to sort"
      >
        <Stack
          direction="row"
          spacing={2}
          mb={2}
          alignItems="center"
          flexWrap="wrap"
          useFlexGap
        >
          <TextField
            size="small"
            label="Filter services"
            placeholder="name, namespace or cluster"
            value={query}
            onChange={e => setQuery(e.target.value)}
          />
          <FormControlLabel
            control={
              <Switch
                checked={belowTargetOnly}
                onChange={e => setBelowTargetOnly(e.target.checked)}
              />
            }
            label="Only services below their target"
          />
          <Typography variant="body2" color="text.secondary" aria-live="polite">
            {services.length} of {fleet.services.length} services
          </Typography>
        </Stack>
        {services.length === 0 ? (
          <EmptyPanel title="No service matches these filters">
            Clear the filter text or switch off "Only services below their
            target".
          </EmptyPanel>
        ) : (
          <TableContainer>
            <Table
              sx={WHOLE_WORD_HEADERS}
              size="small"
              aria-label="Services on Ferry"
            >
              <TableHead>
                <TableRow>
                  {COLUMNS.map(c => (
                    <TableCell
                      key={c.key}
                      align={c.numeric ? 'right' : 'left'}
                      sortDirection={
                        sortKey === c.key && (descending ? 'desc' : 'asc')
                      }
                    >
                      <TableSortLabel
                        active={sortKey === c.key}
                        direction={
                          sortKey === c.key && descending ? 'desc' : 'asc'
                        }
                        onClick={() => sortBy(c.key)}
                      >
                        {c.label}
                      </TableSortLabel>
                    </TableCell>
                  ))}
                </TableRow>
              </TableHead>
              <TableBody>
                {services.map(s => {
                  const meets = s.availability >= s.availabilityTarget;
                  return (
                    <TableRow key={s.entityRef} data-testid="ferry-fleet-row">
                      <TableCell component="th" scope="row">
                        {s.orphaned ? (
                          // The catalog has no page for it any more.
                          <>{s.entityRef}</>
                        ) : (
                          <ServiceLink entityRef={s.entityRef} />
                        )}
                        <Typography
                          variant="caption"
                          color="text.secondary"
                          component="div"
                        >
                          {s.workload.cluster} / {s.workload.namespace} /{' '}
                          {s.workload.name}
                          {!s.enabled && ' · spot off'}
                        </Typography>
                        {s.orphaned && (
                          <Typography
                            variant="caption"
                            color="warning.main"
                            component="div"
                            data-testid="ferry-fleet-orphaned"
                          >
                            Orphaned: no longer in the catalog. Its SpotPolicy
                            stays in force; remove it with kubectl delete
                            spotpolicy -n {s.workload.namespace}{' '}
                            {s.workload.name}
                          </Typography>
                        )}
                      </TableCell>
                      <TableCell align="right">
                        {s.spotReplicas} of {s.replicas}
                      </TableCell>
                      <TableCell align="right">
                        {formatUsdPerHour(s.hourlyCostUsd)}
                        <Typography
                          variant="caption"
                          color="text.secondary"
                          component="div"
                        >
                          vs {formatUsdPerHour(s.onDemandHourlyCostUsd)}
                        </Typography>
                      </TableCell>
                      <TableCell align="right">
                        {formatUsd(s.savingsToDateUsd)}
                      </TableCell>
                      <TableCell align="right">
                        <Typography
                          variant="body2"
                          component="span"
                          color={meets ? 'success.main' : 'error.main'}
                        >
                          {formatAvailability(s.availability)}
                        </Typography>
                        <Typography
                          variant="caption"
                          color="text.secondary"
                          component="div"
                        >
                          target {formatAvailability(s.availabilityTarget)}
                          {meets ? '' : ' · below target'}
                        </Typography>
                      </TableCell>
                      <TableCell align="right">
                        {s.spotReplicas > 0 ? (
                          <RiskChip risk={s.maxInterruptionRisk} />
                        ) : (
                          '—'
                        )}
                      </TableCell>
                      <TableCell align="right">{s.migrationsTotal}</TableCell>
                    </TableRow>
                  );
                })}
              </TableBody>
            </Table>
          </TableContainer>
        )}
      </SectionCard>

      <SectionCard
        id="ferry-fleet-pools"
        title="Pools at highest risk"
        subheader="Spot pools (zone × instance type) most likely to be reclaimed soon, and how many replicas run in each"
      >
        {fleet.riskiestPools.length === 0 ? (
          <Typography variant="body2" color="text.secondary">
            No replica runs on spot, so no pool puts anything at risk.
          </Typography>
        ) : (
          <TableContainer>
            <Table
              sx={WHOLE_WORD_HEADERS}
              size="small"
              aria-label="Pools at highest risk"
            >
              <TableHead>
                <TableRow>
                  <TableCell>Cluster</TableCell>
                  <TableCell>Zone</TableCell>
                  <TableCell>Instance type</TableCell>
                  <TableCell align="right">Spot price (USD/h)</TableCell>
                  <TableCell align="right">On-demand price (USD/h)</TableCell>
                  <TableCell align="right">Replicas</TableCell>
                  <TableCell>Interruption risk</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {fleet.riskiestPools.map(p => (
                  <TableRow
                    key={`${p.cluster}|${p.zone}|${p.instanceType}`}
                    data-testid="ferry-fleet-pool-row"
                  >
                    <TableCell>{p.cluster}</TableCell>
                    <TableCell>{p.zone}</TableCell>
                    <TableCell>{p.instanceType}</TableCell>
                    <TableCell align="right">
                      {formatUsdPerHour(p.spotPriceUsdPerHour)}
                    </TableCell>
                    <TableCell align="right">
                      {formatUsdPerHour(p.onDemandPriceUsdPerHour)}
                    </TableCell>
                    <TableCell align="right">{p.replicas}</TableCell>
                    <TableCell>
                      <RiskChip risk={p.interruptionRisk} />
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </TableContainer>
        )}
      </SectionCard>
      <Typography variant="caption" color="text.secondary">
        Last reported {formatDateTime(fleet.updatedAt)}
      </Typography>
    </Stack>
  );
}

/** Every service on Ferry: totals, savings, availability against targets, riskiest pools. */
export function FleetPage() {
  const ferryApi = useApi(ferryApiRef);
  const fleet = useLoader(() => ferryApi.getFleet(), [ferryApi], {
    refreshMs: STATUS_REFRESH_MS,
  });

  let body;
  if (fleet.loading) {
    body = <LoadingPanel label="Loading the fleet…" />;
  } else if (!fleet.value) {
    body = (
      <ErrorPanel
        title="Could not load the fleet"
        error={fleet.error!}
        onRetry={fleet.retry}
      />
    );
  } else if (fleet.value.services.length === 0) {
    body = (
      <EmptyPanel
        title="No service runs on Ferry yet"
        testId="ferry-fleet-empty"
      >
        Add the annotation <code>ferry.dev/spot: enabled</code> to a service's{' '}
        <code>catalog-info.yaml</code>, or open the service in the catalog, go
        to its Spot tab and switch on "Run on spot capacity".
      </EmptyPanel>
    );
  } else {
    body = (
      <>
        {fleet.error && (
          <ErrorPanel
            title="Could not refresh the fleet; showing the last figures"
            error={fleet.error}
            onRetry={fleet.retry}
          />
        )}
        <FleetView fleet={fleet.value} />
      </>
    );
  }
  return (
    <Box
      data-testid="ferry-fleet-page"
      p={3}
      component="section"
      aria-labelledby="ferry-fleet-title"
    >
      <Typography
        id="ferry-fleet-title"
        variant="h5"
        component="h2"
        gutterBottom
      >
        Fleet
      </Typography>
      <Typography
        variant="body1"
        color="text.secondary"
        component="p"
        sx={{ mb: 3 }}
      >
        Stateful services on spot capacity, what they save and how available
        they are.
      </Typography>
      <HealthNotice sx={{ mb: 2 }} />
      {body}
    </Box>
  );
}
