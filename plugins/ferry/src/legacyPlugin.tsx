import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  createRoutableExtension,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { ferryApiRef, FerryClient } from './api';
import {
  catalogEntityRouteRef,
  entityContentRouteRef,
  rootRouteRef,
} from './routes';

/** Ferry for the legacy frontend system (`createApp` from `@backstage/app-defaults`). */
export const ferryPlugin = createPlugin({
  id: 'ferry',
  apis: [
    createApiFactory({
      api: ferryApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new FerryClient({ discoveryApi, fetchApi }),
    }),
  ],
  routes: { root: rootRouteRef, entityContent: entityContentRouteRef },
  externalRoutes: { catalogEntity: catalogEntityRouteRef },
});

/** The fleet page, for a `<Route path="/ferry" element={<FerryPage />} />`. */
export const FerryPage = ferryPlugin.provide(
  createRoutableExtension({
    name: 'FerryPage',
    component: () =>
      import('./components/FleetPage/LegacyFleetPage').then(
        m => m.LegacyFleetPage,
      ),
    mountPoint: rootRouteRef,
  }),
);

/** The "Spot" entity tab, for an `<EntityLayout.Route path="/spot" title="Spot">`. */
export const EntityFerryContent = ferryPlugin.provide(
  createRoutableExtension({
    name: 'EntityFerryContent',
    component: () =>
      import('./components/EntitySpotContent').then(m => m.EntitySpotContent),
    mountPoint: entityContentRouteRef,
  }),
);

/** The Overview card: savings, availability, replicas and the last move, linking to the tab. */
export const EntityFerrySpotCard = ferryPlugin.provide(
  createComponentExtension({
    name: 'EntityFerrySpotCard',
    component: {
      lazy: () =>
        import('./components/EntitySpotCard').then(m => m.EntitySpotCard),
    },
  }),
);
