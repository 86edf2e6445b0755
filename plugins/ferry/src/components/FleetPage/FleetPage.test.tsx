import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  fleetSummary,
  mockFerryApi,
  responseError,
} from '../../__testUtils__/fixtures';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { ferryApiRef } from '../../api';
import { renderWithFerry } from '../../__testUtils__/render';
import { FleetPage } from './FleetPage';

function serviceNames() {
  return screen
    .getAllByTestId('ferry-fleet-row')
    .map(row => within(row).getByRole('link').textContent);
}

describe('FleetPage', () => {
  it('shows the totals, every service and the riskiest pools', async () => {
    await renderWithFerry(<FleetPage />);

    expect(await screen.findByTestId('ferry-fleet-savings')).toHaveTextContent(
      '$1,534.56',
    );
    expect(screen.getByTestId('ferry-fleet-services')).toHaveTextContent('2');
    expect(screen.getByTestId('ferry-fleet-services')).toHaveTextContent(
      '1 below their availability target',
    );
    expect(screen.getByTestId('ferry-fleet-replicas')).toHaveTextContent(
      '5 of 8',
    );
    expect(screen.getByTestId('ferry-fleet-cost')).toHaveTextContent(
      '$0.686/h',
    );

    const rows = screen.getAllByTestId('ferry-fleet-row');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent('sessions');
    expect(rows[0]).toHaveTextContent('2 of 3');
    expect(rows[0]).toHaveTextContent('$1,234.56');
    expect(rows[1]).toHaveTextContent('below target');
    expect(
      within(rows[0]).getByRole('link', { name: 'sessions' }),
    ).toHaveAttribute('href', '/catalog/default/component/sessions/spot');

    const pools = screen.getAllByTestId('ferry-fleet-pool-row');
    expect(pools).toHaveLength(1);
    expect(pools[0]).toHaveTextContent('eu-west-1c');
    expect(pools[0]).toHaveTextContent('24 % · high');
  });

  it('sorts by a column and filters by text and by target', async () => {
    await renderWithFerry(<FleetPage />);
    await screen.findAllByTestId('ferry-fleet-row');
    expect(serviceNames()).toEqual(['sessions', 'orders-queue']);

    await userEvent.click(screen.getByRole('button', { name: 'Service' }));
    expect(serviceNames()).toEqual(['orders-queue', 'sessions']);
    await userEvent.click(screen.getByRole('button', { name: 'Service' }));
    expect(serviceNames()).toEqual(['sessions', 'orders-queue']);
    await userEvent.click(
      screen.getByRole('button', { name: 'Highest pool risk' }),
    );
    expect(serviceNames()).toEqual(['sessions', 'orders-queue']);

    await userEvent.type(
      screen.getByRole('textbox', { name: 'Filter services' }),
      'orders',
    );
    expect(serviceNames()).toEqual(['orders-queue']);
    await userEvent.clear(
      screen.getByRole('textbox', { name: 'Filter services' }),
    );

    await userEvent.click(
      screen.getByRole('checkbox', {
        name: 'Only services below their target',
      }),
    );
    expect(serviceNames()).toEqual(['orders-queue']);
    expect(screen.getByText('1 of 2 services')).toBeInTheDocument();
  });

  it('marks a service whose entity left the catalog as orphaned, with how to remove its policy', async () => {
    const [first, second] = fleetSummary.services;
    await renderWithFerry(
      <FleetPage />,
      mockFerryApi({
        getFleet: jest.fn(async () => ({
          ...fleetSummary,
          services: [first, { ...second, orphaned: true }],
        })),
      }),
    );
    const orphaned = await screen.findByTestId('ferry-fleet-orphaned');
    expect(orphaned).toHaveTextContent('Orphaned: no longer in the catalog');
    expect(orphaned).toHaveTextContent(
      `kubectl delete spotpolicy -n ${second.workload.namespace} ${second.workload.name}`,
    );
    expect(screen.getAllByTestId('ferry-fleet-orphaned')).toHaveLength(1);
    // No link to an entity page that no longer exists.
    expect(within(orphaned.closest('tr')!).queryByRole('link')).toBeNull();
    expect(screen.getAllByRole('link', { name: 'sessions' })).toHaveLength(1);
  });

  it('shows plain names when the app has no catalog entity page to link to', async () => {
    await renderInTestApp(<FleetPage />, {
      apis: [[ferryApiRef, mockFerryApi()]],
    });
    const rows = await screen.findAllByTestId('ferry-fleet-row');
    expect(rows[0]).toHaveTextContent('sessions');
    expect(within(rows[0]).queryByRole('link')).not.toBeInTheDocument();
  });

  it('tells a newcomer how to put a first service on Ferry', async () => {
    await renderWithFerry(
      <FleetPage />,
      mockFerryApi({
        getFleet: jest.fn(async () => ({
          ...fleetSummary,
          services: [],
          riskiestPools: [],
        })),
      }),
    );
    const empty = await screen.findByTestId('ferry-fleet-empty');
    expect(empty).toHaveTextContent('No service runs on Ferry yet');
    expect(empty).toHaveTextContent('ferry.dev/spot: enabled');
  });

  it('reports a backend it cannot reach and retries', async () => {
    const getFleet = jest
      .fn()
      .mockRejectedValueOnce(new TypeError('Failed to fetch'))
      .mockResolvedValue(fleetSummary);
    await renderWithFerry(<FleetPage />, mockFerryApi({ getFleet }));
    const error = await screen.findByTestId('ferry-error');
    expect(error).toHaveTextContent('Could not load the fleet');
    expect(error).toHaveTextContent('could not reach the Ferry backend');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() =>
      expect(screen.getAllByTestId('ferry-fleet-row')).toHaveLength(2),
    );
  });

  it('keeps 4xx errors honest', async () => {
    await renderWithFerry(
      <FleetPage />,
      mockFerryApi({
        getFleet: jest.fn(async () => {
          throw responseError(401, 'Missing credentials');
        }),
      }),
    );
    expect(await screen.findByTestId('ferry-error')).toHaveTextContent(
      'Missing credentials',
    );
  });
});
