// The plugin on its own, over a fake API with a year of history:
// `yarn start` in plugins/ferry, then open /ferry or /entity.
import ReactDOM from 'react-dom/client';
// The dev harness is an app of its own, and apps bring BUI's styles.
// eslint-disable-next-line @backstage/no-ui-css-imports-in-non-frontend
import '@backstage/ui/css/styles.css';
import { createApp } from '@backstage/frontend-defaults';
import {
  ApiBlueprint,
  PageBlueprint,
  createFrontendModule,
} from '@backstage/frontend-plugin-api';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import ferryPlugin from '../src/alpha';
import { ferryApiRef } from '../src/api';
import { EntitySpotContent } from '../src/components/EntitySpotContent';
import { FakeFerryApi } from './FakeFerryApi';
import { sessionsEntity } from './sampleService';

const devModule = createFrontendModule({
  pluginId: 'ferry',
  extensions: [
    ApiBlueprint.make({
      params: defineParams =>
        defineParams({
          api: ferryApiRef,
          deps: {},
          factory: () => new FakeFerryApi(),
        }),
    }),
    PageBlueprint.make({
      name: 'dev-entity',
      params: {
        path: '/entity',
        title: 'Spot tab (dev)',
        loader: async () => (
          <EntityProvider entity={sessionsEntity}>
            <EntitySpotContent />
          </EntityProvider>
        ),
      },
    }),
  ],
});

const app = createApp({ features: [ferryPlugin, devModule] });

ReactDOM.createRoot(document.getElementById('root')!).render(app.createRoot());
