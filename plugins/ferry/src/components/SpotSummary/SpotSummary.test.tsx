import { screen } from '@testing-library/react';
import { entityStatus } from '../../__testUtils__/fixtures';
import { renderWithFerry } from '../../__testUtils__/render';
import { SpotSummary } from './SpotSummary';

describe('SpotSummary', () => {
  it('says in words when availability is below target and the budget is spent', async () => {
    await renderWithFerry(
      <SpotSummary
        status={{
          ...entityStatus,
          availability: {
            ...entityStatus.availability,
            observed: 0.995,
            errorBudgetRemaining: -2,
          },
        }}
      />,
    );
    const availability = screen.getByRole('group', { name: 'Availability' });
    expect(availability).toHaveTextContent('99.500 %');
    expect(availability).toHaveTextContent('below target');
    expect(availability).toHaveTextContent('error budget left 0 %');
    expect(
      screen.getByRole('group', { name: 'Savings to date' }),
    ).toHaveTextContent('spent $812.40 so far');
  });

  it('says the cost is unknown where the operator has no price, not 0 % less', async () => {
    await renderWithFerry(
      <SpotSummary
        status={{
          ...entityStatus,
          cost: {
            ...entityStatus.cost,
            hourlyCostUsd: 0,
            onDemandHourlyCostUsd: 0,
          },
          replicas: entityStatus.replicas.map(r => ({
            ...r,
            hourlyCostUsd: 0,
          })),
          conditions: [
            {
              type: 'PricesKnown',
              status: 'False',
              reason: 'PriceUnknown',
              message:
                'cost, spend and savings leave out 3 of 3 replicas whose prices are unknown',
              lastTransitionTime: '2026-12-07T00:00:00Z',
            },
          ],
        }}
      />,
    );
    const cost = screen.getByRole('group', { name: 'Hourly cost' });
    expect(cost).toHaveTextContent('Unknown');
    expect(cost).toHaveTextContent(
      `no price known for ${entityStatus.replicas.length} of ${entityStatus.replicas.length} replicas`,
    );
    expect(cost).not.toHaveTextContent('less');
  });
});
