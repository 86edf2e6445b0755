import { render, screen, within } from '@testing-library/react';
import LinearProgress from '@mui/material/LinearProgress';
import { StatBlock } from './StatBlock';

describe('StatBlock', () => {
  it('is a group named by its label that shows the figure and its detail', () => {
    render(
      <StatBlock
        testId="ferry-savings"
        label="Savings to date"
        value="$1,234.56"
        detail="spent $812.40 so far"
        tile
      />,
    );

    const stat = screen.getByRole('group', { name: 'Savings to date' });
    expect(stat).toHaveTextContent('Savings to date$1,234.56spent $812.40');
    expect(
      within(stat).getByRole('heading', { level: 3, name: 'Savings to date' }),
    ).toBeInTheDocument();
    expect(screen.getByTestId('ferry-savings')).toBe(stat);
  });

  it('labels what it holds, such as a bar, with its label', () => {
    render(
      <StatBlock
        testId="ferry-error-budget"
        label="Error budget left"
        value="60 %"
      >
        <LinearProgress
          variant="determinate"
          value={60}
          aria-labelledby="ferry-error-budget-label"
        />
      </StatBlock>,
    );

    const bar = screen.getByRole('progressbar', { name: 'Error budget left' });
    expect(bar).toHaveAttribute('aria-valuenow', '60');
    expect(
      within(
        screen.getByRole('group', { name: 'Error budget left' }),
      ).getByText('60 %'),
    ).toBeInTheDocument();
  });
});
