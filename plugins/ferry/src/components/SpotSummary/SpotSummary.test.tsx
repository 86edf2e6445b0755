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
});
