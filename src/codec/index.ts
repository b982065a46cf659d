/**
 * Encoding of the values analyses exchange (messages, intermediate and final results): JSON data,
 * raw bytes, Arrow tables, Tensors, and JSON structures that hold any of those as leaves.
 * Every encoding is a self-describing, versioned frame (see ./envelope.ts), so a reader can
 * always tell what it got and rejects garbage with a BadRequestError naming the value.
 */
import { Table, tableToIPC } from 'apache-arrow';
import { BadRequestError } from '../errors.js';
import { MAX_DEPTH, REF } from './decode.js';
import { HEADER_BYTES, seal, type ValueKind } from './envelope.js';
import { assertLittleEndian, Tensor, TENSOR_DTYPES } from './tensor.js';

export { Tensor, TENSOR_DTYPES, shapeSize } from './tensor.js';
export type { TensorData, TensorDataMap, TensorDType } from './tensor.js';
export { FORMAT_VERSION, HEADER_BYTES, KIND_TAGS, MAGIC } from './envelope.js';
export type { ValueKind } from './envelope.js';
export { decodeValue, encodedKindOf } from './decode.js';
export { decodeUntrusted, decodeBudgetOf } from './untrusted.js';
export type { DecodeBudget } from './untrusted.js';
export { closeDecodePool } from './decode-pool.js';
export { valueToFile, tensorToNpy, type FileFormat, type ValueFile } from './file-formats.js';

/** A JSON-serialisable value (finite numbers only). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * What analyses may exchange: JSON data, bytes (`Uint8Array` or `Buffer`; decoded as `Buffer`),
 * an Apache Arrow `Table`, a {@link Tensor}, or arrays / plain objects mixing these.
 * Object properties that are `undefined` are dropped, as JSON does.
 *
 * Plain objects are typed loosely (`{ [key: string]: unknown }`) so that interface types
 * (`MyResult & Record<string, unknown>`) fit; {@link encodeValue} checks every property at run time
 * and names the first one that cannot travel.
 */
export type FlameValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Table
  | Tensor
  | FlameValue[]
  | { [key: string]: unknown };


const MEDIA_TYPES: Readonly<Record<ValueKind, string>> = {
  json: 'application/json',
  bytes: 'application/octet-stream',
  arrow: 'application/vnd.apache.arrow.stream',
  tensor: 'application/x-flame-tensor',
  composite: 'application/x-flame-composite',
};

type Leaf = Uint8Array | Table | Tensor;

function isLeaf(value: unknown): value is Leaf {
  return value instanceof Uint8Array || value instanceof Table || value instanceof Tensor;
}

function leafKind(value: Leaf): ValueKind {
  if (value instanceof Tensor) return 'tensor';
  if (value instanceof Table) return 'arrow';
  return 'bytes';
}

/** Which encoding `value` gets: a leaf's own kind, `json`, or `composite` when binary leaves are nested. */
export function valueKindOf(value: FlameValue): ValueKind {
  if (isLeaf(value)) return leafKind(value);
  // Plain JSON (the common case) is told without copying it: a 60k-image result took seconds.
  if (isPlainJson(value, 0)) return 'json';
  return toTree(value, 'value', []).hasLeaves ? 'composite' : 'json';
}

/** The media type describing `value` (e.g. `application/json`, `application/vnd.apache.arrow.stream`). */
export function contentTypeOf(value: FlameValue): string {
  return MEDIA_TYPES[valueKindOf(value)];
}

/** The media type of an encoded kind. */
export function contentTypeOfKind(kind: ValueKind): string {
  return MEDIA_TYPES[kind];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

/**
 * Checks a JSON tree and swaps binary leaves for `{"$flame": i}` references into `leaves`.
 * `path` names the spot in error messages (e.g. `value.rows[3].x`).
 */
function toTree(value: unknown, path: string, leaves: Leaf[], depth = 0, seen = new Set<object>()): { tree: JsonValue; hasLeaves: boolean } {
  const bad = (why: string): never => {
    throw new BadRequestError(`cannot encode ${path}: ${why}`);
  };
  if (depth > MAX_DEPTH) bad(`nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return { tree: value, hasLeaves: false };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) bad(`${value} is not a finite number (JSON has no NaN or Infinity)`);
    return { tree: value, hasLeaves: false };
  }
  if (typeof value !== 'object') bad(`a ${typeof value} is not JSON-serialisable`);
  const obj = value as object;
  if (isLeaf(obj)) {
    leaves.push(obj);
    return { tree: { [REF]: leaves.length - 1 }, hasLeaves: true };
  }
  if (ArrayBuffer.isView(obj)) bad(`a ${describe(obj)} needs a shape: wrap it in a Tensor (or pass a Uint8Array for raw bytes)`);
  if (seen.has(obj)) bad('circular reference');
  seen.add(obj);
  let hasLeaves = false;
  let tree: JsonValue;
  if (Array.isArray(obj)) {
    tree = obj.map((item: unknown, i) => {
      if (item === undefined) {
        throw new BadRequestError(`cannot encode ${path}[${i}]: undefined (JSON has no undefined in arrays; use null)`);
      }
      const r = toTree(item, `${path}[${i}]`, leaves, depth + 1, seen);
      hasLeaves ||= r.hasLeaves;
      return r.tree;
    });
  } else {
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) bad(`a ${describe(obj)} is not a plain object (convert it, e.g. a Date to an ISO string)`);
    const out: { [key: string]: JsonValue } = {};
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const r = toTree(v, `${path}.${k}`, leaves, depth + 1, seen);
      hasLeaves ||= r.hasLeaves;
      out[k] = r.tree;
    }
    if (REF in out) hasLeaves = true; // forces composite, where the reserved key is rejected below
    tree = out;
  }
  seen.delete(obj);
  return { tree, hasLeaves };
}

function encodeTensor(t: Tensor): Uint8Array[] {
  assertLittleEndian();
  if (t.shape.length > 255) throw new BadRequestError(`cannot encode Tensor(${t.dtype}): ${t.shape.length} dimensions, at most 255`);
  const head = Buffer.alloc(4 + 4 * t.shape.length);
  head.writeUInt8(TENSOR_DTYPES[t.dtype].code, 0);
  head.writeUInt8(t.shape.length, 1);
  t.shape.forEach((d, i) => {
    if (d > 0xffffffff) throw new BadRequestError(`cannot encode Tensor(${t.dtype}): dimension ${i} is ${d}, at most 2^32-1`);
    head.writeUInt32LE(d, 4 + 4 * i);
  });
  return [head, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];
}

function encodeLeaf(value: Leaf): Buffer {
  if (value instanceof Tensor) return seal('tensor', encodeTensor(value));
  if (value instanceof Table) return seal('arrow', tableToIPC(value, 'stream'));
  return seal('bytes', value);
}

/**
 * True when `value` is plain JSON that JSON.stringify writes exactly as {@link toTree} would: finite
 * numbers, strings, booleans, null, arrays without holes or undefined, plain objects without the
 * reserved key, at most {@link MAX_DEPTH} deep. Allocates nothing, so the common case (a message of
 * plain data) skips building a copy; anything else takes the checking path, which names the fault.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== Object.prototype && proto !== null) return false;
  if (REF in (value as object)) return false;
  for (const key in value as object) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) return false;
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined && !isPlainJson(v, depth + 1)) return false;
  }
  return true;
}

/**
 * Encodes a value as a self-describing frame. Throws BadRequestError naming the spot of anything
 * that cannot travel (functions, NaN, class instances, circular references, typed arrays without a Tensor).
 */
export function encodeValue(value: FlameValue): Uint8Array {
  if (value === undefined) throw new BadRequestError('cannot encode value: undefined is not a value (use null)');
  if (isLeaf(value)) return encodeLeaf(value);
  if (isPlainJson(value, 0)) return seal('json', Buffer.from(JSON.stringify(value), 'utf8'));
  const leaves: Leaf[] = [];
  const { tree, hasLeaves } = toTree(value, 'value', leaves);
  if (!hasLeaves) return seal('json', Buffer.from(JSON.stringify(tree), 'utf8'));
  const json = Buffer.from(JSON.stringify(tree), 'utf8');
  const parts: Uint8Array[] = [u32(json.length), json];
  for (const leaf of leaves) {
    const encoded = encodeLeaf(leaf);
    parts.push(u64(encoded.length), encoded);
  }
  // a user object that itself uses the reserved key would be misread as a reference
  assertNoReservedKeys(value, 'value');
  return seal('composite', parts);
}

function assertNoReservedKeys(value: unknown, path: string): void {
  if (value === null || typeof value !== 'object' || isLeaf(value)) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertNoReservedKeys(v, `${path}[${i}]`));
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (k === REF) throw new BadRequestError(`cannot encode ${path}: the key ${JSON.stringify(REF)} is reserved in values that hold bytes, tables or tensors`);
    assertNoReservedKeys(v, `${path}.${k}`);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

/** Size of the frame header, for callers that budget payload sizes. */
export const ENVELOPE_OVERHEAD = HEADER_BYTES;
