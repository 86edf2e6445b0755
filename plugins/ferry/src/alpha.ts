/**
 * Ferry for Backstage's new frontend system: the default export is the
 * plugin, ready for `createApp({ features: [...] })`.
 *
 * @packageDocumentation
 */
export { ferryPlugin as default } from './plugin';
export {
  ferryApi,
  ferryFleetPage,
  ferrySpotEntityCard,
  ferrySpotEntityContent,
} from './plugin';
