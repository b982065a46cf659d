/**
 * The one mapping of S3 failures to the SDK's error kinds, by the service's error name and HTTP
 * status (never by message text). Every message names the action and the s3:// place.
 */
import { BadRequestError, ConflictError, FlameError, InternalError, NotFoundError, TimeoutError, UnauthorizedError } from '../errors.js';

interface ServiceError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of an S3 service error; undefined when no response came (network, credentials). */
export function s3Status(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as ServiceError).$metadata?.httpStatusCode : undefined;
}

/** The S3 error name (`NoSuchKey`, `AccessDenied`, …) or the client's (`CredentialsProviderError`). */
export function s3ErrorName(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const e = err as ServiceError;
  return e.name ?? e.Code ?? '';
}

/** Whether `err` says the bucket itself is missing (HEAD answers carry no name: they read as a missing key). */
export function isMissingBucket(err: unknown): boolean {
  return s3ErrorName(err) === 'NoSuchBucket';
}

/** Error names that mean "these credentials may not do this". */
export const S3_UNAUTHORIZED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);
/** Error names of a missing object, upload or resource (the bucket has its own message). */
export const S3_NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload', 'NoSuchVersion']);
/** Error names of a request that clashes with what exists. */
export const S3_CONFLICT = new Set(['BucketAlreadyExists', 'BucketAlreadyOwnedByYou', 'BucketNotEmpty', 'OperationAborted']);
/** Error names of a request the service refused as malformed. */
export const S3_BAD_REQUEST = new Set([
  'InvalidArgument', 'InvalidRequest', 'InvalidBucketName', 'InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'EntityTooLarge', 'MalformedXML', 'InvalidRange', 'KeyTooLongError',
]);
/** Error names of a request that did not finish in time (the service's, or the Node.js handler's). */
export const S3_TIMEOUT = new Set(['RequestTimeout', 'TimeoutError', 'RequestTimeoutException']);

/** What to set when no credentials were found: the SDK's own variables and the default AWS chain's. */
export const S3_CREDENTIALS_HELP =
  'set FLAME_HUB_S3_ACCESS_KEY_ID and FLAME_HUB_S3_SECRET_ACCESS_KEY (hub storage; FLAME_LOCAL_S3_ACCESS_KEY_ID and FLAME_LOCAL_S3_SECRET_ACCESS_KEY ' +
  'for local storage; accessKeyId and secretAccessKey for an S3 data source in FLAME_DATA_SOURCES), ' +
  'or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the default AWS credential chain';

/**
 * Maps an S3 (AWS SDK) failure to the SDK's error kinds; FlameErrors pass through unchanged.
 * @param action what was attempted, e.g. `read` (`cannot read s3://b/k: …`)
 * @param where the s3:// place, e.g. `s3://bucket/prefix/key`
 * @param place the bucket (named when it is missing) and the endpoint (named when unreachable)
 */
export function s3Error(action: string, where: string, err: unknown, place: { bucket?: string; endpoint?: string } = {}): FlameError {
  if (err instanceof FlameError) return err;
  const name = s3ErrorName(err);
  const status = s3Status(err);
  const detail = err instanceof Error ? err.message : String(err);
  const what = `cannot ${action} ${where}`;
  const cause = { cause: err };
  if (name === 'CredentialsProviderError') return new UnauthorizedError(`${what}: no S3 credentials found: ${S3_CREDENTIALS_HELP}`, cause);
  if (name === 'NoSuchBucket') return new NotFoundError(`${what}: bucket ${JSON.stringify(place.bucket ?? where)} does not exist`, cause);
  if (S3_NOT_FOUND.has(name) || status === 404) return new NotFoundError(`${what}: not found`, cause);
  if (S3_UNAUTHORIZED.has(name) || status === 401 || status === 403) return new UnauthorizedError(`${what}: access denied (${name || status})`, cause);
  if (S3_CONFLICT.has(name) || status === 409) return new ConflictError(`${what}: ${name || 'conflict'} (HTTP ${status ?? '-'})`, cause);
  if (S3_TIMEOUT.has(name) || status === 408 || status === 504) return new TimeoutError(`${what}: timed out (${name || status}: ${detail})`, cause);
  if (S3_BAD_REQUEST.has(name) || status === 400) return new BadRequestError(`${what}: refused as malformed (${name || status}: ${detail})`, cause);
  if (status === undefined) {
    // no HTTP answer at all: connection refused, DNS, TLS
    const code = (err as ServiceError | undefined)?.code;
    return new InternalError(`${what}: S3 endpoint ${place.endpoint ?? '(default)'} unreachable (${code ?? (name ? `${name}: ${detail}` : detail)})`, cause);
  }
  return new InternalError(`${what}: HTTP ${status}${name ? ` ${name}` : ''}: ${detail}`, cause);
}
