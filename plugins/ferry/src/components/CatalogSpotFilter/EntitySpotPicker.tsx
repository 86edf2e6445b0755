import { useEffect, useState } from 'react';
import Box from '@mui/material/Box';
import Checkbox from '@mui/material/Checkbox';
import FormControlLabel from '@mui/material/FormControlLabel';
import Typography from '@mui/material/Typography';
import { useEntityList } from '@backstage/plugin-catalog-react';
import { EntitySpotFilter, FerryCatalogFilters } from './EntitySpotFilter';

/**
 * A filter of the catalog page: only the entities opted into spot placement
 * by their `ferry.dev/spot` annotation. An entity opted in from the portal
 * alone, its annotation saying otherwise, is not listed: the catalog knows
 * its annotations, not its SpotPolicy.
 *
 * @public
 */
export function EntitySpotPicker() {
  const {
    updateFilters,
    queryParameters: { spot },
  } = useEntityList<FerryCatalogFilters>();
  const [onSpot, setOnSpot] = useState(() => EntitySpotFilter.isAskedFor(spot));

  useEffect(() => {
    updateFilters({ spot: onSpot ? new EntitySpotFilter() : undefined });
  }, [onSpot, updateFilters]);

  return (
    <Box pb={1} pt={1} data-testid="ferry-catalog-spot-filter">
      {/* As the catalog's own filters label theirs: bold, not upper case. */}
      <Typography
        variant="button"
        component="p"
        sx={{ fontWeight: 'bold', textTransform: 'none' }}
      >
        Spot capacity
      </Typography>
      <FormControlLabel
        control={
          <Checkbox
            checked={onSpot}
            onChange={(_, checked) => setOnSpot(checked)}
          />
        }
        label="Only services on spot"
      />
    </Box>
  );
}
