import { useTheme } from '@mui/material/styles';

/**
 * Chart colours and text styles taken from the app's theme, so charts read in
 * light and dark themes alike.
 */
export function useChartTheme() {
  const theme = useTheme();
  const text = theme.palette.text.secondary;
  return {
    spot: theme.palette.primary.main,
    permanent: theme.palette.info.main,
    onDemand: theme.palette.text.primary,
    good: theme.palette.success.main,
    bad: theme.palette.error.main,
    warning: theme.palette.warning.main,
    grid: theme.palette.divider,
    axis: { fill: text, fontSize: 12 },
    tooltip: {
      contentStyle: {
        backgroundColor: theme.palette.background.paper,
        border: `1px solid ${theme.palette.divider}`,
        color: theme.palette.text.primary,
      },
      labelStyle: { color: theme.palette.text.primary },
    },
    legend: { color: text },
  };
}
