import { fireEvent, screen, waitFor } from '@testing-library/react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { MockEntityListContextProvider } from '@backstage/plugin-catalog-react/testUtils';
import type { Entity } from '@backstage/catalog-model';
import {
  createFerrySpotColumn,
  EntitySpotFilter,
  EntitySpotPicker,
  FerryCatalogFilters,
  isOnSpot,
} from '.';

const entity = (spot?: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: {
    name: `service-${spot ?? 'none'}`,
    annotations: spot === undefined ? {} : { 'ferry.dev/spot': spot },
  },
});

describe('EntitySpotFilter', () => {
  it('asks the catalog for entities whose ferry.dev/spot is enabled, and keeps only those', () => {
    const filter = new EntitySpotFilter();
    expect(filter.getCatalogFilters()).toEqual({
      'metadata.annotations.ferry.dev/spot': 'enabled',
    });
    expect(filter.filterEntity(entity('enabled'))).toBe(true);
    expect(filter.filterEntity(entity(' enabled '))).toBe(true);
    expect(filter.filterEntity(entity('disabled'))).toBe(false);
    expect(filter.filterEntity(entity())).toBe(false);
    expect(isOnSpot(entity('yes'))).toBe(false);
    expect(filter.toQueryValue()).toBe('enabled');
  });
});

describe('EntitySpotPicker', () => {
  it('adds the filter when checked and removes it when unchecked', async () => {
    const updateFilters = jest.fn();
    await renderInTestApp(
      <MockEntityListContextProvider value={{ updateFilters }}>
        <EntitySpotPicker />
      </MockEntityListContextProvider>,
    );
    // Unchecked at first: the page lists everything.
    expect(updateFilters).toHaveBeenLastCalledWith({ spot: undefined });
    const checkbox = screen.getByRole('checkbox', {
      name: 'Only services on spot',
    });
    fireEvent.click(checkbox);
    await waitFor(() =>
      expect(updateFilters).toHaveBeenLastCalledWith({
        spot: expect.any(EntitySpotFilter),
      }),
    );
    fireEvent.click(checkbox);
    await waitFor(() =>
      expect(updateFilters).toHaveBeenLastCalledWith({ spot: undefined }),
    );
  });

  it('starts checked when the page URL asks for it', async () => {
    const updateFilters = jest.fn();
    await renderInTestApp(
      <MockEntityListContextProvider<FerryCatalogFilters>
        value={{ updateFilters, queryParameters: { spot: 'enabled' } }}
      >
        <EntitySpotPicker />
      </MockEntityListContextProvider>,
    );
    expect(
      screen.getByRole('checkbox', { name: 'Only services on spot' }),
    ).toBeChecked();
    expect(updateFilters).toHaveBeenLastCalledWith({
      spot: expect.any(EntitySpotFilter),
    });
  });
});

describe('createFerrySpotColumn', () => {
  it('says which entities are on spot, sorts and searches by it', () => {
    const column = createFerrySpotColumn();
    expect(column.title).toBe('Spot');
    const rows = ['disabled', 'enabled', undefined].map(s => ({
      entity: entity(s),
    }));
    expect(rows.map(r => column.render!(r, 'row'))).toEqual([
      'Opted out',
      'On spot',
      '',
    ]);
    expect(column.customSort!(rows[1], rows[0], 'row')).toBeLessThan(0);
    expect(column.customFilterAndSearch!('on spot', rows[1], column)).toBe(
      true,
    );
    expect(column.customFilterAndSearch!('on spot', rows[0], column)).toBe(
      false,
    );
  });
});
