export { useChartTheme } from './chartTheme';
