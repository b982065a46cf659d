/**
 * NATS failures told apart by the codes the client and JetStream give (never by message text), and
 * mapped to the SDK's error classes. No text fallback is needed: nats.js itself turns the server's
 * `-ERR` lines into `ErrorCode`s, and JetStream API errors carry `api_error.err_code`.
 */
import { ErrorCode, type NatsError } from 'nats';
import { InternalError, TimeoutError, UnauthorizedError } from '../../errors.js';

/** JetStream API error codes this adapter reacts to (nats-server's errors.json). */
export const JS_STREAM_NOT_FOUND = 10059;
/** A stream of that name exists with another config. */
export const JS_STREAM_NAME_IN_USE = 10058;
/** The consumer does not exist. */
export const JS_CONSUMER_NOT_FOUND = 10014;
/** A consumer of that name exists (with another config). */
export const JS_CONSUMER_NAME_IN_USE = 10013;
/** The consumer already exists. */
export const JS_CONSUMER_EXISTS = 10105;
/** The stream holds as many messages of that subject as it may. */
export const JS_MAX_MSGS_PER_SUBJECT = 10077;
/** JetStream is recovering or not yet available. */
const JS_TEMPORARY = new Set([10008, 10005, 10023]);

/** Client codes of a login the server refused or ended, or of a subject the login may not use. */
const UNAUTHORIZED_CODES = new Set<string>([
  ErrorCode.PermissionsViolation,
  ErrorCode.AuthorizationViolation,
  ErrorCode.AuthenticationExpired,
  ErrorCode.AccountExpired,
  ErrorCode.BadAuthentication,
]);

/** The JetStream API error code of `e`, if it is a JetStream API error. */
export function jsErrorCode(e: unknown): number | undefined {
  const api = (e as NatsError | undefined)?.api_error;
  return typeof api?.err_code === 'number' ? api.err_code : undefined;
}

/** Errors that mean "the server is not reachable right now" rather than "this request is wrong". */
export function isTransient(e: unknown): boolean {
  const code = (e as NatsError | undefined)?.code;
  if (code === ErrorCode.Timeout || code === ErrorCode.NoResponders || code === ErrorCode.Disconnect || code === ErrorCode.JetStream408RequestTimeout) return true;
  if (code === ErrorCode.JetStreamNotEnabled) return true; // JetStream answers 503 while it recovers after a restart
  const js = jsErrorCode(e);
  return js !== undefined && JS_TEMPORARY.has(js);
}

/** Translates a NATS error into the SDK's error classes, naming what was attempted. */
export function toFlameError(what: string, e: unknown): Error {
  const err = e as NatsError;
  const detail = err?.message ?? String(e);
  if (typeof err?.code === 'string' && UNAUTHORIZED_CODES.has(err.code)) return new UnauthorizedError(`${what}: ${detail}`, { cause: e });
  if (isTransient(e)) return new TimeoutError(`${what}: ${detail}`, { cause: e });
  return new InternalError(`${what}: ${detail}`, { cause: e });
}
