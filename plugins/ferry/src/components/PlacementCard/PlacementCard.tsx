import Box from '@mui/material/Box';
import Chip from '@mui/material/Chip';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableContainer from '@mui/material/TableContainer';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import Typography from '@mui/material/Typography';
import type {
  CapacityType,
  ReplicaPlacement,
} from '@ferry/plugin-ferry-common';
import { formatPercent, formatUsdPerHour } from '../../format';
import { isUnpriced } from '../../prices';
import { riskColor, riskLevel } from '../../risk';
import { EmptyPanel } from '../Feedback';
import { SectionCard } from '../SectionCard';
import { WHOLE_WORD_HEADERS } from '../tableLayout';

/** A (zone × instance type × capacity) pool and the replicas in it. */
export interface PlacementPool {
  zone: string;
  instanceType: string;
  capacityType: CapacityType;
  replicas: number;
  hourlyCostUsd: number;
  /** Replicas of the pool the operator has no price for (left out of hourlyCostUsd). */
  unpriced: number;
  /** Highest risk among the pool's replicas; 0 for permanent capacity. */
  interruptionRisk: number;
}

/** Groups replicas by pool, riskiest first. */
export function poolsOf(
  replicas: ReplicaPlacement[],
  pricesMissing = false,
): PlacementPool[] {
  const pools = new Map<string, PlacementPool>();
  for (const r of replicas) {
    const key = `${r.zone}|${r.instanceType}|${r.capacityType}`;
    const pool = pools.get(key) ?? {
      zone: r.zone,
      instanceType: r.instanceType,
      capacityType: r.capacityType,
      replicas: 0,
      hourlyCostUsd: 0,
      unpriced: 0,
      interruptionRisk: 0,
    };
    pool.replicas++;
    pool.hourlyCostUsd += r.hourlyCostUsd;
    if (isUnpriced(r, pricesMissing)) pool.unpriced++;
    if (r.capacityType === 'spot') {
      pool.interruptionRisk = Math.max(
        pool.interruptionRisk,
        r.interruptionRisk,
      );
    }
    pools.set(key, pool);
  }
  return [...pools.values()].sort(
    (a, b) =>
      b.interruptionRisk - a.interruptionRisk ||
      a.zone.localeCompare(b.zone) ||
      a.instanceType.localeCompare(b.instanceType),
  );
}

/** Spot or permanent, said in words as well as colour. */
export function CapacityChip(props: { capacityType: CapacityType }) {
  return props.capacityType === 'spot' ? (
    <Chip size="small" color="primary" label="Spot" />
  ) : (
    <Chip size="small" variant="outlined" label="Permanent" />
  );
}

/** A risk as a percentage with its band in words. */
export function RiskChip(props: { risk: number }) {
  const level = riskLevel(props.risk);
  return (
    <Chip
      size="small"
      variant="outlined"
      color={riskColor(level)}
      label={`${formatPercent(props.risk, 0)} · ${level}`}
    />
  );
}

/** A cost the operator could not price reads as unknown, never as $0.000/h. */
function CostCell(props: { usdPerHour: number; unknown: boolean }) {
  return (
    <TableCell align="right">
      {props.unknown ? (
        <Typography
          variant="body2"
          color="text.secondary"
          component="span"
          title="The operator has no price for this pool: see the PricesKnown condition"
        >
          unknown
        </Typography>
      ) : (
        formatUsdPerHour(props.usdPerHour)
      )}
    </TableCell>
  );
}

/** Where an entity's replicas run and how risky each pool is. */
export function PlacementCard(props: {
  replicas: ReplicaPlacement[];
  /** The operator's PricesKnown condition is False: a cost of 0 is unknown. */
  pricesMissing?: boolean;
}) {
  const { replicas, pricesMissing = false } = props;
  const pools = poolsOf(replicas, pricesMissing);
  return (
    <SectionCard
      id="ferry-placement"
      title="Placement"
      subheader="Where each replica runs: zone, instance type, spot or permanent capacity"
    >
      {replicas.length === 0 ? (
        <EmptyPanel title="No replicas are running">
          The operator has not reported any pods for this workload. Check that
          the workload is deployed and that its pods match the entity's
          Kubernetes annotations.
        </EmptyPanel>
      ) : (
        <>
          <TableContainer>
            <Table sx={WHOLE_WORD_HEADERS} size="small" aria-label="Replicas">
              <TableHead>
                <TableRow>
                  <TableCell>Pod</TableCell>
                  <TableCell>Capacity</TableCell>
                  <TableCell>Zone</TableCell>
                  <TableCell>Instance type</TableCell>
                  <TableCell>Node</TableCell>
                  <TableCell align="right">Cost (USD/h)</TableCell>
                  <TableCell>Interruption risk</TableCell>
                  <TableCell>Ready</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {replicas.map(r => (
                  <TableRow
                    key={r.pod}
                    data-testid="ferry-replica-row"
                    data-capacity={r.capacityType}
                  >
                    <TableCell component="th" scope="row">
                      {r.pod}
                    </TableCell>
                    <TableCell>
                      <CapacityChip capacityType={r.capacityType} />
                    </TableCell>
                    <TableCell>{r.zone}</TableCell>
                    <TableCell>{r.instanceType}</TableCell>
                    <TableCell>{r.node}</TableCell>
                    <CostCell
                      usdPerHour={r.hourlyCostUsd}
                      unknown={isUnpriced(r, pricesMissing)}
                    />
                    <TableCell>
                      {r.capacityType === 'spot' ? (
                        <RiskChip risk={r.interruptionRisk} />
                      ) : (
                        <Typography variant="body2" color="text.secondary">
                          not reclaimable
                        </Typography>
                      )}
                    </TableCell>
                    <TableCell>{r.ready ? 'Ready' : 'Not ready'}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </TableContainer>
          <Box mt={3}>
            <Typography variant="subtitle2" component="h3" gutterBottom>
              Pools
            </Typography>
            <TableContainer>
              <Table
                sx={WHOLE_WORD_HEADERS}
                size="small"
                aria-label="Pools by risk"
              >
                <TableHead>
                  <TableRow>
                    <TableCell>Zone</TableCell>
                    <TableCell>Instance type</TableCell>
                    <TableCell>Capacity</TableCell>
                    <TableCell align="right">Replicas</TableCell>
                    <TableCell align="right">Cost (USD/h)</TableCell>
                    <TableCell>Interruption risk</TableCell>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {pools.map(p => (
                    <TableRow
                      key={`${p.zone}|${p.instanceType}|${p.capacityType}`}
                      data-testid="ferry-pool-row"
                    >
                      <TableCell>{p.zone}</TableCell>
                      <TableCell>{p.instanceType}</TableCell>
                      <TableCell>
                        <CapacityChip capacityType={p.capacityType} />
                      </TableCell>
                      <TableCell align="right">{p.replicas}</TableCell>
                      <CostCell
                        usdPerHour={p.hourlyCostUsd}
                        unknown={p.unpriced > 0}
                      />
                      <TableCell>
                        {p.capacityType === 'spot' ? (
                          <RiskChip risk={p.interruptionRisk} />
                        ) : (
                          <Typography variant="body2" color="text.secondary">
                            not reclaimable
                          </Typography>
                        )}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </TableContainer>
          </Box>
        </>
      )}
    </SectionCard>
  );
}
