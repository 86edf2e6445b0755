import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { ferryApiRef } from '../../api';
import {
  entityStatus,
  mockFerryApi,
  responseError,
  sessionsEntity,
} from '../../__testUtils__/fixtures';
import { EntitySpotContent } from './EntitySpotContent';

function render(api = mockFerryApi()) {
  return renderInTestApp(
    <EntityProvider entity={sessionsEntity}>
      <EntitySpotContent />
    </EntityProvider>,
    { apis: [[ferryApiRef, api]] },
  );
}

describe('EntitySpotContent', () => {
  it('shows where the replicas run, the cost against on-demand, the savings and the availability', async () => {
    const api = mockFerryApi();
    await render(api);

    const tab = await screen.findByTestId('ferry-entity-tab');
    const rows = await within(tab).findAllByTestId('ferry-replica-row');
    expect(rows).toHaveLength(3);
    expect(rows.filter(r => r.dataset.capacity === 'spot')).toHaveLength(2);
    expect(within(rows[0]).getByText('Permanent')).toBeInTheDocument();
    expect(within(rows[0]).getByText('eu-west-1a')).toBeInTheDocument();
    expect(within(rows[0]).getAllByText('m6i.large').length).toBeGreaterThan(0);
    expect(within(rows[2]).getByText('Spot')).toBeInTheDocument();
    expect(within(rows[2]).getByText('24 % · high')).toBeInTheDocument();

    expect(screen.getByTestId('ferry-hourly-cost')).toHaveTextContent(
      '$0.186/h',
    );
    expect(screen.getByTestId('ferry-hourly-cost')).toHaveTextContent(
      'vs $0.321/h on demand (42 % less)',
    );
    expect(screen.getByTestId('ferry-savings')).toHaveTextContent('$1,234.56');
    expect(screen.getByTestId('ferry-availability')).toHaveTextContent(
      '99.960 %',
    );
    expect(screen.getByTestId('ferry-availability')).toHaveTextContent(
      'target 99.900 %',
    );
    expect(screen.getByTestId('ferry-availability')).toHaveTextContent(
      'meets target',
    );
    expect(screen.getByTestId('ferry-replica-summary')).toHaveTextContent(
      '2 spot · 1 permanent',
    );

    expect(api.getStatus).toHaveBeenCalledWith({
      kind: 'Component',
      namespace: 'default',
      name: 'sessions',
    });
  });

  it('says what to do when Ferry has no status for the service yet, and still offers the opt-in', async () => {
    await render(
      mockFerryApi({
        getStatus: jest.fn(async () => {
          throw responseError(
            404,
            'No workload labelled app=sessions in any cluster',
          );
        }),
      }),
    );
    expect(
      await screen.findByText('Ferry has no status for this service yet'),
    ).toBeInTheDocument();
    expect(screen.getByText(/backstage.io\/kubernetes-id/)).toBeInTheDocument();
    expect(screen.getByTestId('ferry-no-status')).toHaveTextContent(
      'Ferry says: No workload labelled app=sessions in any cluster',
    );
    expect(
      await screen.findByRole('checkbox', { name: 'Run on spot capacity' }),
    ).toBeInTheDocument();
    expect(screen.getByTestId('ferry-policy-preview')).toHaveTextContent(
      'appears once the operator reports',
    );
    expect(screen.queryByTestId('ferry-placement')).not.toBeInTheDocument();
  });

  it('loads the history alongside the status, not after it', async () => {
    const api = mockFerryApi({
      getStatus: jest.fn(() => new Promise(() => {})),
    });
    await render(api);
    expect(
      await screen.findByText(/Loading where this service runs/),
    ).toBeInTheDocument();
    await waitFor(() => expect(api.getCost).toHaveBeenCalled());
    expect(api.getAvailability).toHaveBeenCalled();
    expect(api.getMigrations).toHaveBeenCalled();
  });

  it('shows every view, and the range picker asks for the picked range', async () => {
    const api = mockFerryApi();
    await render(api);
    expect(await screen.findByTestId('ferry-cost-total')).toBeInTheDocument();
    expect(
      await screen.findByTestId('ferry-availability-observed'),
    ).toBeInTheDocument();
    expect(await screen.findAllByTestId('ferry-migration-row')).toHaveLength(1);
    expect(screen.getByTestId('ferry-policy')).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: 'Last 30 days' }),
    ).toHaveAttribute('aria-pressed', 'true');

    await userEvent.click(screen.getByRole('button', { name: 'Last 7 days' }));
    // The last question, not the second: the history also asks again every 10 s.
    const lastRange = () => api.getCost.mock.calls.at(-1)![1];
    await waitFor(() => {
      const { from, to } = lastRange();
      expect(Date.parse(to) - Date.parse(from)).toBe(7 * 24 * 3600_000);
    });
    const { from, to } = lastRange();
    expect(api.getAvailability).toHaveBeenLastCalledWith(expect.anything(), {
      from,
      to,
    });
    expect(await screen.findAllByText(/last 7 days/)).toHaveLength(2);
  });

  it("ends the history at the operator's clock when it runs ahead, as in demo mode", async () => {
    // Demo mode runs simulated time ahead of the wall clock.
    const updatedAt = new Date(Date.now() + 3 * 24 * 3600_000).toISOString();
    const api = mockFerryApi({
      getStatus: jest.fn(async () => ({ ...entityStatus, updatedAt })),
    });
    await render(api);
    await waitFor(() =>
      expect(api.getCost).toHaveBeenLastCalledWith(expect.anything(), {
        from: new Date(
          Date.parse(updatedAt) - 30 * 24 * 3600_000,
        ).toISOString(),
        to: updatedAt,
      }),
    );
  });

  it('shows an error with the reason and tries again on request', async () => {
    const getStatus = jest
      .fn()
      .mockRejectedValueOnce(responseError(500, 'database is down'))
      .mockImplementation(mockFerryApi().getStatus);
    await render(mockFerryApi({ getStatus }));

    const error = await screen.findByTestId('ferry-error');
    expect(error).toHaveTextContent(
      'Could not load the spot status of this service',
    );
    expect(error).toHaveTextContent('database is down');
    expect(error).toHaveTextContent('check the backend logs');

    await userEvent.click(
      within(error).getByRole('button', { name: 'Try again' }),
    );
    await waitFor(() =>
      expect(screen.getAllByTestId('ferry-replica-row')).toHaveLength(3),
    );
  });
});
