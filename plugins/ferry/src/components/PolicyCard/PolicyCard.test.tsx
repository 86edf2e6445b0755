import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  entityStatus,
  mockFerryApi,
  policyView,
  responseError,
} from '../../__testUtils__/fixtures';
import { renderWithFerry, sessionsRef } from '../../__testUtils__/render';
import { PolicyCard } from './PolicyCard';

describe('PolicyCard', () => {
  it('lets an owner opt in, previews cost and risk, and saves only what changed', async () => {
    const api = mockFerryApi({
      getPolicy: jest.fn(async () => ({
        ...policyView,
        policy: { ...policyView.policy, enabled: false },
      })),
    });
    const onSaved = jest.fn();
    await renderWithFerry(
      <PolicyCard
        entityRef={sessionsRef}
        status={entityStatus}
        onSaved={onSaved}
      />,
      api,
    );

    const toggle = await screen.findByRole('checkbox', {
      name: 'Run on spot capacity',
    });
    expect(toggle).not.toBeChecked();
    const preview = screen.getByTestId('ferry-policy-preview');
    expect(preview).toHaveTextContent(
      '3 of 3 replicas on permanent capacity, 0 on spot.',
    );
    expect(preview).toHaveTextContent('No replica can be reclaimed.');
    expect(screen.getByRole('button', { name: 'Save policy' })).toBeDisabled();

    await userEvent.click(toggle);
    expect(preview).toHaveTextContent(
      '1 of 3 replicas on permanent capacity, 2 on spot.',
    );
    expect(preview).toHaveTextContent(/saves about \$\d/);
    expect(preview).toHaveTextContent('The quorum depends on spot replicas');

    await userEvent.click(screen.getByRole('button', { name: 'Save policy' }));
    await waitFor(() =>
      expect(api.updatePolicy).toHaveBeenCalledWith(sessionsRef, {
        enabled: true,
      }),
    );
    expect(await screen.findByTestId('ferry-policy-saved')).toHaveTextContent(
      'The operator is placing the replicas',
    );
    expect(onSaved).toHaveBeenCalled();
  });

  it('changes the migration method through a labelled select', async () => {
    const api = mockFerryApi();
    await renderWithFerry(
      <PolicyCard entityRef={sessionsRef} status={entityStatus} />,
      api,
    );
    await userEvent.click(
      await screen.findByRole('combobox', { name: 'Migration method' }),
    );
    await userEvent.click(screen.getByRole('option', { name: /Checkpoint/ }));
    await userEvent.click(screen.getByRole('button', { name: 'Save policy' }));
    await waitFor(() =>
      expect(api.updatePolicy).toHaveBeenCalledWith(sessionsRef, {
        migration: 'checkpoint',
      }),
    );
  });

  it('sets and clears the idle period before members hibernate, and says why a member does not sleep', async () => {
    const refusal =
      'it keeps 1 connection of its own open to other services (10.0.0.7:5432), which would time out while it sleeps';
    const api = mockFerryApi({
      getPolicy: jest.fn(async () => ({
        ...policyView,
        policy: { ...policyView.policy, hibernateAfter: '45m' },
        hibernation: [
          { pod: 'sessions-0', phase: 'SCALED_DOWN' as const },
          { pod: 'sessions-1', phase: 'RUNNING' as const, refusal },
        ],
      })),
    });
    await renderWithFerry(
      <PolicyCard entityRef={sessionsRef} status={entityStatus} />,
      api,
    );
    const select = await screen.findByRole('combobox', {
      name: 'Hibernate when idle',
    });
    // A value set elsewhere (catalog-info.yaml) shows as it is.
    expect(select).toHaveTextContent('After 45m without traffic');
    const panel = screen.getByTestId('ferry-policy-hibernation');
    expect(
      within(panel).getByTestId('ferry-hibernation-refused'),
    ).toHaveTextContent(`sessions-1 does not hibernate: ${refusal}`);
    expect(panel).toHaveTextContent(
      'sessions-0 asleep, its requests released, sessions-1 awake',
    );

    await userEvent.click(select);
    await userEvent.click(
      screen.getByRole('option', { name: 'After 10 minutes without traffic' }),
    );
    await userEvent.click(screen.getByRole('button', { name: 'Save policy' }));
    await waitFor(() =>
      expect(api.updatePolicy).toHaveBeenCalledWith(sessionsRef, {
        hibernateAfter: '10m',
      }),
    );
    await screen.findByTestId('ferry-policy-saved');
    await userEvent.click(
      screen.getByRole('combobox', { name: 'Hibernate when idle' }),
    );
    await userEvent.click(screen.getByRole('option', { name: 'Never' }));
    await waitFor(() =>
      expect(screen.queryByRole('listbox')).not.toBeInTheDocument(),
    );
    await userEvent.click(screen.getByRole('button', { name: 'Save policy' }));
    await waitFor(() =>
      expect(api.updatePolicy).toHaveBeenLastCalledWith(sessionsRef, {
        hibernateAfter: null,
      }),
    );
  });

  it('lists who changed the policy, when, and what', async () => {
    await renderWithFerry(
      <PolicyCard entityRef={sessionsRef} status={entityStatus} />,
      mockFerryApi({
        getPolicy: jest.fn(async () => ({
          ...policyView,
          source: 'portal' as const,
          history: [
            {
              id: 'c1',
              entityRef: policyView.entityRef,
              source: 'catalog' as const,
              changedBy: 'plugin:ferry',
              changedAt: '2026-11-01T10:00:00Z',
              after: { ...policyView.policy, enabled: false },
            },
            {
              id: 'c2',
              entityRef: policyView.entityRef,
              source: 'portal' as const,
              changedBy: 'user:default/alice',
              changedAt: '2026-11-02T10:00:00Z',
              before: { ...policyView.policy, enabled: false },
              after: { ...policyView.policy, permanentRatio: 0.5 },
            },
          ],
        })),
      }),
    );
    expect(
      await screen.findByText(
        /Last set from the portal by user:default\/alice/,
      ),
    ).toBeInTheDocument();
    await userEvent.click(
      screen.getByRole('button', { name: 'Show change history (2)' }),
    );
    const changes = screen.getAllByTestId('ferry-policy-change');
    expect(changes[0]).toHaveTextContent(
      'Spot switched on, permanent 30 % → 50 %',
    );
    expect(changes[0]).toHaveTextContent(
      'user:default/alice · from the portal',
    );
    expect(changes[1]).toHaveTextContent('Set: spot off');
  });

  it('shows the policy read-only with the reason to people who may not change it', async () => {
    await renderWithFerry(
      <PolicyCard entityRef={sessionsRef} status={entityStatus} />,
      mockFerryApi({
        getPolicy: jest.fn(async () => ({
          ...policyView,
          canUpdate: false,
          readOnlyReason:
            'Only the owners of component:default/sessions (group:default/team-a) may change it.',
        })),
      }),
    );
    const note = await screen.findByTestId('ferry-policy-read-only');
    expect(note).toHaveTextContent(
      'You can see this policy but not change it.',
    );
    expect(note).toHaveTextContent('group:default/team-a');
    expect(
      screen.getByRole('checkbox', { name: 'Run on spot capacity' }),
    ).toBeDisabled();
    expect(
      screen.getByRole('checkbox', { name: 'Run on spot capacity' }),
    ).toBeChecked();
    expect(
      screen.queryByRole('button', { name: 'Save policy' }),
    ).not.toBeInTheDocument();
  });

  it('keeps the change and says why when saving is refused', async () => {
    const api = mockFerryApi({
      updatePolicy: jest.fn(async () => {
        throw responseError(403, 'not allowed');
      }),
    });
    await renderWithFerry(
      <PolicyCard entityRef={sessionsRef} status={entityStatus} />,
      api,
    );
    await userEvent.click(
      await screen.findByRole('checkbox', { name: 'Run on spot capacity' }),
    );
    await userEvent.click(screen.getByRole('button', { name: 'Save policy' }));
    const error = await screen.findByTestId('ferry-error');
    expect(error).toHaveTextContent('The policy was not saved');
    expect(error).toHaveTextContent('ferry.policy.update');
    expect(
      screen.getByRole('checkbox', { name: 'Run on spot capacity' }),
    ).not.toBeChecked();
    expect(
      within(screen.getByTestId('ferry-policy')).getByRole('button', {
        name: 'Save policy',
      }),
    ).toBeEnabled();
  });
});
