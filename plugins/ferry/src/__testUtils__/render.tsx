// Test helper only: imported by *.test.tsx, never by the plugin itself.
import { ReactElement } from 'react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import type { FerryApi } from '../api';
import { ferryApiRef } from '../api';
import { catalogEntityRouteRef } from '../routes';
import { mockFerryApi } from './fixtures';

/** Renders an element in a test app with a mocked Ferry API. */
export function renderWithFerry(
  element: ReactElement,
  api: FerryApi = mockFerryApi(),
) {
  return renderInTestApp(element, {
    apis: [[ferryApiRef, api]],
    mountedRoutes: { '/catalog/:namespace/:kind/:name': catalogEntityRouteRef },
  });
}

/** The compound ref of the fixture entity. */
export const sessionsRef = {
  kind: 'Component',
  namespace: 'default',
  name: 'sessions',
};
