import { ReactNode } from 'react';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Dialog from '@mui/material/Dialog';
import DialogActions from '@mui/material/DialogActions';
import DialogContent from '@mui/material/DialogContent';
import DialogTitle from '@mui/material/DialogTitle';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import type {
  MigrationPhaseTiming,
  MigrationRecord,
} from '@ferry/plugin-ferry-common';
import { formatBytes, formatDateTime, formatDuration } from '../../format';
import {
  DRIVER_NAMES,
  OUTCOME_NAMES,
  REASON_NAMES,
  migrationDurationMs,
} from './names';
import { WHOLE_WORD_HEADERS } from '../tableLayout';

function Fact(props: { label: string; children: ReactNode }) {
  return (
    <>
      <Typography component="dt" variant="body2" color="text.secondary">
        {props.label}
      </Typography>
      <Typography component="dd" variant="body2" sx={{ m: 0 }}>
        {props.children}
      </Typography>
    </>
  );
}

const PHASE_COLORS = [
  'primary',
  'secondary',
  'info',
  'success',
  'warning',
] as const;

/**
 * The phases side by side, each as wide as its share of the time: where a
 * migration spent its time at a glance. The table below carries the same
 * figures for screen readers, so the bar is hidden from them.
 */
function PhaseBar(props: { phases: MigrationPhaseTiming[] }) {
  const timed = props.phases.filter(p => (p.durationMs ?? 0) > 0);
  const total = timed.reduce((sum, p) => sum + (p.durationMs ?? 0), 0);
  if (total === 0) return null;
  return (
    <Box
      aria-hidden
      display="flex"
      height={20}
      my={1}
      borderRadius={1}
      overflow="hidden"
    >
      {timed.map((p, i) => (
        <Box
          key={`${p.phase}-${p.startedAt}`}
          title={`${p.phase}: ${formatDuration(p.durationMs!)}`}
          sx={{
            // Very short phases (the write pause) still get a sliver.
            flex: `${Math.max(p.durationMs! / total, 0.02)} 0 0`,
            bgcolor: `${PHASE_COLORS[i % PHASE_COLORS.length]}.main`,
            color: `${PHASE_COLORS[i % PHASE_COLORS.length]}.contrastText`,
            fontSize: 11,
            px: 0.5,
            whiteSpace: 'nowrap',
            overflow: 'hidden',
            textOverflow: 'ellipsis',
          }}
        >
          {p.phase}
        </Box>
      ))}
    </Box>
  );
}

/** One migration in full: nodes, driver, every phase with its duration. */
export function MigrationDetails(props: {
  migration?: MigrationRecord;
  onClose: () => void;
}) {
  const m = props.migration;
  const total = m ? migrationDurationMs(m) : undefined;
  return (
    <Dialog
      open={Boolean(m)}
      onClose={props.onClose}
      maxWidth="md"
      fullWidth
      aria-labelledby="ferry-migration-details-title"
    >
      {m && (
        <>
          <DialogTitle id="ferry-migration-details-title">
            Migration of {m.pod}
          </DialogTitle>
          <DialogContent data-testid="ferry-migration-details">
            <Box
              component="dl"
              sx={{
                display: 'grid',
                gridTemplateColumns: 'max-content 1fr',
                columnGap: 3,
                rowGap: 1,
                mt: 0,
              }}
            >
              <Fact label="Outcome">{OUTCOME_NAMES[m.outcome]}</Fact>
              <Fact label="Reason">{REASON_NAMES[m.reason]}</Fact>
              <Fact label="Driver">{DRIVER_NAMES[m.driver]}</Fact>
              <Fact label="From node">{m.sourceNode}</Fact>
              <Fact label="To node">{m.targetNode ?? 'not chosen yet'}</Fact>
              <Fact label="Workload">
                {m.cluster} / {m.namespace} / {m.workload}
              </Fact>
              <Fact label="Started">{formatDateTime(m.startedAt)}</Fact>
              <Fact label="Took">
                {total !== undefined ? formatDuration(total) : 'still running'}
              </Fact>
              <Fact label="Data moved">{formatBytes(m.bytesMoved)}</Fact>
              <Fact label="Writes paused">
                {m.writePauseMs !== undefined
                  ? formatDuration(m.writePauseMs)
                  : 'no pause'}
              </Fact>
              {m.message && <Fact label="Message">{m.message}</Fact>}
            </Box>
            <Typography variant="subtitle2" component="h3" sx={{ mt: 2 }}>
              Phases
            </Typography>
            <PhaseBar phases={m.phases} />
            <Table sx={WHOLE_WORD_HEADERS} size="small" aria-label="Phases">
              <TableHead>
                <TableRow>
                  <TableCell>Phase</TableCell>
                  <TableCell>Started</TableCell>
                  <TableCell align="right">Duration</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {m.phases.map(p => (
                  <TableRow
                    key={`${p.phase}-${p.startedAt}`}
                    data-testid="ferry-migration-phase"
                  >
                    <TableCell>{p.phase}</TableCell>
                    <TableCell>{formatDateTime(p.startedAt)}</TableCell>
                    <TableCell align="right">
                      {p.durationMs !== undefined
                        ? formatDuration(p.durationMs)
                        : 'running'}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </DialogContent>
          <DialogActions>
            <Button onClick={props.onClose}>Close</Button>
          </DialogActions>
        </>
      )}
    </Dialog>
  );
}
