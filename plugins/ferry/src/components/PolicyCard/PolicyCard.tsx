import { ReactNode, useEffect, useMemo, useState } from 'react';
import Alert from '@mui/material/Alert';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import FormControl from '@mui/material/FormControl';
import FormControlLabel from '@mui/material/FormControlLabel';
import FormHelperText from '@mui/material/FormHelperText';
import Grid from '@mui/material/Grid';
import InputLabel from '@mui/material/InputLabel';
import List from '@mui/material/List';
import ListItem from '@mui/material/ListItem';
import ListItemText from '@mui/material/ListItemText';
import MenuItem from '@mui/material/MenuItem';
import Select from '@mui/material/Select';
import Slider from '@mui/material/Slider';
import Stack from '@mui/material/Stack';
import Switch from '@mui/material/Switch';
import Typography from '@mui/material/Typography';
import { useApi } from '@backstage/core-plugin-api';
import type { CompoundEntityRef } from '@backstage/catalog-model';
import type {
  EntitySpotStatus,
  MigrationMethod,
  PolicySource,
  PolicyUpdate,
  PolicyView,
  SpotPolicySettings,
} from '@ferry/plugin-ferry-common';
import { ferryApiRef } from '../../api';
import { useLoader } from '../../hooks/useLoader';
import {
  formatAvailability,
  formatDateTime,
  formatPercent,
  formatUsd,
  formatUsdPerHour,
} from '../../format';
import { previewPolicy } from '../../policy/preview';
import { ErrorPanel, LoadingPanel, isForbidden } from '../Feedback';
import { SectionCard } from '../SectionCard';

/** The availability targets offered, as SLA tiers people already know. */
export const AVAILABILITY_TARGETS = [0.99, 0.995, 0.999, 0.9995, 0.9999];

/** The idle periods offered before members hibernate (`hibernateAfter`), with their names. */
export const HIBERNATE_AFTER_CHOICES: Record<string, string> = {
  '10m': '10 minutes',
  '30m': '30 minutes',
  '1h': '1 hour',
  '4h': '4 hours',
  '24h': '1 day',
};

/** The select's value for "never": the field's absence. */
const NEVER = 'never';

function hibernateAfterName(value: string | undefined): string {
  if (!value) return 'never';
  return HIBERNATE_AFTER_CHOICES[value] ?? value;
}

/** What each hibernation phase means to a person. */
const HIBERNATION_PHASES: Record<string, string> = {
  RUNNING: 'awake',
  HIBERNATING: 'going to sleep',
  SCALED_DOWN: 'asleep, its requests released',
  WAKING: 'waking',
};

/** What each migration method does, in a sentence. */
export const MIGRATION_METHODS: Record<MigrationMethod, string> = {
  auto: 'Auto — Ferry picks the best driver for each member',
  valkey: 'Valkey hand-off — a new member replicates, then takes over',
  checkpoint: 'Checkpoint — the whole process moves with CRIU',
  volume: 'Volume — the persistent volume follows the pod',
  reschedule: 'Reschedule — plain eviction, for state kept elsewhere',
};

const SOURCE_NAMES: Record<PolicySource, string> = {
  catalog: 'catalog-info.yaml annotations',
  portal: 'the portal',
  api: 'the REST API',
  workload: "the workload's own ferry.dev annotations",
};

function changesOf(
  from: SpotPolicySettings,
  to: SpotPolicySettings,
): PolicyUpdate {
  const update: PolicyUpdate = {};
  if (from.enabled !== to.enabled) update.enabled = to.enabled;
  if (from.permanentRatio !== to.permanentRatio)
    update.permanentRatio = to.permanentRatio;
  if (from.availabilityTarget !== to.availabilityTarget)
    update.availabilityTarget = to.availabilityTarget;
  if (from.migration !== to.migration) update.migration = to.migration;
  if (from.hibernateAfter !== to.hibernateAfter)
    update.hibernateAfter = to.hibernateAfter ?? null;
  return update;
}

/** A policy change in words: what changed, from what to what. */
export function describeChange(
  before: SpotPolicySettings | undefined,
  after: SpotPolicySettings,
): string {
  if (!before) {
    return `Set: spot ${after.enabled ? 'on' : 'off'}, ${formatPercent(
      after.permanentRatio,
      0,
    )} permanent, target ${formatAvailability(
      after.availabilityTarget,
    )}, method ${after.migration}${
      after.hibernateAfter ? `, hibernate after ${after.hibernateAfter}` : ''
    }`;
  }
  const parts: string[] = [];
  if (before.enabled !== after.enabled) {
    parts.push(after.enabled ? 'Spot switched on' : 'Spot switched off');
  }
  if (before.permanentRatio !== after.permanentRatio) {
    parts.push(
      `permanent ${formatPercent(before.permanentRatio, 0)} → ${formatPercent(
        after.permanentRatio,
        0,
      )}`,
    );
  }
  if (before.availabilityTarget !== after.availabilityTarget) {
    parts.push(
      `target ${formatAvailability(
        before.availabilityTarget,
      )} → ${formatAvailability(after.availabilityTarget)}`,
    );
  }
  if (before.migration !== after.migration) {
    parts.push(`method ${before.migration} → ${after.migration}`);
  }
  if (before.hibernateAfter !== after.hibernateAfter) {
    parts.push(
      `hibernate after ${before.hibernateAfter ?? 'never'} → ${
        after.hibernateAfter ?? 'never'
      }`,
    );
  }
  return parts.length > 0 ? parts.join(', ') : 'No change';
}

function PolicyPreviewPanel(props: {
  status?: EntitySpotStatus;
  saved: SpotPolicySettings;
  draft: SpotPolicySettings;
}) {
  const { status, saved, draft } = props;
  if (!status || status.replicas.length === 0) {
    return (
      <Alert severity="info" data-testid="ferry-policy-preview">
        A preview of cost and risk appears once the operator reports where this
        service's replicas run.
      </Alert>
    );
  }
  const before = previewPolicy(status, saved);
  const after = previewPolicy(status, draft);
  const delta = after.hourlyCostUsd - before.hourlyCostUsd;
  return (
    <Box
      component="section"
      aria-label="Preview of the change"
      aria-live="polite"
      data-testid="ferry-policy-preview"
      sx={{ border: 1, borderColor: 'divider', borderRadius: 1, p: 2 }}
    >
      <Typography variant="subtitle2" component="h3" gutterBottom>
        What this policy does
      </Typography>
      <Typography variant="body2" component="p">
        {after.permanentReplicas} of {after.replicas} replicas on permanent
        capacity, {after.spotReplicas} on spot.
      </Typography>
      <Typography variant="body2" component="p">
        About {formatUsdPerHour(after.hourlyCostUsd)} against{' '}
        {formatUsdPerHour(after.onDemandHourlyCostUsd)} on demand: saves about{' '}
        {formatUsd(after.monthlySavingsUsd)} a month
        {delta !== 0 && (
          <>
            {' '}
            ({delta < 0 ? 'cheaper' : 'dearer'} than now by{' '}
            {formatUsdPerHour(Math.abs(delta))})
          </>
        )}
        .
      </Typography>
      <Typography variant="body2" component="p">
        {after.spotReplicas === 0
          ? 'No replica can be reclaimed.'
          : `Chance a spot replica is reclaimed within the prediction horizon: ${formatPercent(
              after.interruptionChance,
              0,
            )}.`}{' '}
        {after.quorumOnPermanent
          ? 'The permanent replicas alone keep the quorum.'
          : 'The quorum depends on spot replicas: Ferry migrates them before their nodes go, one at a time.'}
      </Typography>
      {after.estimated && after.spotReplicas > 0 && (
        <Typography variant="caption" color="text.secondary" component="p">
          Estimated: nothing runs on spot yet, so spot prices and risk are
          typical figures, not this service's.
        </Typography>
      )}
    </Box>
  );
}

/**
 * Where each member is in hibernation, and why a member may not sleep (open
 * connections of its own to other services, a quorum it holds), as the
 * operator last reported it.
 */
function HibernationPanel(props: { members: PolicyView['hibernation'] }) {
  const members = props.members ?? [];
  if (members.length === 0) return null;
  const refused = members.filter(m => m.refusal);
  return (
    <Box
      component="section"
      aria-label="Hibernation"
      data-testid="ferry-policy-hibernation"
    >
      <Typography variant="subtitle2" component="h3" gutterBottom>
        Hibernation
      </Typography>
      {refused.map(m => (
        <Alert
          key={m.pod}
          severity="warning"
          sx={{ mb: 1 }}
          data-testid="ferry-hibernation-refused"
        >
          {m.pod} does not hibernate: {m.refusal}
        </Alert>
      ))}
      <Typography variant="body2" component="p">
        {members
          .filter(m => m.phase)
          .map(m => `${m.pod} ${HIBERNATION_PHASES[m.phase!] ?? m.phase}`)
          .join(', ')}
      </Typography>
    </Box>
  );
}

/**
 * The opt-in form: spot on or off, the permanent ratio, the availability
 * target, the migration method and the idle period before members hibernate,
 * with a preview before saving. People who may not change the policy see it
 * read-only with the reason.
 */
export function PolicyCard(props: {
  entityRef: CompoundEntityRef;
  status?: EntitySpotStatus;
  onSaved?: (view: PolicyView) => void;
}) {
  const { entityRef, status, onSaved } = props;
  const ferryApi = useApi(ferryApiRef);
  const refKey = `${entityRef.kind}:${entityRef.namespace}/${entityRef.name}`;
  const loaded = useLoader(
    () => ferryApi.getPolicy(entityRef),
    [ferryApi, refKey],
  );
  const [view, setView] = useState<PolicyView>();
  const [draft, setDraft] = useState<SpotPolicySettings>();
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<Error>();
  const [savedNote, setSavedNote] = useState<string>();
  const [showHistory, setShowHistory] = useState(false);

  useEffect(() => {
    if (loaded.value) {
      setView(loaded.value);
      setDraft(loaded.value.policy);
    }
  }, [loaded.value]);

  const changes = useMemo(
    () => (view && draft ? changesOf(view.policy, draft) : {}),
    [view, draft],
  );
  const dirty = Object.keys(changes).length > 0;

  const card = (children: ReactNode) => (
    <SectionCard
      id="ferry-policy"
      title="Spot policy"
      subheader="Whether this service runs on spot, and how carefully"
    >
      {children}
    </SectionCard>
  );

  if (loaded.loading)
    return card(<LoadingPanel label="Loading the spot policy…" />);
  if (!view || !draft) {
    return card(
      <ErrorPanel
        title="Could not load the spot policy"
        error={loaded.error ?? new Error('No policy returned')}
        onRetry={loaded.retry}
      />,
    );
  }

  const readOnly = !view.canUpdate;
  const history = [...view.history].sort((a, b) =>
    b.changedAt.localeCompare(a.changedAt),
  );
  const save = async () => {
    setSaving(true);
    setSaveError(undefined);
    setSavedNote(undefined);
    try {
      const next = await ferryApi.updatePolicy(entityRef, changes);
      setView(next);
      setDraft(next.policy);
      setSavedNote(
        next.policy.enabled
          ? 'Saved. The operator is placing the replicas; the placement below follows within a minute.'
          : 'Saved. The operator is moving every replica back to permanent capacity.',
      );
      onSaved?.(next);
    } catch (e) {
      setSaveError(e as Error);
    } finally {
      setSaving(false);
    }
  };

  return card(
    <Stack spacing={2}>
      {readOnly && (
        <Alert severity="info" data-testid="ferry-policy-read-only">
          You can see this policy but not change it.{' '}
          {view.readOnlyReason ??
            'Changing it needs the ferry.policy.update permission, which the owners of this service hold.'}
        </Alert>
      )}
      <Typography variant="body2" color="text.secondary" component="p">
        Last set from {SOURCE_NAMES[view.source]}
        {history[0] && (
          <>
            {' '}
            by {history[0].changedBy} on {formatDateTime(history[0].changedAt)}
          </>
        )}
        .
        {view.source === 'catalog' &&
          Object.keys(view.annotations).length > 0 && (
            <>
              {' '}
              Annotations:{' '}
              {Object.entries(view.annotations)
                .map(([k, v]) => `${k}: ${v}`)
                .join(', ')}
              .
            </>
          )}
      </Typography>
      {/* A Box, because Stack's spacing would cancel the Grid's negative margins. */}
      <Box>
        <Grid container spacing={3}>
          <Grid item xs={12} md={6}>
            <Stack spacing={3}>
              <Box>
                <FormControlLabel
                  control={
                    <Switch
                      checked={draft.enabled}
                      disabled={readOnly || saving}
                      onChange={e =>
                        setDraft({ ...draft, enabled: e.target.checked })
                      }
                      inputProps={{ 'aria-describedby': 'ferry-enabled-help' }}
                    />
                  }
                  label="Run on spot capacity"
                />
                <FormHelperText id="ferry-enabled-help">
                  Spot nodes cost far less but can be reclaimed; Ferry moves
                  each replica's state off a node before it goes.
                </FormHelperText>
              </Box>
              <Box>
                <Typography id="ferry-ratio-label" variant="body2" gutterBottom>
                  Replicas kept on permanent capacity:{' '}
                  <strong>{formatPercent(draft.permanentRatio, 0)}</strong>
                </Typography>
                <Slider
                  aria-labelledby="ferry-ratio-label"
                  value={draft.permanentRatio}
                  min={0}
                  max={1}
                  step={0.05}
                  marks={[
                    { value: 0, label: '0 %' },
                    { value: 0.5, label: '50 %' },
                    { value: 1, label: '100 %' },
                  ]}
                  valueLabelDisplay="auto"
                  valueLabelFormat={v => formatPercent(v, 0)}
                  getAriaValueText={v => formatPercent(v, 0)}
                  disabled={readOnly || saving || !draft.enabled}
                  onChange={(_, v) =>
                    setDraft({ ...draft, permanentRatio: v as number })
                  }
                />
              </Box>
              <FormControl fullWidth size="small" disabled={readOnly || saving}>
                <InputLabel id="ferry-target-label">
                  Availability target
                </InputLabel>
                <Select
                  labelId="ferry-target-label"
                  label="Availability target"
                  value={draft.availabilityTarget}
                  onChange={e =>
                    setDraft({
                      ...draft,
                      availabilityTarget: Number(e.target.value),
                    })
                  }
                >
                  {[
                    ...new Set([
                      ...AVAILABILITY_TARGETS,
                      view.policy.availabilityTarget,
                    ]),
                  ]
                    .sort((a, b) => a - b)
                    .map(t => (
                      <MenuItem key={t} value={t}>
                        {formatAvailability(t)}
                      </MenuItem>
                    ))}
                </Select>
                <FormHelperText>
                  Ferry never moves a member if that would take the service
                  below it.
                </FormHelperText>
              </FormControl>
              <FormControl fullWidth size="small" disabled={readOnly || saving}>
                <InputLabel id="ferry-method-label">
                  Migration method
                </InputLabel>
                <Select
                  labelId="ferry-method-label"
                  label="Migration method"
                  value={draft.migration}
                  onChange={e =>
                    setDraft({
                      ...draft,
                      migration: e.target.value as MigrationMethod,
                    })
                  }
                >
                  {(Object.keys(MIGRATION_METHODS) as MigrationMethod[]).map(
                    m => (
                      <MenuItem key={m} value={m}>
                        {MIGRATION_METHODS[m]}
                      </MenuItem>
                    ),
                  )}
                </Select>
              </FormControl>
              <FormControl fullWidth size="small" disabled={readOnly || saving}>
                <InputLabel id="ferry-hibernate-label">
                  Hibernate when idle
                </InputLabel>
                <Select
                  labelId="ferry-hibernate-label"
                  label="Hibernate when idle"
                  value={draft.hibernateAfter ?? NEVER}
                  onChange={e => {
                    const { hibernateAfter: _was, ...rest } = draft;
                    setDraft(
                      e.target.value === NEVER
                        ? rest
                        : { ...rest, hibernateAfter: String(e.target.value) },
                    );
                  }}
                  inputProps={{ 'aria-describedby': 'ferry-hibernate-help' }}
                >
                  <MenuItem value={NEVER}>Never</MenuItem>
                  {[
                    ...new Set([
                      ...Object.keys(HIBERNATE_AFTER_CHOICES),
                      ...(view.policy.hibernateAfter
                        ? [view.policy.hibernateAfter]
                        : []),
                    ]),
                  ].map(value => (
                    <MenuItem key={value} value={value}>
                      After {hibernateAfterName(value)} without traffic
                    </MenuItem>
                  ))}
                </Select>
                <FormHelperText id="ferry-hibernate-help">
                  An idle member is checkpointed in place and its requests
                  released; the first connection wakes it with its memory. Spot
                  or not. Only a lone member running with the ferry runtime
                  class sleeps.
                </FormHelperText>
              </FormControl>
            </Stack>
          </Grid>
          <Grid item xs={12} md={6}>
            <PolicyPreviewPanel
              status={status}
              saved={view.policy}
              draft={draft}
            />
          </Grid>
        </Grid>
      </Box>
      <HibernationPanel members={view.hibernation} />
      {history.length > 0 && (
        <Box>
          <Button
            size="small"
            aria-expanded={showHistory}
            aria-controls="ferry-policy-history"
            onClick={() => setShowHistory(v => !v)}
          >
            {showHistory
              ? 'Hide change history'
              : `Show change history (${history.length})`}
          </Button>
          {showHistory && (
            <List
              dense
              id="ferry-policy-history"
              aria-label="Policy changes, newest first"
            >
              {history.map(change => (
                <ListItem
                  key={change.id}
                  disableGutters
                  data-testid="ferry-policy-change"
                >
                  <ListItemText
                    primary={describeChange(change.before, change.after)}
                    secondary={`${formatDateTime(change.changedAt)} · ${
                      change.changedBy
                    } · from ${SOURCE_NAMES[change.source]}`}
                  />
                </ListItem>
              ))}
            </List>
          )}
        </Box>
      )}
      {saveError && (
        <ErrorPanel
          title="The policy was not saved"
          error={saveError}
          hint={
            isForbidden(saveError)
              ? 'You need the ferry.policy.update permission for this service; ask one of its owners.'
              : 'Your changes are still here; try saving again.'
          }
        />
      )}
      {savedNote && (
        <Alert severity="success" data-testid="ferry-policy-saved">
          {savedNote}
        </Alert>
      )}
      {!readOnly && (
        <Stack direction="row" spacing={1}>
          <Button
            variant="contained"
            onClick={save}
            disabled={!dirty || saving}
            data-testid="ferry-policy-save"
          >
            {saving ? 'Saving…' : 'Save policy'}
          </Button>
          <Button
            onClick={() => setDraft(view.policy)}
            disabled={!dirty || saving}
          >
            Discard changes
          </Button>
        </Stack>
      )}
    </Stack>,
  );
}
