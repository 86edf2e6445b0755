export { FleetPage, selectServices } from './FleetPage';
