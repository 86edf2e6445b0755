import { CustomErrorBase } from '@backstage/errors';

// Backstage's error handler answers with an error's `statusCode` when it has one;
// @backstage/errors has no class for these two statuses.

/** A request body larger than Ferry reads (413). */
export class PayloadTooLargeError extends CustomErrorBase {
  name = 'PayloadTooLargeError' as const;
  readonly statusCode = 413;
}

/** A method the contract does not declare on a path it does declare (405). */
export class MethodNotAllowedError extends CustomErrorBase {
  name = 'MethodNotAllowedError' as const;
  readonly statusCode = 405;
}
