import { useState } from 'react';
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  costSeries,
  mockFerryApi,
  responseError,
} from '../../__testUtils__/fixtures';
import { renderWithFerry, sessionsRef } from '../../__testUtils__/render';
import { CostCard } from './CostCard';

const range = { from: '2026-11-18T00:00:00Z', to: '2026-11-20T00:00:00Z' };

describe('CostCard', () => {
  it('shows spend against on-demand, the savings, and a chart with axis unit and legend', async () => {
    const api = mockFerryApi();
    await renderWithFerry(
      <CostCard entityRef={sessionsRef} range={range} rangeLabel="30 days" />,
      api,
    );

    expect(await screen.findByTestId('ferry-cost-total')).toHaveTextContent(
      '$8.84',
    );
    expect(screen.getByTestId('ferry-cost-on-demand')).toHaveTextContent(
      '$15.40',
    );
    expect(screen.getByTestId('ferry-cost-savings')).toHaveTextContent(
      '$6.56 (43 %)',
    );
    expect(api.getCost).toHaveBeenCalledWith(sessionsRef, range);

    const chart = screen.getByRole('img', {
      name: /\$8\.84 spent .* against \$15\.40 on demand/,
    });
    expect(chart).toBeInTheDocument();
    expect(await screen.findByText('USD per day')).toBeInTheDocument();
    expect(screen.getByText('Spot')).toBeInTheDocument();
    expect(screen.getByText('Permanent')).toBeInTheDocument();
    expect(screen.getByText('On-demand equivalent')).toBeInTheDocument();
  });

  it("keeps the chart and an opened table when the range moves on, as the operator's clock moves it in demo mode", async () => {
    const api = mockFerryApi();
    const later = {
      from: '2026-11-18T01:00:00Z',
      to: '2026-11-20T01:00:00Z',
    };
    function MovingRange() {
      const [current, setCurrent] = useState(range);
      return (
        <>
          <button onClick={() => setCurrent(later)}>an hour on</button>
          <CostCard
            entityRef={sessionsRef}
            range={current}
            rangeLabel="30 days"
          />
        </>
      );
    }
    await renderWithFerry(<MovingRange />, api);
    await userEvent.click(
      await screen.findByRole('button', { name: 'Show data as a table' }),
    );
    await userEvent.click(screen.getByRole('button', { name: 'an hour on' }));
    // No spinner in between: the table a person opened stays open.
    expect(screen.queryByText('Loading cost history…')).toBeNull();
    expect(screen.getByRole('table')).toHaveTextContent('$7.70');
    // The same question: asked again at the next refresh, with the new times.
    expect(api.getCost).toHaveBeenCalledTimes(1);
  });

  it('opens the same data as a table', async () => {
    await renderWithFerry(
      <CostCard entityRef={sessionsRef} range={range} rangeLabel="30 days" />,
    );
    await userEvent.click(
      await screen.findByRole('button', { name: 'Show data as a table' }),
    );
    const table = screen.getByRole('table');
    expect(table).toHaveTextContent('On-demand equivalent (USD)');
    expect(table).toHaveTextContent('$7.70');
    expect(screen.getAllByRole('row')).toHaveLength(
      costSeries.points.length + 1,
    );
  });

  it('says what to do when nothing was recorded in the range', async () => {
    await renderWithFerry(
      <CostCard entityRef={sessionsRef} range={range} rangeLabel="24 hours" />,
      mockFerryApi({
        getCost: jest.fn(async () => ({ ...costSeries, points: [] })),
      }),
    );
    expect(
      await screen.findByText('No cost recorded in the last 24 hours'),
    ).toBeInTheDocument();
    expect(screen.getByText(/Pick a shorter range/)).toBeInTheDocument();
  });

  it('reports a failure with the reason and a retry', async () => {
    await renderWithFerry(
      <CostCard entityRef={sessionsRef} range={range} rangeLabel="30 days" />,
      mockFerryApi({
        getCost: jest.fn(async () => {
          throw responseError(503, 'history store unavailable');
        }),
      }),
    );
    const error = await screen.findByTestId('ferry-error');
    expect(error).toHaveTextContent('Could not load the cost history');
    expect(error).toHaveTextContent('history store unavailable');
    expect(
      screen.getByRole('button', { name: 'Try again' }),
    ).toBeInTheDocument();
  });
});
