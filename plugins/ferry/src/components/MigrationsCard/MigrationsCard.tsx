import { useEffect, useState } from 'react';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Chip from '@mui/material/Chip';
import FormControl from '@mui/material/FormControl';
import InputLabel from '@mui/material/InputLabel';
import List from '@mui/material/List';
import ListItem from '@mui/material/ListItem';
import ListItemButton from '@mui/material/ListItemButton';
import ListItemText from '@mui/material/ListItemText';
import MenuItem from '@mui/material/MenuItem';
import Select from '@mui/material/Select';
import Stack from '@mui/material/Stack';
import { useApi } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import type {
  MigrationOutcome,
  MigrationReason,
  MigrationRecord,
} from '@ferry/plugin-ferry-common';
import { ferryApiRef, MigrationQuery } from '../../api';
import { useLoader } from '../../hooks/useLoader';
import { STATUS_REFRESH_MS } from '../../refresh';
import { formatBytes, formatDateTime, formatDuration } from '../../format';
import { EmptyPanel, ErrorPanel, LoadingPanel } from '../Feedback';
import { SectionCard } from '../SectionCard';
import { MigrationDetails } from './MigrationDetails';
import {
  DRIVER_NAMES,
  OUTCOME_NAMES,
  REASON_NAMES,
  migrationDurationMs,
} from './names';

/** Migrations per page of the timeline. */
export const MIGRATIONS_PAGE_SIZE = 20;

const OUTCOME_COLORS: Record<
  MigrationOutcome,
  'default' | 'success' | 'warning' | 'error' | 'info'
> = {
  running: 'info',
  succeeded: 'success',
  'rolled-back': 'warning',
  failed: 'error',
};

function FilterSelect<T extends string>(props: {
  id: string;
  label: string;
  value: T | '';
  names: Record<T, string>;
  onChange: (value: T | '') => void;
}) {
  return (
    <FormControl size="small" sx={{ minWidth: 200 }}>
      <InputLabel id={`${props.id}-label`}>{props.label}</InputLabel>
      <Select
        labelId={`${props.id}-label`}
        label={props.label}
        value={props.value}
        onChange={e => props.onChange(e.target.value as T | '')}
      >
        <MenuItem value="">Any</MenuItem>
        {(Object.keys(props.names) as T[]).map(k => (
          <MenuItem key={k} value={k}>
            {props.names[k]}
          </MenuItem>
        ))}
      </Select>
    </FormControl>
  );
}

function MigrationSummary(props: { migration: MigrationRecord }) {
  const m = props.migration;
  const took = migrationDurationMs(m);
  return (
    <ListItemText
      primary={
        <Stack
          direction="row"
          spacing={1}
          alignItems="center"
          flexWrap="wrap"
          useFlexGap
        >
          <span>{formatDateTime(m.startedAt)}</span>
          <span>·</span>
          <span>{REASON_NAMES[m.reason]}</span>
          <span>·</span>
          <span>{DRIVER_NAMES[m.driver]}</span>
          <Chip
            size="small"
            color={OUTCOME_COLORS[m.outcome]}
            label={
              m.outcome === 'running'
                ? `Running: ${m.phase}`
                : OUTCOME_NAMES[m.outcome]
            }
          />
        </Stack>
      }
      secondary={[
        `${m.pod}: ${m.sourceNode} → ${m.targetNode ?? '…'}`,
        took !== undefined ? `took ${formatDuration(took)}` : undefined,
        `${formatBytes(m.bytesMoved)} moved`,
        m.writePauseMs !== undefined
          ? `writes paused ${formatDuration(m.writePauseMs)}`
          : undefined,
      ]
        .filter(Boolean)
        .join(' · ')}
    />
  );
}

/** The timeline of an entity's migrations, filterable, each one openable. */
export function MigrationsCard(props: { entityRef: CompoundEntityRef }) {
  const { entityRef } = props;
  const ferryApi = useApi(ferryApiRef);
  const [reason, setReason] = useState<MigrationReason | ''>('');
  const [driver, setDriver] = useState<MigrationRecord['driver'] | ''>('');
  const [outcome, setOutcome] = useState<MigrationOutcome | ''>('');
  const [more, setMore] = useState<{
    items: MigrationRecord[];
    nextCursor?: string;
  }>();
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<Error>();
  const [open, setOpen] = useState<MigrationRecord>();

  const query: MigrationQuery = {
    reason: reason || undefined,
    driver: driver || undefined,
    outcome: outcome || undefined,
    limit: MIGRATIONS_PAGE_SIZE,
  };
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  const first = useLoader(
    () => ferryApi.getMigrations(entityRef, query),
    [ferryApi, refKey, reason, driver, outcome],
    // Once a person pages back in time, refreshing would reshuffle what they read.
    { refreshMs: more ? undefined : STATUS_REFRESH_MS },
  );

  useEffect(() => setMore(undefined), [refKey, reason, driver, outcome]);

  const loadMore = async (cursor: string) => {
    setLoadingMore(true);
    setMoreError(undefined);
    try {
      const page = await ferryApi.getMigrations(entityRef, {
        ...query,
        cursor,
      });
      setMore(m => ({
        items: [...(m?.items ?? []), ...page.items],
        nextCursor: page.nextCursor,
      }));
    } catch (e) {
      setMoreError(e as Error);
    } finally {
      setLoadingMore(false);
    }
  };

  const filtered = Boolean(reason || driver || outcome);
  let body;
  if (first.loading) {
    body = <LoadingPanel label="Loading migrations…" />;
  } else if (!first.value) {
    body = (
      <ErrorPanel
        title="Could not load the migrations"
        error={first.error!}
        onRetry={first.retry}
      />
    );
  } else if (first.value.items.length === 0) {
    body = filtered ? (
      <EmptyPanel
        title="No migrations match these filters"
        action={
          <Button
            onClick={() => {
              setReason('');
              setDriver('');
              setOutcome('');
            }}
          >
            Clear filters
          </Button>
        }
      />
    ) : (
      <EmptyPanel title="No migrations yet">
        When a spot node is reclaimed or drained, Ferry moves the replicas on it
        and each move shows up here with its phases, data moved and write pause.
      </EmptyPanel>
    );
  } else {
    const seen = new Set<string>();
    const items = [...first.value.items, ...(more?.items ?? [])].filter(m =>
      seen.has(m.id) ? false : (seen.add(m.id), true),
    );
    const nextCursor = more ? more.nextCursor : first.value.nextCursor;
    body = (
      <>
        <List aria-label="Migrations, newest first">
          {items.map(m => (
            <ListItem
              key={m.id}
              disablePadding
              data-testid="ferry-migration-row"
              data-outcome={m.outcome}
            >
              <ListItemButton onClick={() => setOpen(m)} aria-haspopup="dialog">
                <MigrationSummary migration={m} />
              </ListItemButton>
            </ListItem>
          ))}
        </List>
        <Box display="flex" alignItems="center" gap={2}>
          {nextCursor && (
            <Button onClick={() => loadMore(nextCursor)} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : 'Show older migrations'}
            </Button>
          )}
          <span>
            {items.length} of {first.value.totalCount} shown
          </span>
        </Box>
        {moreError && (
          <ErrorPanel
            title="Could not load older migrations"
            error={moreError}
            onRetry={() => nextCursor && loadMore(nextCursor)}
          />
        )}
      </>
    );
  }

  return (
    <SectionCard
      id="ferry-migrations"
      title="Migrations"
      subheader="Every move of a replica's state, newest first; open one for its phases"
    >
      <Stack direction="row" spacing={2} mb={2} flexWrap="wrap" useFlexGap>
        <FilterSelect
          id="ferry-filter-reason"
          label="Reason"
          value={reason}
          names={REASON_NAMES}
          onChange={setReason}
        />
        <FilterSelect
          id="ferry-filter-driver"
          label="Driver"
          value={driver}
          names={DRIVER_NAMES}
          onChange={setDriver}
        />
        <FilterSelect
          id="ferry-filter-outcome"
          label="Outcome"
          value={outcome}
          names={OUTCOME_NAMES}
          onChange={setOutcome}
        />
      </Stack>
      {body}
      <MigrationDetails migration={open} onClose={() => setOpen(undefined)} />
    </SectionCard>
  );
}
