export { ChartFigure, CHART_HEIGHT } from './ChartFigure';
