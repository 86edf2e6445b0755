import DirectionsBoatIcon from '@mui/icons-material/DirectionsBoat';
import {
  ApiBlueprint,
  PageBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/frontend-plugin-api';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import { ferryApiRef, FerryClient } from './api';
import { ferryEntityFilter } from './conditions';
import {
  catalogEntityRouteRef,
  entityContentRouteRef,
  rootRouteRef,
} from './routes';

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
      import('./components/EntitySpotContent').then(m => (
        <m.EntitySpotContent />
      )),
  },
});

/**
 * The Overview card of entities that carry `ferry.dev/spot`: savings,
 * availability, replicas and the last move. Extension id `entity-card:ferry/spot`.
 */
export const ferrySpotEntityCard = EntityCardBlueprint.make({
  name: 'spot',
  params: {
    filter: ferryEntityFilter,
    loader: () =>
      import('./components/EntitySpotCard').then(m => <m.EntitySpotCard />),
  },
});

/** The fleet page at `/ferry`, with a nav item. Extension id `page:ferry`. */
export const ferryFleetPage = PageBlueprint.make({
  params: {
    path: '/ferry',
    routeRef: rootRouteRef,
    title: 'Ferry',
    icon: <DirectionsBoatIcon fontSize="inherit" />,
    loader: () => import('./components/FleetPage').then(m => <m.FleetPage />),
  },
});

/** Ferry for the new frontend system. */
export const ferryPlugin = createFrontendPlugin({
  pluginId: 'ferry',
  title: 'Ferry',
  info: { packageJson: () => import('../package.json') },
  icon: <DirectionsBoatIcon fontSize="inherit" />,
  routes: { root: rootRouteRef, entityContent: entityContentRouteRef },
  externalRoutes: { catalogEntity: catalogEntityRouteRef },
  extensions: [
    ferryApi,
    ferryFleetPage,
    ferrySpotEntityContent,
    ferrySpotEntityCard,
  ],
});
