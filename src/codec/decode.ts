/**
 * Decoding of frames made by `encodeValue`: every length is checked against the bytes present
 * before anything is allocated, so hostile input costs time and memory linear in its size and
 * ends in a BadRequestError naming the value. Arrow IPC payloads are validated structurally
 * (./arrow-stream.ts) before apache-arrow reads them.
 */
import { BadRequestError } from '../errors.js';
import { decodeArrow } from './arrow-stream.js';
import { open, type ValueKind } from './envelope.js';
import { assertLittleEndian, shapeSize, Tensor, TENSOR_DTYPES, type TensorDataMap, type TensorDType } from './tensor.js';
import type { FlameValue, JsonValue } from './index.js';

/** Deepest nesting accepted, so hostile input cannot exhaust the stack. */
export const MAX_DEPTH = 512;
/** Marks a binary leaf inside a composite value's JSON. */
export const REF = '$flame';

const utf8 = new TextDecoder('utf-8', { fatal: true });

const DTYPE_BY_CODE = new Map(Object.entries(TENSOR_DTYPES).map(([dtype, spec]) => [spec.code, dtype as TensorDType]));

/**
 * Whether brackets in `json` nest at most `max` deep (strings skipped). V8 parses deep nesting
 * without overflowing, but slowly (1.4 s for 10^6 levels) and into values every recursive reader
 * overflows on; encodeValue never writes deeper than MAX_DEPTH.
 */
function nestsWithin(json: Uint8Array, max: number): boolean {
  if (json.length <= max) return true;
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === 0x22) {
      // skip the string, and escaped characters in it
      for (i++; i < json.length && json[i] !== 0x22; i++) if (json[i] === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return false;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return true;
}

function decodeJson(payload: Buffer, what: string): JsonValue {
  // a value at depth MAX_DEPTH may itself be an array or object: one bracket more
  if (!nestsWithin(payload, MAX_DEPTH + 1)) throw new BadRequestError(`cannot decode ${what}: JSON nested deeper than ${MAX_DEPTH} levels`);
  try {
    return JSON.parse(utf8.decode(payload)) as JsonValue;
  } catch (err) {
    throw new BadRequestError(`cannot decode ${what}: invalid JSON payload (${(err as Error).message})`, { cause: err });
  }
}

function decodeTensor(payload: Buffer, what: string): Tensor {
  assertLittleEndian();
  const bad = (why: string): never => {
    throw new BadRequestError(`cannot decode ${what}: ${why}`);
  };
  if (payload.length < 4) bad('truncated tensor header');
  const code = payload.readUInt8(0);
  const dtype = DTYPE_BY_CODE.get(code) ?? bad(`unknown tensor dtype code ${code}`);
  const spec = TENSOR_DTYPES[dtype];
  const ndim = payload.readUInt8(1);
  const dataStart = 4 + 4 * ndim;
  if (payload.length < dataStart) bad('truncated tensor shape');
  const shape = Array.from({ length: ndim }, (_, i) => payload.readUInt32LE(4 + 4 * i));
  // the shape must describe exactly the data present; checked before the copy is allocated
  const count = shapeSize(shape);
  const byteLength = count * spec.array.BYTES_PER_ELEMENT;
  if (payload.length - dataStart !== byteLength) {
    bad(`tensor ${dtype}${JSON.stringify(shape)} needs ${byteLength} data bytes, found ${payload.length - dataStart}`);
  }
  // copy into a fresh buffer: typed arrays need aligned offsets, the payload's may not be
  const aligned = new ArrayBuffer(byteLength);
  new Uint8Array(aligned).set(payload.subarray(dataStart));
  return new Tensor(dtype, shape, new spec.array(aligned, 0, count) as TensorDataMap[TensorDType]);
}

/** The JSON tree and the opened binary parts of a composite payload, each part's frame checked. */
function compositeParts(payload: Buffer, what: string): { json: Buffer; parts: Array<{ kind: ValueKind; payload: Buffer }> } {
  const bad = (why: string): never => {
    throw new BadRequestError(`cannot decode ${what}: ${why}`);
  };
  if (payload.length < 4) bad('truncated composite header');
  const jsonLength = payload.readUInt32LE(0);
  if (payload.length - 4 < jsonLength) bad('truncated composite JSON');
  const parts: Array<{ kind: ValueKind; payload: Buffer }> = [];
  let offset = 4 + jsonLength;
  while (offset < payload.length) {
    if (payload.length - offset < 8) bad('truncated composite part length');
    const length = payload.readBigUInt64LE(offset);
    offset += 8;
    if (BigInt(payload.length - offset) < length) bad(`truncated composite part ${parts.length}`);
    const part = open(payload.subarray(offset, offset + Number(length)), `${what} (part ${parts.length})`);
    if (part.kind === 'json' || part.kind === 'composite') bad(`part ${parts.length} has kind ${part.kind}, expected bytes, arrow or tensor`);
    parts.push(part);
    offset += Number(length);
  }
  return { json: payload.subarray(4, 4 + jsonLength), parts };
}

function decodeComposite(payload: Buffer, what: string, owned?: Uint8Array[]): FlameValue {
  const bad = (why: string): never => {
    throw new BadRequestError(`cannot decode ${what}: ${why}`);
  };
  const { json, parts } = compositeParts(payload, what);
  const tree = decodeJson(json, what);
  const leaves = parts.map((p) => decodeKind(p.kind, p.payload, what, owned));
  const used = new Set<number>();
  const revive = (node: JsonValue, depth: number): FlameValue => {
    if (depth > MAX_DEPTH) bad(`nested deeper than ${MAX_DEPTH} levels`);
    if (node === null || typeof node !== 'object') return node;
    if (Array.isArray(node)) return node.map((n) => revive(n, depth + 1));
    if (REF in node) {
      const index = node[REF];
      if (Object.keys(node).length !== 1 || typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= leaves.length) {
        bad(`bad part reference ${JSON.stringify(node).slice(0, 100)}`);
      }
      used.add(index as number);
      return leaves[index as number];
    }
    const out: { [key: string]: FlameValue } = {};
    for (const [k, v] of Object.entries(node)) {
      // an own "__proto__" key, as JSON.parse made it: assigning it would set the prototype
      if (k === '__proto__') Object.defineProperty(out, k, { value: revive(v, depth + 1), enumerable: true, writable: true, configurable: true });
      else out[k] = revive(v, depth + 1);
    }
    return out;
  };
  const value = revive(tree, 0);
  if (used.size !== leaves.length) bad(`${leaves.length - used.size} parts are not referenced`);
  return value;
}

/**
 * Decodes an opened payload of `kind`. `owned`, when given, holds private copies of the value's
 * Arrow payloads in order (as {@link arrowPayloads} lists them): tables are read from those,
 * without copying again.
 */
export function decodeKind(kind: ValueKind, payload: Buffer, what: string, owned?: Uint8Array[]): FlameValue {
  switch (kind) {
    case 'json':
      return decodeJson(payload, what);
    case 'bytes':
      // copy, so the result does not pin (or alias) the caller's larger buffer
      return Buffer.from(payload);
    case 'arrow': {
      const own = owned?.shift();
      return own === undefined ? decodeArrow(payload, what) : decodeArrow(own, what, true);
    }
    case 'tensor':
      return decodeTensor(payload, what);
    case 'composite':
      return decodeComposite(payload, what, owned);
  }
}

/** The Arrow IPC payloads inside an opened value (itself, or a composite's arrow parts); `[]` when none. */
export function arrowPayloads(kind: ValueKind, payload: Buffer, what: string): Buffer[] {
  if (kind === 'arrow') return [payload];
  if (kind !== 'composite') return [];
  return compositeParts(payload, what)
    .parts.filter((p) => p.kind === 'arrow')
    .map((p) => p.payload);
}

/**
 * Decodes what {@link encodeValue} produced. `what` names the value in errors (e.g. `result "abc"`).
 * Garbage, a wrong magic, an unknown version or kind, truncated or corrupted data, lengths that do not
 * fit the frame: BadRequestError. Synchronous and without a time budget: for peer data use
 * `decodeUntrusted`.
 */
export function decodeValue(bytes: Uint8Array, what = 'value'): FlameValue {
  const { kind, payload } = open(bytes, what);
  return decodeKind(kind, payload, what);
}

/** The kind of an encoded value, from its header only (checks magic, version, length and checksum). */
export function encodedKindOf(bytes: Uint8Array, what = 'value'): ValueKind {
  return open(bytes, what).kind;
}
