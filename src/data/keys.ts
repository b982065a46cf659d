/**
 * Keys of file data sources: relative POSIX paths below the source's root. One check for S3 and
 * folders, so a key that is refused in one is refused in the other.
 */
import { BadRequestError } from '../errors.js';

/**
 * Return `key` if it is a safe relative key (no leading '/', no '.' or '..' segment, no empty
 * segment, no backslash or NUL); throw BadRequestError naming it otherwise.
 */
export function checkDataKey(key: string, source: string): string {
  if (typeof key !== 'string' || key === '') {
    throw new BadRequestError(`${source}: key ${JSON.stringify(key)} is empty`);
  }
  if (key.includes('\0') || key.includes('\\')) {
    throw new BadRequestError(`${source}: key ${JSON.stringify(key)} contains a NUL or backslash`);
  }
  if (key.startsWith('/')) {
    throw new BadRequestError(`${source}: key ${JSON.stringify(key)} must be relative (no leading '/')`);
  }
  const segments = key.split('/');
  if (segments.some((s) => s === '..' || s === '.' || s === '')) {
    throw new BadRequestError(`${source}: key ${JSON.stringify(key)} has an empty, '.' or '..' segment (escapes are refused)`);
  }
  return key;
}

/** A listing prefix: '' (everything) or a key prefix obeying the same rules as a key. */
export function checkListPrefix(prefix: string | undefined, source: string): string {
  if (prefix === undefined || prefix === '') return '';
  // A trailing '/' ("images/") is a folder prefix; check the part before it like a key.
  checkDataKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix, source);
  return prefix;
}
