/**
 * Caps on what untrusted input may make a node spend: bytes from other nodes, from storage, from a
 * request or from a worker's stdin. Every cap has a default, can be set in the config (`limits`) or
 * from the environment (`FLAME_MAX_*`), and produces an error that names the cap and how to raise it.
 */
import { BadRequestError } from './errors.js';

/** The caps; every size is in bytes unless the name says otherwise. */
export interface Limits {
  /** Classes a diagnosis / cleaning request or the worker may declare (`FLAME_MAX_CLASSES`). */
  maxClasses: number;
  /** Decoded pixels (width × height) of one image, checked from its header before decoding (`FLAME_MAX_IMAGE_PIXELS`). */
  maxImagePixels: number;
  /** Largest encoded value a node accepts from a peer, inline or through storage (`FLAME_MAX_MESSAGE_BYTES`). */
  maxMessageBytes: number;
  /** Largest object a storage reference may point to (`FLAME_MAX_REFERENCE_BYTES`). */
  maxReferenceBytes: number;
  /** Bytes of messages one sender may have waiting unread in this node's inbox (`FLAME_MAX_UNREAD_BYTES`). */
  maxUnreadBytes: number;
  /** Longest line the stdio worker reads (`FLAME_MAX_LINE_BYTES`). */
  maxLineBytes: number;
  /** Time one decode of peer data may take, in ms (`FLAME_DECODE_TIMEOUT_MS`). */
  decodeTimeoutMs: number;
  /** Memory one decode of peer data may use (`FLAME_DECODE_MEMORY_BYTES`). */
  decodeMemoryBytes: number;
}

const MiB = 1024 * 1024;

/** The defaults: generous for real analyses, far below what would hurt a node. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxClasses: 1000,
  maxImagePixels: 25_000_000,
  maxMessageBytes: 1024 * MiB,
  maxReferenceBytes: 1024 * MiB,
  maxUnreadBytes: 256 * MiB,
  maxLineBytes: 16 * MiB,
  decodeTimeoutMs: 1000,
  decodeMemoryBytes: 256 * MiB,
});

/** Environment variable of each cap. */
export const LIMIT_ENV: Readonly<Record<keyof Limits, string>> = Object.freeze({
  maxClasses: 'FLAME_MAX_CLASSES',
  maxImagePixels: 'FLAME_MAX_IMAGE_PIXELS',
  maxMessageBytes: 'FLAME_MAX_MESSAGE_BYTES',
  maxReferenceBytes: 'FLAME_MAX_REFERENCE_BYTES',
  maxUnreadBytes: 'FLAME_MAX_UNREAD_BYTES',
  maxLineBytes: 'FLAME_MAX_LINE_BYTES',
  decodeTimeoutMs: 'FLAME_DECODE_TIMEOUT_MS',
  decodeMemoryBytes: 'FLAME_DECODE_MEMORY_BYTES',
});

/** Command-line option of each cap that `flame` commands take (`--max-classes`, ...). */
export const LIMIT_FLAG: Readonly<Partial<Record<keyof Limits, string>>> = Object.freeze({
  maxClasses: '--max-classes',
  maxImagePixels: '--max-image-pixels',
  maxLineBytes: '--max-line-bytes',
});

/** The caps that `FLAME_MAX_*` variables set (only those present). */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const [field, name] of Object.entries(LIMIT_ENV) as Array<[keyof Limits, string]>) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new BadRequestError(`config ${name}: expected a whole number >= 1, got ${JSON.stringify(raw)}`);
    out[field] = n;
  }
  return out;
}

/** `partial` over the defaults, each checked (a whole number >= 1); BadRequestError names a bad field. */
export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  const out: Limits = { ...DEFAULT_LIMITS };
  if (partial === null || typeof partial !== 'object') throw new BadRequestError('config limits: expected an object');
  for (const [field, value] of Object.entries(partial)) {
    if (!(field in DEFAULT_LIMITS)) throw new BadRequestError(`config limits.${field}: unknown cap (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw new BadRequestError(`config limits.${field}: expected a whole number >= 1, got ${JSON.stringify(value)}`);
    out[field as keyof Limits] = value as number;
  }
  return out;
}

/** How to raise a cap: its command-line option, where there is one, and its environment variable. */
export function raiseHint(field: keyof Limits): string {
  const flag = LIMIT_FLAG[field];
  return `${field}; raise it with ${flag ? `${flag} or ` : ''}${LIMIT_ENV[field]}`;
}

/** The error for input over a cap: says what, how much, the cap, and the setting that raises it. */
export function overLimit(what: string, amount: number | string, field: keyof Limits, limit: number): BadRequestError {
  return new BadRequestError(`${what}: ${amount} is over the limit of ${limit} (${raiseHint(field)})`);
}
