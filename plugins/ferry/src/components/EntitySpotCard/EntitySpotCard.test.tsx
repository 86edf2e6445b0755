import { screen } from '@testing-library/react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { ferryApiRef } from '../../api';
import {
  entityStatus,
  mockFerryApi,
  responseError,
  sessionsEntity,
} from '../../__testUtils__/fixtures';
import { entityContentRouteRef } from '../../routes';
import { EntitySpotCard } from './EntitySpotCard';

function render(api = mockFerryApi(), mountTab = true) {
  return renderInTestApp(
    <EntityProvider entity={sessionsEntity}>
      <EntitySpotCard />
    </EntityProvider>,
    {
      apis: [[ferryApiRef, api]],
      mountedRoutes: mountTab
        ? { '/catalog/default/component/sessions/spot': entityContentRouteRef }
        : undefined,
    },
  );
}

describe('EntitySpotCard', () => {
  it('sums up savings, availability, replicas and the last move, and links to the tab', async () => {
    const api = mockFerryApi();
    await render(api);
    expect(await screen.findByTestId('ferry-card-savings')).toHaveTextContent(
      '$1,234.56 (42 % below on demand)',
    );
    expect(screen.getByTestId('ferry-card-availability')).toHaveTextContent(
      '99.960 % · target 99.900 %',
    );
    expect(screen.getByTestId('ferry-card-replicas')).toHaveTextContent(
      '2 spot · 1 permanent',
    );
    expect(screen.getByTestId('ferry-card-last-move')).toHaveTextContent(
      /notice, succeeded/,
    );
    expect(screen.getByTestId('ferry-card-link')).toHaveAttribute(
      'href',
      '/catalog/default/component/sessions/spot',
    );
    expect(api.getMigrations).toHaveBeenCalledWith(
      { kind: 'Component', namespace: 'default', name: 'sessions' },
      { limit: 1 },
    );
  });

  it('says how many replicas have no price instead of a share below on demand', async () => {
    await render(
      mockFerryApi({
        getStatus: jest.fn(async () => ({
          ...entityStatus,
          replicas: entityStatus.replicas.map((r, i) =>
            i === 0 ? { ...r, hourlyCostUsd: 0 } : r,
          ),
          conditions: [
            {
              type: 'PricesKnown',
              status: 'False' as const,
              reason: 'PriceUnknown',
              message: 'cost, spend and savings leave out 1 of 3 replicas',
              lastTransitionTime: '2026-12-07T00:00:00Z',
            },
          ],
        })),
      }),
    );
    expect(await screen.findByTestId('ferry-card-savings')).toHaveTextContent(
      `(no price known for 1 of ${entityStatus.replicas.length} replicas)`,
    );
  });

  it('says when the operator has not reported yet, and has no link without the tab', async () => {
    await render(
      mockFerryApi({
        getStatus: jest.fn(async () => {
          throw responseError(404, 'no report');
        }),
      }),
      false,
    );
    expect(
      await screen.findByTestId('ferry-card-no-status'),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('ferry-card-link')).not.toBeInTheDocument();
  });
});
