import { screen } from '@testing-library/react';
import {
  createExtensionTester,
  renderInTestApp,
} from '@backstage/frontend-test-utils';
import { coreExtensionData } from '@backstage/frontend-plugin-api';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { catalogEntityRouteRef } from './routes';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import ferryPluginFromAlpha from './alpha';
import { ferryApiRef } from './api';
import { ferryPlugin } from './plugin';
import { mockFerryApi, sessionsEntity } from './__testUtils__/fixtures';

describe('ferryPlugin (new frontend system)', () => {
  it('is the default export of the alpha entry point', () => {
    expect(ferryPluginFromAlpha).toBe(ferryPlugin);
    expect(ferryPlugin.id).toBe('ferry');
  });

  it('provides the Ferry API and a "Spot" tab at "spot" for entities with ferry.dev/spot', async () => {
    expect(ferryPlugin.getExtension('api:ferry')).toBeDefined();
    const content = ferryPlugin.getExtension('entity-content:ferry/spot');
    const tester = createExtensionTester(content, {
      apis: [[ferryApiRef, mockFerryApi()]],
    });

    expect(tester.get(EntityContentBlueprint.dataRefs.title)).toBe('Spot');
    expect(tester.get(coreExtensionData.routePath)).toBe('spot');
    const filter = tester.get(EntityContentBlueprint.dataRefs.filterFunction)!;
    expect(filter(sessionsEntity)).toBe(true);
    expect(
      filter({
        ...sessionsEntity,
        metadata: { name: 'plain', annotations: {} },
      }),
    ).toBe(false);
    expect(
      filter({
        ...sessionsEntity,
        metadata: {
          name: 'off',
          annotations: { 'ferry.dev/spot': 'disabled' },
        },
      }),
    ).toBe(true);

    await renderInTestApp(
      <EntityProvider entity={sessionsEntity}>
        {tester.reactElement()}
      </EntityProvider>,
      { apis: [[ferryApiRef, mockFerryApi()]] },
    );
    expect(await screen.findAllByTestId('ferry-replica-row')).toHaveLength(3);
  });

  it('provides the Overview card for entities with ferry.dev/spot', async () => {
    const card = ferryPlugin.getExtension('entity-card:ferry/spot');
    const tester = createExtensionTester(card, {
      apis: [[ferryApiRef, mockFerryApi()]],
    });
    const filter = tester.get(EntityCardBlueprint.dataRefs.filterFunction)!;
    expect(filter(sessionsEntity)).toBe(true);
    expect(
      filter({
        ...sessionsEntity,
        metadata: { name: 'plain', annotations: {} },
      }),
    ).toBe(false);
    await renderInTestApp(
      <EntityProvider entity={sessionsEntity}>
        {tester.reactElement()}
      </EntityProvider>,
      { apis: [[ferryApiRef, mockFerryApi()]] },
    );
    expect(
      await screen.findByTestId('ferry-card-replicas', {}, { timeout: 10_000 }),
    ).toHaveTextContent('2 spot · 1 permanent');
  });

  it('provides the fleet page at /ferry', async () => {
    const page = ferryPlugin.getExtension('page:ferry');
    const tester = createExtensionTester(page, {
      apis: [[ferryApiRef, mockFerryApi()]],
    });
    expect(tester.get(coreExtensionData.routePath)).toBe('/ferry');
    await renderInTestApp(tester.reactElement(), {
      apis: [[ferryApiRef, mockFerryApi()]],
      mountedRoutes: {
        '/catalog/:namespace/:kind/:name': catalogEntityRouteRef,
      },
    });
    expect(await screen.findAllByTestId('ferry-fleet-row')).toHaveLength(2);
  });
});
