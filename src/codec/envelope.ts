/**
 * The codec's outer frame: what lets a reader tell a FLAME value from random bytes, pick the right
 * decoder, and notice truncation or corruption before decoding.
 *
 *   offset  size  field
 *   0       4     magic "FLMV"
 *   4       1     format version (1)
 *   5       1     kind tag (see {@link KIND_TAGS})
 *   6       2     reserved, 0
 *   8       8     payload length, unsigned little-endian
 *   16      4     CRC-32 of the payload, unsigned little-endian
 *   20      ...   payload
 */
import { crc32 } from 'node:zlib';
import { BadRequestError } from '../errors.js';

/** First four bytes of every encoded value. */
export const MAGIC = Buffer.from('FLMV', 'latin1');
/** The format version this code writes (and the only one it reads). */
export const FORMAT_VERSION = 1;
/** Bytes before the payload. */
export const HEADER_BYTES = 20;

/** What a payload holds. */
export type ValueKind = 'json' | 'bytes' | 'arrow' | 'tensor' | 'composite';

/** Wire tags of the kinds; part of the format, never renumber. */
export const KIND_TAGS: Readonly<Record<ValueKind, number>> = { json: 1, bytes: 2, arrow: 3, tensor: 4, composite: 5 };

const KIND_BY_TAG = new Map<number, ValueKind>(Object.entries(KIND_TAGS).map(([k, t]) => [t, k as ValueKind]));

/** Frames `payload` (one or more chunks, concatenated) as a value of `kind`. */
export function seal(kind: ValueKind, payload: Uint8Array | Uint8Array[]): Buffer {
  const parts = Array.isArray(payload) ? payload : [payload];
  const length = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT_VERSION, 4);
  out.writeUInt8(KIND_TAGS[kind], 5);
  out.writeUInt16LE(0, 6);
  out.writeBigUInt64LE(BigInt(length), 8);
  let offset = HEADER_BYTES;
  let crc = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
    // skip empty parts: zlib.crc32 returns 0 (not the running value) for an empty view on Node 20
    if (p.byteLength > 0) crc = crc32(p, crc);
  }
  out.writeUInt32LE(crc >>> 0, 16);
  return out;
}

/** Throws the BadRequestError of a frame that cannot be read (a function, not a closure per call: hot path). */
function refuse(what: string, why: string): never {
  throw new BadRequestError(`cannot decode ${what}: ${why}`);
}

/** Reads a frame's header and checks length and checksum; throws BadRequestError naming `what`. */
export function open(bytes: Uint8Array, what: string): { kind: ValueKind; payload: Buffer } {
  if (!(bytes instanceof Uint8Array)) refuse(what, `expected bytes, got ${typeof bytes}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) refuse(what, 'not a FLAME value (wrong magic)');
  if (buf.length < HEADER_BYTES) refuse(what, `truncated header (${buf.length} of ${HEADER_BYTES} bytes)`);
  const version = buf.readUInt8(4);
  if (version !== FORMAT_VERSION) refuse(what, `unsupported format version ${version} (this SDK reads version ${FORMAT_VERSION})`);
  const tag = buf.readUInt8(5);
  const kind = KIND_BY_TAG.get(tag);
  if (kind === undefined) refuse(what, `unknown kind tag ${tag}`);
  if (buf.readUInt16LE(6) !== 0) refuse(what, `reserved header bytes are ${buf.readUInt16LE(6)}, expected 0`);
  const length = buf.readBigUInt64LE(8);
  const actual = BigInt(buf.length - HEADER_BYTES);
  if (length > actual) refuse(what, `truncated: payload should be ${length} bytes, only ${actual} present`);
  if (length < actual) refuse(what, `${actual - length} unexpected bytes after the payload`);
  const payload = buf.subarray(HEADER_BYTES);
  if ((crc32(payload) >>> 0) !== buf.readUInt32LE(16)) refuse(what, 'checksum mismatch (corrupted data)');
  return { kind: kind as ValueKind, payload };
}
