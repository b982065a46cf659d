/**
 * Object metadata rules shared by the stores. S3 sends metadata as HTTP headers, so keys must be
 * header tokens and values printable ASCII; the filesystem store applies the same rules so that
 * code tested against one backend behaves the same on the other.
 */
import { BadRequestError } from '../errors.js';

/** S3 caps user metadata at 2 KiB (keys + values); we check the same budget everywhere. */
export const MAX_METADATA_BYTES = 2048;

const META_KEY = /^[a-z0-9][a-z0-9_-]{0,127}$/;
const META_VALUE = /^[\x20-\x7e]*$/;

/**
 * Returns a copy of `metadata` with lower-case keys, after checking keys (letters, digits, `_`, `-`),
 * values (printable ASCII) and the total size. `key` names the object in error messages.
 */
export function normaliseMetadata(metadata: Record<string, string> | undefined, key: string): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [rawName, value] of Object.entries(metadata ?? {})) {
    const name = rawName.toLowerCase();
    if (!META_KEY.test(name)) {
      throw new BadRequestError(`metadata of ${JSON.stringify(key)}: bad name ${JSON.stringify(rawName)} (letters, digits, '_' or '-')`);
    }
    if (typeof value !== 'string' || !META_VALUE.test(value)) {
      throw new BadRequestError(
        `metadata of ${JSON.stringify(key)}: value of ${JSON.stringify(rawName)} must be printable ASCII (encode it, e.g. encodeURIComponent)`,
      );
    }
    out[name] = value;
    bytes += name.length + value.length;
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw new BadRequestError(`metadata of ${JSON.stringify(key)}: ${bytes} bytes, more than the ${MAX_METADATA_BYTES} allowed`);
  }
  return out;
}
