/**
 * The node's Keycloak token, shared by every FLAME node adapter. The orchestrator replaces it through
 * `/token_refresh`; requests already under way keep the token they were sent with, every request
 * built afterwards carries the new one, so no work is dropped by the swap.
 */
import { BadRequestError } from '../errors.js';

/** A bearer token that can be swapped while requests run. */
export class TokenHolder {
  private value: string;
  private readonly listeners: Array<(token: string) => void> = [];

  /** @param token the token from `KEYCLOAK_TOKEN` */
  constructor(token: string) {
    this.value = checkToken(token);
  }

  /** The token to send now. */
  get(): string {
    return this.value;
  }

  /** Replaces the token (from `/token_refresh`). */
  set(token: string): void {
    this.value = checkToken(token);
    for (const l of this.listeners) l(this.value);
  }

  /** Calls `listener` after each swap. */
  onChange(listener: (token: string) => void): void {
    this.listeners.push(listener);
  }

  /** `Authorization` header with the current token. */
  authorization(): Record<string, string> {
    return { authorization: `Bearer ${this.value}` };
  }

  /** Seconds until the token's `exp` claim (0 when past or absent), as the orchestrator's `/healthz` wants. */
  remainingSeconds(now = Date.now()): number {
    const exp = jwtExpiry(this.value);
    if (exp === undefined) return 0;
    return Math.max(0, Math.floor(exp - now / 1000));
  }
}

function checkToken(token: string): string {
  if (typeof token !== 'string' || token.length === 0 || token.length > 16_384 || !/^[\x21-\x7e]+$/.test(token)) {
    throw new BadRequestError('keycloak token: expected 1-16384 printable characters without spaces');
  }
  return token;
}

/** The `exp` claim (seconds since the epoch) of a JWT, read without verifying it; undefined when unreadable. */
export function jwtExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part || part.length > 8192) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}
