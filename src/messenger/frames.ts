/**
 * The body of a broker message: one frame byte, then either the encoded value (inline) or a
 * reference to a sealed object in hub storage (a payload over the broker's limit, or an intermediate
 * result). References are small JSON parsed within bounds; they name the object's key, size and
 * SHA-256, and the key must be the one the sender's own transfer prefix gives that message — so a
 * reference can point neither at another analysis' objects nor at an object swapped in by another node.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../errors.js';
import { overLimit, type Limits } from '../limits.js';
import type { ObjectStore } from '../results/port.js';

/** Codec bytes follow. */
export const FRAME_INLINE = 1;
/** JSON {key, size, sha256}: a sealed payload over the broker limit, in hub storage. */
export const FRAME_STORED = 2;
/** JSON {key, result_id, size, sha256}: a sealed intermediate result in hub storage. */
export const FRAME_SEALED = 3;

/** Largest reference JSON accepted. */
const MAX_REFERENCE_JSON = 4096;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const RESULT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A reference to a sealed object in hub storage. */
export interface ObjectRef {
  /** Its key in hub storage. */
  key: string;
  /** Its size in bytes. */
  size: number;
  /** Hex SHA-256 of its bytes. */
  sha256: string;
  /** Set for intermediate results. */
  result_id?: string;
}

/** A parsed body. */
export type Frame = { kind: 'inline'; payload: Uint8Array } | { kind: 'stored' | 'sealed'; ref: ObjectRef };

/** Prefixes `payload` with the frame byte. */
export function frame(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = kind;
  out.set(payload, 1);
  return out;
}

/** The body carrying a reference. */
export function referenceFrame(kind: typeof FRAME_STORED | typeof FRAME_SEALED, ref: ObjectRef): Uint8Array {
  return frame(kind, Buffer.from(JSON.stringify(ref), 'utf8'));
}

/** Hex SHA-256. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Where `sender` parks the object of message or result `id` (each node its own prefix, for bucket policies). */
export function transferKey(projectId: string, analysisId: string, sender: string, id: string): string {
  return `projects/${projectId}/analyses/${analysisId}/transfers/${sender}/${id}`;
}

function parseReference(payload: Uint8Array, what: string, sealed: boolean): ObjectRef {
  if (payload.byteLength > MAX_REFERENCE_JSON) throw new BadRequestError(`${what}: the storage reference is over ${MAX_REFERENCE_JSON} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new BadRequestError(`${what}: the storage reference is not JSON`);
  }
  const r = raw as Partial<ObjectRef> | null;
  if (typeof r?.key !== 'string' || r.key === '') throw new BadRequestError(`${what}: the storage reference has no key`);
  if (sealed && (typeof r.result_id !== 'string' || !RESULT_ID.test(r.result_id))) throw new BadRequestError(`${what}: sealed reference without a result_id`);
  if (!Number.isSafeInteger(r.size) || (r.size as number) < 0) throw new BadRequestError(`${what}: the storage reference has no size`);
  if (typeof r.sha256 !== 'string' || !SHA256_HEX.test(r.sha256)) throw new BadRequestError(`${what}: the storage reference has no sha256`);
  return { key: r.key, size: r.size as number, sha256: r.sha256, ...(sealed ? { result_id: r.result_id } : {}) };
}

/** Splits a body into its frame; BadRequestError naming `what` for anything malformed. */
export function parseFrame(body: Uint8Array, what: string): Frame {
  if (body.length === 0) throw new BadRequestError(`${what}: empty body`);
  const payload = body.subarray(1);
  switch (body[0]) {
    case FRAME_INLINE:
      return { kind: 'inline', payload };
    case FRAME_STORED:
      return { kind: 'stored', ref: parseReference(payload, what, false) };
    case FRAME_SEALED:
      return { kind: 'sealed', ref: parseReference(payload, what, true) };
    default:
      throw new BadRequestError(`${what}: unknown frame kind ${body[0]}`);
  }
}

/**
 * Reads the object a reference points to, refusing more than the reference's size, more than
 * `limits.maxReferenceBytes`, and bytes whose SHA-256 is not the reference's. `refused` names the
 * object in UnauthorizedErrors (e.g. "cannot decrypt intermediate result r from \"a\"").
 */
export async function readReferenced(store: ObjectStore, ref: ObjectRef, limits: Limits, what: string, refused: string): Promise<Uint8Array> {
  if (ref.size > limits.maxReferenceBytes) throw overLimit(`${what}: the referenced object ${ref.key}`, `${ref.size} bytes`, 'maxReferenceBytes', limits.maxReferenceBytes);
  const info = await store.head(ref.key);
  if (!info) throw new NotFoundError(`${what}: the stored body ${ref.key} does not exist (deleted or never written)`);
  if (info.size !== ref.size) throw new UnauthorizedError(`${refused}: the stored object is ${info.size} bytes, the sender sent ${ref.size} (replaced or tampered)`);
  const stream: Readable = await store.getStream(ref.key);
  const chunks: Buffer[] = [];
  let total = 0;
  const hash = createHash('sha256');
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    total += c.length;
    if (total > ref.size) {
      stream.destroy();
      throw new UnauthorizedError(`${refused}: the stored object is larger than the ${ref.size} bytes the sender sent (replaced or tampered)`);
    }
    hash.update(c);
    chunks.push(c);
  }
  if (hash.digest('hex') !== ref.sha256 || total !== ref.size) {
    throw new UnauthorizedError(`${refused}: the stored object differs from what the sender sent (replaced or tampered)`);
  }
  return Buffer.concat(chunks, total);
}
