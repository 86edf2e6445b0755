import { screen } from '@testing-library/react';
import { mockFerryApi } from '../../__testUtils__/fixtures';
import { renderWithFerry } from '../../__testUtils__/render';
import { HealthNotice } from './HealthNotice';

describe('HealthNotice', () => {
  it('says when the figures come from a simulated cloud and which clusters are unreachable', async () => {
    await renderWithFerry(
      <HealthNotice />,
      mockFerryApi({
        getHealth: jest.fn(async () => ({
          status: 'ok' as const,
          mode: 'demo' as const,
          clusters: [
            { name: 'demo', reachable: true },
            {
              name: 'eu-prod',
              reachable: false,
              message: 'connection refused',
            },
          ],
        })),
      }),
    );
    expect(await screen.findByText(/Demo mode/)).toBeInTheDocument();
    expect(
      screen.getByText(
        /Ferry cannot reach cluster eu-prod: connection refused/,
      ),
    ).toBeInTheDocument();
  });

  it('stays silent when all is well in a real cluster', async () => {
    const api = mockFerryApi({
      getHealth: jest.fn(async () => ({
        status: 'ok' as const,
        mode: 'kubernetes' as const,
        clusters: [{ name: 'prod', reachable: true }],
      })),
    });
    await renderWithFerry(<HealthNotice />, api);
    await new Promise(r => setTimeout(r, 50));
    expect(api.getHealth).toHaveBeenCalled();
    expect(screen.queryByTestId('ferry-health')).not.toBeInTheDocument();
  });
});
