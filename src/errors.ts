/**
 * One error class per failure kind, so callers (and the CLI's exit codes) can tell them apart.
 * Every message names the input that caused it.
 */
export type FlameErrorKind =
  | 'bad_request'
  | 'not_found'
  | 'unauthorized'
  | 'conflict'
  | 'timeout'
  | 'excluded'
  | 'internal';

/** Base class of every error the SDK throws on purpose. */
export class FlameError extends Error {
  /** Which kind of failure this is (`internal` for a plain FlameError); the CLI maps it to an exit code. */
  readonly kind: FlameErrorKind = 'internal';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The caller gave something malformed: bad config, wrong JSON, a missing field, an unsafe key. */
export class BadRequestError extends FlameError {
  /** Always `bad_request` for this class. */
  override readonly kind = 'bad_request' as const;
}

/** A result, node, data source or file that does not exist. */
export class NotFoundError extends FlameError {
  /** Always `not_found` for this class. */
  override readonly kind = 'not_found' as const;
}

/** The caller may not do this (e.g. a non-aggregator submitting a final result, a foreign ciphertext). */
export class UnauthorizedError extends FlameError {
  /** Always `unauthorized` for this class. */
  override readonly kind = 'unauthorized' as const;
}

/** The operation clashes with existing state (e.g. a result id that is already taken). */
export class ConflictError extends FlameError {
  /** Always `conflict` for this class. */
  override readonly kind = 'conflict' as const;
}

/** Something did not answer in time; the message names who or what. */
export class TimeoutError extends FlameError {
  /** Always `timeout` for this class. */
  override readonly kind = 'timeout' as const;
}

/** The analysis went on without this node (quorum: it was late, silent or failed). */
export class ExcludedError extends FlameError {
  /** Always `excluded` for this class. */
  override readonly kind = 'excluded' as const;
}

/** A bug or an unexpected failure of a service. */
export class InternalError extends FlameError {
  /** Always `internal` for this class. */
  override readonly kind = 'internal' as const;
}
