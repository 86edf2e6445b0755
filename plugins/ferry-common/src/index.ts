/**
 * Types, catalog annotation keys and permissions shared by Ferry's plugins.
 *
 * @packageDocumentation
 */
export * from './annotations';
export * from './permissions';
export * from './policyAnnotations';
export * from './types';
/**
 * The typed client generated from the backend's OpenAPI spec
 * (`yarn --cwd plugins/ferry-backend generate`). Note: the generator names the
 * `from` query parameter `_from` in the request types; pass it as `from`.
 */
export {
  DefaultApiClient as FerryApiClient,
  type TypedResponse,
  type RequestOptions,
} from './schema/openapi/generated/apis/Api.client';
