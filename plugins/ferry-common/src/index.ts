/**
 * Types, catalog annotation keys and permissions shared by Ferry's plugins.
 *
 * @packageDocumentation
 */
export * from './annotations';
export * from './hibernateAfter';
export * from './permissions';
export * from './policyAnnotations';
export * from './policyUpdate';
/**
 * The shapes of Ferry's REST API (`/api/ferry`), generated from the backend's
 * contract, `src/schema/openapi.yaml` (`bash scripts/ferry openapi`): the one
 * definition that the backend's router, the frontend and the tests share.
 */
export * from './schema/openapi/generated/models';
/**
 * The typed client generated from the same contract. Note: the generator names the
 * `from` query parameter `_from` in the request types; pass it as `from`.
 */
export {
  DefaultApiClient as FerryApiClient,
  type TypedResponse,
  type RequestOptions,
} from './schema/openapi/generated/apis/Api.client';
