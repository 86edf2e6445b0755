import { screen } from '@testing-library/react';
import { ThemeProvider, createTheme } from '@mui/material/styles';
import { renderWithFerry, sessionsRef } from '../../__testUtils__/render';
import { CostCard } from './CostCard';

const range = { from: '2026-11-18T00:00:00Z', to: '2026-11-20T00:00:00Z' };

describe('CostCard in a dark theme', () => {
  it('draws axis text in the theme colour, so it stays readable on a dark background', async () => {
    const dark = createTheme({ palette: { mode: 'dark' } });
    await renderWithFerry(
      <ThemeProvider theme={dark}>
        <CostCard entityRef={sessionsRef} range={range} rangeLabel="30 days" />
      </ThemeProvider>,
    );
    const unit = await screen.findByText('USD per day');
    expect(unit.closest('text')).toHaveAttribute(
      'fill',
      dark.palette.text.secondary,
    );
  });
});
