import { screen, within } from '@testing-library/react';
import { entityStatus } from '../../__testUtils__/fixtures';
import { renderWithFerry } from '../../__testUtils__/render';
import { PlacementCard, poolsOf } from './PlacementCard';

describe('PlacementCard', () => {
  it('shows each replica and the pools, riskiest first, with risk in words', async () => {
    await renderWithFerry(<PlacementCard replicas={entityStatus.replicas} />);
    const table = screen.getByRole('table', { name: 'Replicas' });
    expect(
      within(table)
        .getAllByRole('columnheader')
        .map(h => h.textContent),
    ).toEqual([
      'Pod',
      'Capacity',
      'Zone',
      'Instance type',
      'Node',
      'Cost (USD/h)',
      'Interruption risk',
      'Ready',
    ]);
    expect(
      within(table).getByRole('rowheader', { name: 'sessions-0' }),
    ).toBeInTheDocument();
    const pools = screen.getAllByTestId('ferry-pool-row');
    expect(pools.map(p => p.textContent)).toEqual([
      expect.stringContaining('eu-west-1c'),
      expect.stringContaining('eu-west-1b'),
      expect.stringContaining('eu-west-1a'),
    ]);
    expect(pools[0]).toHaveTextContent('24 % · high');
    expect(pools[2]).toHaveTextContent('not reclaimable');
  });

  it('says what to check when no replica runs', async () => {
    await renderWithFerry(<PlacementCard replicas={[]} />);
    expect(screen.getByText('No replicas are running')).toBeInTheDocument();
    expect(
      screen.getByText(/Check that the workload is deployed/),
    ).toBeInTheDocument();
  });

  it('groups replicas of one pool together', () => {
    const twoInOnePool = [
      entityStatus.replicas[1],
      {
        ...entityStatus.replicas[1],
        pod: 'sessions-3',
        interruptionRisk: 0.07,
      },
    ];
    expect(poolsOf(twoInOnePool)).toEqual([
      expect.objectContaining({
        zone: 'eu-west-1b',
        replicas: 2,
        interruptionRisk: 0.07,
      }),
    ]);
  });

  it('shows a cost the operator could not price as unknown, not $0.000/h', async () => {
    const [priced, ...rest] = entityStatus.replicas;
    const unpriced = rest.map(r => ({ ...r, hourlyCostUsd: 0 }));
    await renderWithFerry(
      <PlacementCard replicas={[priced, ...unpriced]} pricesMissing />,
    );
    const rows = screen.getAllByTestId('ferry-replica-row');
    expect(rows[0]).toHaveTextContent('/h');
    for (const row of rows.slice(1)) {
      expect(row).toHaveTextContent('unknown');
      expect(row).not.toHaveTextContent('$0.000/h');
    }
    const pools = screen.getAllByTestId('ferry-pool-row');
    expect(pools.filter(p => /unknown/.test(p.textContent ?? ''))).toHaveLength(
      poolsOf(unpriced).length,
    );
  });
});
