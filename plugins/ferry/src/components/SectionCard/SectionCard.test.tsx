import { render, screen, within } from '@testing-library/react';
import { SectionCard } from './SectionCard';

describe('SectionCard', () => {
  it('is a region named by its h2 title, with the line under it, its content and its actions', () => {
    render(
      <SectionCard
        id="ferry-example"
        title="Cost"
        subheader="Spend against the on-demand price"
        actions={<a href="/spot">Open the Spot tab</a>}
      >
        <p>the chart</p>
      </SectionCard>,
    );

    const card = screen.getByRole('region', { name: 'Cost' });
    expect(
      within(card).getByRole('heading', { level: 2, name: 'Cost' }),
    ).toBeInTheDocument();
    expect(
      within(card).getByText('Spend against the on-demand price'),
    ).toBeInTheDocument();
    expect(within(card).getByText('the chart')).toBeInTheDocument();
    expect(
      within(card).getByRole('link', { name: 'Open the Spot tab' }),
    ).toHaveAttribute('href', '/spot');
    expect(card).toHaveAttribute('data-testid', 'ferry-example');
  });

  it('takes a test id of its own and shows no actions row without actions', () => {
    render(
      <SectionCard id="ferry-example" testId="ferry-example-card" title="Pools">
        <p>the table</p>
      </SectionCard>,
    );

    const card = screen.getByTestId('ferry-example-card');
    expect(card).toBe(screen.getByRole('region', { name: 'Pools' }));
    expect(within(card).queryByRole('link')).not.toBeInTheDocument();
  });
});
