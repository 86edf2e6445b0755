import { screen } from '@testing-library/react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { Route, Routes } from 'react-router-dom';
import {
  EntityFerryContent,
  FerryPage,
  catalogEntityRouteRef,
  ferryApiRef,
  ferryPlugin,
} from './index';
import { mockFerryApi, sessionsEntity } from './__testUtils__/fixtures';

describe('ferryPlugin (legacy frontend system)', () => {
  it('has the plugin id and provides the Ferry API', () => {
    expect(ferryPlugin.getId()).toBe('ferry');
    expect([...ferryPlugin.getApis()].map(f => f.api.id)).toEqual([
      'plugin.ferry.service',
    ]);
  });

  it('renders the entity tab as a routable extension', async () => {
    await renderInTestApp(
      <TestApiProvider apis={[[ferryApiRef, mockFerryApi()]]}>
        <EntityProvider entity={sessionsEntity}>
          <Routes>
            <Route
              path="/catalog/:namespace/:kind/:name/spot"
              element={<EntityFerryContent />}
            />
          </Routes>
        </EntityProvider>
      </TestApiProvider>,
      {
        routeEntries: ['/catalog/default/component/sessions/spot'],
      },
    );
    expect(await screen.findAllByTestId('ferry-replica-row')).toHaveLength(3);
  });

  it('renders the fleet page in page chrome', async () => {
    await renderInTestApp(
      <TestApiProvider apis={[[ferryApiRef, mockFerryApi()]]}>
        <Routes>
          <Route path="/ferry" element={<FerryPage />} />
        </Routes>
      </TestApiProvider>,
      {
        routeEntries: ['/ferry'],
        mountedRoutes: {
          '/catalog/:namespace/:kind/:name': catalogEntityRouteRef,
        },
      },
    );
    expect(await screen.findAllByTestId('ferry-fleet-row')).toHaveLength(2);
    expect(
      screen.getByText('Stateful services on spot capacity'),
    ).toBeInTheDocument();
  });
});
