/**
 * Ferry's backend plugin: REST API, history store, catalog sync and permissions.
 *
 * @packageDocumentation
 */
export { ferryPlugin as default } from './plugin';
export { ferryPermissionPolicyModule } from './permissions/permissionPolicyModule';
export { FerryPermissionPolicy } from './permissions/FerryPermissionPolicy';
export {
  ferryConditions,
  createFerryConditionalDecision,
  ferryPermissionRules,
} from './permissions/rules';
