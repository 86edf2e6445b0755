import { screen } from '@testing-library/react';
import { availabilitySeries, mockFerryApi } from '../../__testUtils__/fixtures';
import { renderWithFerry, sessionsRef } from '../../__testUtils__/render';
import { AvailabilityCard, availabilityScale } from './AvailabilityCard';

const range = { from: '2026-11-18T00:00:00Z', to: '2026-11-20T00:00:00Z' };

describe('AvailabilityCard', () => {
  it('shows availability against the target, the error budget and the moments at risk', async () => {
    await renderWithFerry(
      <AvailabilityCard
        entityRef={sessionsRef}
        range={range}
        rangeLabel="30 days"
      />,
    );

    expect(
      await screen.findByTestId('ferry-availability-observed'),
    ).toHaveTextContent('99.960 % (meets target)');
    expect(screen.getByTestId('ferry-availability-target')).toHaveTextContent(
      '99.900 %',
    );
    expect(screen.getByTestId('ferry-error-budget')).toHaveTextContent('60 %');
    expect(
      screen.getByRole('progressbar', { name: 'Error budget left' }),
    ).toHaveAttribute('aria-valuenow', '60');

    const moments = screen.getAllByTestId('ferry-at-risk-moment');
    expect(moments).toHaveLength(1);
    expect(moments[0]).toHaveTextContent('2 ready of 2 needed');

    expect(
      screen.getByRole('img', {
        name: /99\.960 % observed against a target of 99\.900 %/,
      }),
    ).toBeInTheDocument();
    expect(await screen.findByText('Availability (%)')).toBeInTheDocument();
    expect(screen.getByText('Target 99.900 %')).toBeInTheDocument();
  });

  it('says plainly when the service is below target and the budget is spent', async () => {
    await renderWithFerry(
      <AvailabilityCard
        entityRef={sessionsRef}
        range={range}
        rangeLabel="30 days"
      />,
      mockFerryApi({
        getAvailability: jest.fn(async () => ({
          ...availabilitySeries,
          observed: 0.998,
          errorBudgetRemaining: -1,
          atRisk: [],
        })),
      }),
    );
    expect(
      await screen.findByTestId('ferry-availability-observed'),
    ).toHaveTextContent('below target');
    expect(screen.getByTestId('ferry-error-budget')).toHaveTextContent('0 %');
    expect(screen.getByText(/None in the last 30 days/)).toBeInTheDocument();
  });
});

describe('availabilityScale', () => {
  it('zooms in as far as the lowest point allows, with round ticks', () => {
    expect(availabilityScale(100)).toEqual({
      floor: 99.9,
      ticks: [99.9, 99.925, 99.95, 99.975, 100],
      digits: 3,
    });
    expect(availabilityScale(99.9).floor).toBe(99.8);
    expect(availabilityScale(99.86).ticks).toEqual([
      99.8, 99.85, 99.9, 99.95, 100,
    ]);
    expect(availabilityScale(97).floor).toBe(95);
    expect(availabilityScale(0).floor).toBe(0);
  });
});
