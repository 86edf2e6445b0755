import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/frontend-plugin-api';
import { EntityContentBlueprint } from '@backstage/plugin-catalog-react/alpha';
import { ferryApiRef, FerryClient } from './api';
import { ferryEntityFilter } from './conditions';
import { entityContentRouteRef } from './routes';

/** The Ferry API, backed by `ferry-backend`. Extension id `api:ferry`. */
export const ferryApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: ferryApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new FerryClient({ discoveryApi, fetchApi }),
    }),
});

/**
 * The "Spot" tab on entities that carry `ferry.dev/spot`.
 * Extension id `entity-content:ferry/spot`.
 */
export const ferrySpotEntityContent = EntityContentBlueprint.make({
  name: 'spot',
  params: {
    path: 'spot',
    title: 'Spot',
    filter: ferryEntityFilter,
    routeRef: entityContentRouteRef,
    loader: () =>
      import('./components/EntitySpotContent').then(m => <m.EntitySpotContent />),
  },
});

/** Ferry for the new frontend system. */
export const ferryPlugin = createFrontendPlugin({
  pluginId: 'ferry',
  title: 'Ferry',
  info: { packageJson: () => import('../package.json') },
  routes: { entityContent: entityContentRouteRef },
  extensions: [ferryApi, ferrySpotEntityContent],
});
