/**
 * One validator for object keys and result ids, shared by every ObjectStore adapter and the
 * ResultService, so a key that is unsafe on one backend is rejected by all of them alike.
 */
import { BadRequestError } from '../errors.js';

/** Longest key accepted (S3's own limit is 1024 bytes of UTF-8). */
export const MAX_KEY_BYTES = 1024;

/** Longest single path segment (most filesystems cap a name at 255 bytes). */
export const MAX_SEGMENT_BYTES = 255;

/** C0 controls, DEL and C1 controls: they break logs, terminals and some filesystems. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks an object key: `/`-separated segments of printable characters, relative, without `.` or
 * `..` segments, empty segments or backslashes, at most {@link MAX_KEY_BYTES} bytes.
 * Returns the key unchanged; throws BadRequestError naming the key (and `what` it is) otherwise.
 */
export function assertSafeKey(key: string, what = 'object key'): string {
  const reject = (why: string): never => {
    throw new BadRequestError(`unsafe ${what} ${JSON.stringify(key)}: ${why}`);
  };
  if (typeof key !== 'string') reject('not a string');
  if (key.length === 0) reject('empty');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) reject(`longer than ${MAX_KEY_BYTES} bytes`);
  if (CONTROL_CHARS.test(key)) reject('contains a NUL or control character');
  if (key.includes('\\')) reject('contains a backslash');
  if (key.startsWith('/')) reject("starts with '/'");
  const segments = key.split('/');
  segments.forEach((segment, i) => {
    // a trailing '/' leaves an empty last segment: also rejected, a key names an object, not a folder
    if (segment === '') reject(i === segments.length - 1 ? "ends with '/'" : "contains an empty segment ('//')");
    if (segment === '..' || segment === '.') reject(`contains a '${segment}' segment`);
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) reject(`has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  });
  return key;
}

/**
 * Checks a listing prefix: empty (everything) or a string that would be a safe key prefix
 * (a trailing '/' is allowed here, meaning "this folder").
 */
export function assertSafePrefix(prefix: string): string {
  if (prefix === '') return prefix;
  assertSafeKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, 'object key prefix');
  return prefix;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Checks a single-segment id (a result id, node id, ...): letters, digits, `_`, `-`, `.`, starting
 * with a letter or digit, at most 128 characters and never containing `..`.
 */
export function assertSafeId(id: string, what = 'id'): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id) || id.includes('..')) {
    throw new BadRequestError(
      `unsafe ${what} ${JSON.stringify(id)}: expected 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit`,
    );
  }
  return id;
}

/** Orders keys by their UTF-8 bytes, the order S3 lists in, so every store lists alike. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
