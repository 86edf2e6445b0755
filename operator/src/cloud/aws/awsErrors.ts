/**
 * AWS failures a platform team can act on: the SDK's own errors name an error
 * code ("UnauthorizedOperation", "CredentialsProviderError"), not what to grant
 * or configure, so every call into AWS goes through `callAws`, which says which
 * IAM action the operator's role lacks or that it found no credentials at all.
 */

/** Error names under which the services refuse a call for want of a permission. */
const ACCESS_DENIED_CODES = new Set([
  // EC2's query protocol.
  'UnauthorizedOperation',
  // SQS's JSON protocol and most other services.
  'AccessDenied',
  'AccessDeniedException',
  'AWS.SimpleQueueService.AccessDenied',
]);

/** Error names under which the credentials themselves were refused. */
const BAD_CREDENTIALS_CODES = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidSignatureException',
]);

/** The SDK's name for "no credential provider in the chain produced credentials". */
const NO_CREDENTIALS_NAME = 'CredentialsProviderError';

/** The operator's role lacks an IAM permission. */
export class AwsPermissionError extends Error {
  constructor(
    /** The IAM action to allow, e.g. `ec2:DescribeSpotPriceHistory`. */
    readonly action: string,
    cause: unknown,
  ) {
    super(
      `AWS refused ${action}: the operator's IAM role (IRSA or EKS Pod Identity) needs "${action}" allowed (${describe(
        cause,
      )})`,
      { cause },
    );
    this.name = 'AwsPermissionError';
  }
}

/** The operator has no AWS credentials, or AWS refused the ones it has. */
export class AwsCredentialsError extends Error {
  constructor(readonly action: string, cause: unknown) {
    super(
      `no usable AWS credentials for ${action}: give the operator's service account an IAM role (IRSA or EKS Pod Identity) or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (${describe(
        cause,
      )})`,
      { cause },
    );
    this.name = 'AwsCredentialsError';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** The same error, explained when it is one a person fixes in IAM or credentials. */
export function explainAwsError(action: string, error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { Code?: string }).Code ?? error.name;
  if (ACCESS_DENIED_CODES.has(code) || ACCESS_DENIED_CODES.has(error.name)) {
    return new AwsPermissionError(action, error);
  }
  if (
    error.name === NO_CREDENTIALS_NAME ||
    BAD_CREDENTIALS_CODES.has(code) ||
    BAD_CREDENTIALS_CODES.has(error.name)
  ) {
    return new AwsCredentialsError(action, error);
  }
  return error;
}

/** Runs one AWS call, explaining a permission or credentials failure by its IAM action. */
export async function callAws<T>(
  action: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw explainAwsError(action, error);
  }
}
