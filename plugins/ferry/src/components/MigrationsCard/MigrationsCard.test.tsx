import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { migration, mockFerryApi } from '../../__testUtils__/fixtures';
import { renderWithFerry, sessionsRef } from '../../__testUtils__/render';
import { MigrationsCard } from './MigrationsCard';

describe('MigrationsCard', () => {
  it('lists migrations with reason, driver, outcome, data moved and write pause, and opens one', async () => {
    await renderWithFerry(<MigrationsCard entityRef={sessionsRef} />);

    const rows = await screen.findAllByTestId('ferry-migration-row');
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toHaveTextContent('Termination notice');
    expect(row).toHaveTextContent('Valkey hand-off');
    expect(row).toHaveTextContent('Succeeded');
    expect(row).toHaveTextContent('sessions-2: ip-10-0-3-7 → ip-10-0-3-9');
    expect(row).toHaveTextContent('took 41.0 s');
    expect(row).toHaveTextContent('1.5 GiB moved');
    expect(row).toHaveTextContent('writes paused 850 ms');

    await userEvent.click(within(row).getByRole('button'));
    const dialog = await screen.findByRole('dialog', {
      name: 'Migration of sessions-2',
    });
    const phases = within(dialog).getAllByTestId('ferry-migration-phase');
    expect(phases).toHaveLength(2);
    expect(phases[0]).toHaveTextContent('sync');
    expect(phases[0]).toHaveTextContent('40.0 s');
    expect(phases[1]).toHaveTextContent('switch');
    expect(phases[1]).toHaveTextContent('850 ms');
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Close' }),
    );
    await waitFor(() =>
      expect(screen.queryByRole('dialog')).not.toBeInTheDocument(),
    );
  });

  it('filters by reason and offers to clear filters that match nothing', async () => {
    const api = mockFerryApi();
    await renderWithFerry(<MigrationsCard entityRef={sessionsRef} />, api);
    await screen.findAllByTestId('ferry-migration-row');

    api.getMigrations.mockResolvedValue({ items: [], totalCount: 0 });
    await userEvent.click(screen.getByRole('combobox', { name: 'Reason' }));
    await userEvent.click(screen.getByRole('option', { name: 'Node drained' }));
    await waitFor(() =>
      expect(api.getMigrations).toHaveBeenLastCalledWith(
        sessionsRef,
        expect.objectContaining({ reason: 'drain' }),
      ),
    );
    expect(
      await screen.findByText('No migrations match these filters'),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: 'Clear filters' }),
    ).toBeInTheDocument();
  });

  it('pages back in time', async () => {
    const older = {
      ...migration,
      id: 'mig-0',
      pod: 'sessions-1',
      outcome: 'rolled-back' as const,
    };
    const api = mockFerryApi({
      getMigrations: jest.fn(async (_ref, query) =>
        query?.cursor
          ? { items: [older], totalCount: 2 }
          : { items: [migration], totalCount: 2, nextCursor: 'c1' },
      ),
    });
    await renderWithFerry(<MigrationsCard entityRef={sessionsRef} />, api);
    await userEvent.click(
      await screen.findByRole('button', { name: 'Show older migrations' }),
    );
    await waitFor(() =>
      expect(screen.getAllByTestId('ferry-migration-row')).toHaveLength(2),
    );
    expect(screen.getAllByTestId('ferry-migration-row')[1]).toHaveTextContent(
      'Rolled back',
    );
    expect(screen.getByText('2 of 2 shown')).toBeInTheDocument();
  });

  it('opens a migration from the keyboard', async () => {
    await renderWithFerry(<MigrationsCard entityRef={sessionsRef} />);
    const [row] = await screen.findAllByTestId('ferry-migration-row');
    within(row).getByRole('button').focus();
    await userEvent.keyboard('{Enter}');
    expect(
      await screen.findByRole('dialog', { name: 'Migration of sessions-2' }),
    ).toBeInTheDocument();
    await userEvent.keyboard('{Escape}');
    await waitFor(() =>
      expect(screen.queryByRole('dialog')).not.toBeInTheDocument(),
    );
  });

  it('explains an empty timeline', async () => {
    await renderWithFerry(
      <MigrationsCard entityRef={sessionsRef} />,
      mockFerryApi({
        getMigrations: jest.fn(async () => ({ items: [], totalCount: 0 })),
      }),
    );
    expect(await screen.findByText('No migrations yet')).toBeInTheDocument();
  });
});
