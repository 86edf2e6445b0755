// Test helper only: imported by *.test.tsx, never by the plugin itself.
import { ReactElement } from 'react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { entityRouteRef } from '@backstage/plugin-catalog-react';
import type { FerryApi } from '../api';
import { ferryApiRef } from '../api';
import { mockFerryApi } from './fixtures';

/** Renders an element in a test app with a mocked Ferry API. */
export function renderWithFerry(element: ReactElement, api: FerryApi = mockFerryApi()) {
  return renderInTestApp(element, {
    apis: [[ferryApiRef, api]],
    mountedRoutes: { '/catalog/:namespace/:kind/:name': entityRouteRef },
  });
}

/** The compound ref of the fixture entity. */
export const sessionsRef = { kind: 'Component', namespace: 'default', name: 'sessions' };
