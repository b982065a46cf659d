/**
 * Checks a RecordBatch table (Message.fbs) against the schema's layouts before apache-arrow builds
 * vectors from it: the field nodes and buffers are exactly those the schema needs, every buffer
 * lies within the message body, and each node's length and null count fit what its buffers hold
 * (validity bits, fixed-width values, offsets that rise and stay within the data or child they
 * index, dictionary indices and union type ids that point at something).
 */
import { FlatbufferError, type FlatbufferBytes, type FlatTable, type FlatVector } from './flatbuffer.js';
import { ArrowType, type ArrowField } from './arrow-schema.js';

/**
 * Arrays (field nodes) a stream may hold across all its batches: apache-arrow spends ~6 µs and
 * ~0.8 KiB of heap on each, whatever its size, so this bounds a small frame's cost (~0.6 s, 80 MiB).
 */
export const MAX_ARROW_ARRAYS = 100_000;

/** What one stream's batches share while they are checked. */
export interface StreamState {
  /** Longest array any node may claim (bounded by the frame size: one bit per value). */
  maxLength: number;
  /** Current length of each dictionary delivered so far. */
  dictionaryLengths: Map<number, number>;
  /** Field nodes seen so far in the stream. */
  arrays: number;
  /** Metadata version of the stream (4 = V5; 3 = V4, whose unions carry a validity buffer). */
  version: number;
}

interface Batch {
  what: string;
  fb: FlatbufferBytes;
  nodes: FlatVector;
  buffers: FlatVector;
  nodeIndex: number;
  bufferIndex: number;
  body: DataView;
  state: StreamState;
}

interface Region {
  offset: number;
  length: number;
}

const fail = (what: string, why: string): never => {
  throw new FlatbufferError(`${what}: ${why}`);
};

/** A non-negative int64 that fits a JS number, or a failure naming it. */
function count(value: bigint, what: string): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) fail(what, `${value} is out of range`);
  return Number(value);
}

/**
 * Checks a RecordBatch table carrying `fields` and a `body` of its bodyLength bytes; returns the
 * batch's row count. `what` names the message in errors.
 */
export function checkRecordBatch(batch: FlatTable, fields: ArrowField[], body: DataView, state: StreamState, what: string): number {
  if (batch.has(3)) fail(what, 'compressed Arrow bodies are not supported');
  const variadic = batch.vector(4, 8, 'variadicBufferCounts', 0);
  if (variadic !== undefined && variadic.count > 0) fail(what, 'variadic buffers are not supported');
  const rows = count(batch.i64(0, 'length'), `${what} length`);
  if (rows > state.maxLength) fail(what, `${rows} rows is more than a frame of this size can hold`);
  const nodes = batch.vector(1, 16, 'nodes', Number.MAX_SAFE_INTEGER) ?? { start: 0, count: 0 };
  const buffers = batch.vector(2, 16, 'buffers', Number.MAX_SAFE_INTEGER) ?? { start: 0, count: 0 };
  const b: Batch = { what, fb: batch.fb, nodes, buffers, nodeIndex: 0, bufferIndex: 0, body, state };
  for (const field of fields) {
    const length = visit(b, field);
    if (length !== rows) fail(field.path, `has ${length} values in a batch of ${rows} rows`);
  }
  if (b.nodeIndex !== nodes.count) fail(what, `${nodes.count} field nodes, the schema needs ${b.nodeIndex}`);
  if (b.bufferIndex !== buffers.count) fail(what, `${buffers.count} buffers, the schema needs ${b.bufferIndex}`);
  return rows;
}

function nextNode(b: Batch, field: ArrowField): { length: number; nullCount: number } {
  if (b.nodeIndex >= b.nodes.count) fail(b.what, `too few field nodes (${b.nodes.count}) for the schema`);
  if (++b.state.arrays > MAX_ARROW_ARRAYS) fail(b.what, `the stream holds more than ${MAX_ARROW_ARRAYS} arrays`);
  const at = b.nodes.start + 16 * b.nodeIndex++;
  const length = count(b.fb.i64(at, 'node length'), `${field.path} node length`);
  const nullCount = count(b.fb.i64(at + 8, 'node null count'), `${field.path} null count`);
  if (length > b.state.maxLength) fail(field.path, `length ${length} is more than a frame of this size can hold`);
  if (nullCount > length) fail(field.path, `null count ${nullCount} exceeds length ${length}`);
  return { length, nullCount };
}

function nextBuffer(b: Batch, field: ArrowField, name: string): Region {
  if (b.bufferIndex >= b.buffers.count) fail(b.what, `too few buffers (${b.buffers.count}) for the schema`);
  const at = b.buffers.start + 16 * b.bufferIndex++;
  const offset = count(b.fb.i64(at, 'buffer offset'), `${field.path} ${name} buffer offset`);
  const length = count(b.fb.i64(at + 8, 'buffer length'), `${field.path} ${name} buffer length`);
  if (offset % 8 !== 0) fail(field.path, `${name} buffer offset ${offset} is not 8-byte aligned`);
  if (offset + length > b.body.byteLength) {
    fail(field.path, `${name} buffer [${offset}, ${offset + length}) lies outside the ${b.body.byteLength}-byte body`);
  }
  return { offset, length };
}

/** Needs `bytes` in `r`. */
function holds(field: ArrowField, name: string, r: Region, bytes: number): void {
  if (r.length < bytes) fail(field.path, `${name} buffer has ${r.length} bytes, needs ${bytes}`);
}

/** Needs `n` values of `width` bytes in `r` (without forming n × width, which may exceed 2^53). */
function holdsValues(field: ArrowField, name: string, r: Region, n: number, width: number): void {
  if (n > Math.floor(r.length / width)) fail(field.path, `${name} buffer has ${r.length} bytes, too few for ${n} values of ${width} bytes`);
}

const ZERO_BITS = Uint8Array.from({ length: 256 }, (_, v) => 8 - [...v.toString(2)].filter((c) => c === '1').length);

/** Reads the validity buffer; when nulls are declared, it must hold `length` bits with exactly that many zeros. */
function validity(b: Batch, field: ArrowField, node: { length: number; nullCount: number }): Region | undefined {
  const r = nextBuffer(b, field, 'validity');
  if (node.nullCount === 0) return undefined;
  holds(field, 'validity', r, Math.ceil(node.length / 8));
  let zeros = 0;
  const full = node.length >> 3;
  for (let i = 0; i < full; i++) zeros += ZERO_BITS[b.body.getUint8(r.offset + i)];
  for (let bit = full * 8; bit < node.length; bit++) if ((b.body.getUint8(r.offset + full) & (1 << (bit & 7))) === 0) zeros++;
  if (zeros !== node.nullCount) fail(field.path, `null count ${node.nullCount} but the validity bitmap marks ${zeros} nulls`);
  return r;
}

function isValid(b: Batch, bitmap: Region | undefined, i: number): boolean {
  return bitmap === undefined || (b.body.getUint8(bitmap.offset + (i >> 3)) & (1 << (i & 7))) !== 0;
}

/** Reads an integer of `width` bytes at `at` of the body. */
function readInt(b: Batch, at: number, width: number, signed: boolean): number | bigint {
  switch (width) {
    case 1:
      return signed ? b.body.getInt8(at) : b.body.getUint8(at);
    case 2:
      return signed ? b.body.getInt16(at, true) : b.body.getUint16(at, true);
    case 4:
      return signed ? b.body.getInt32(at, true) : b.body.getUint32(at, true);
    default:
      return signed ? b.body.getBigInt64(at, true) : b.body.getBigUint64(at, true);
  }
}

const INT_ARRAYS = { 1: [Uint8Array, Int8Array], 2: [Uint16Array, Int16Array], 4: [Uint32Array, Int32Array] } as const;

/** `count` integers of `width` (1, 2 or 4) bytes at `r` as a typed array, when aligned in memory (the fast path). */
function ints(b: Batch, r: Region, width: number, signed: boolean, count: number): ArrayLike<number> | undefined {
  const types = INT_ARRAYS[width as 1 | 2 | 4];
  const at = b.body.byteOffset + r.offset;
  if (types === undefined || at % width !== 0) return undefined;
  return new types[signed ? 1 : 0](b.body.buffer as ArrayBuffer, at, count);
}

/** Checks `length + 1` rising offsets; returns the last (the data or child length they need). */
function offsets(b: Batch, field: ArrowField, length: number): number {
  const r = nextBuffer(b, field, 'offsets');
  if (length === 0 && r.length === 0) return 0;
  const w = field.offsetWidth;
  holdsValues(field, 'offsets', r, length + 1, w);
  let prev = -1;
  const fast = w === 4 ? ints(b, r, 4, true, length + 1) : undefined;
  if (fast !== undefined) {
    for (let i = 0; i <= length; i++) {
      const o = fast[i];
      if (o < prev || o < 0) fail(field.path, `offset ${i} (${o}) is negative or less than the one before`);
      prev = o;
    }
    return prev;
  }
  for (let i = 0; i <= length; i++) {
    const at = r.offset + i * w;
    const o = w === 4 ? b.body.getInt32(at, true) : Number(b.body.getBigInt64(at, true));
    if (o < 0 || o < prev || !Number.isSafeInteger(o)) fail(field.path, `offset ${i} (${o}) is negative or less than the one before`);
    prev = o;
  }
  return prev;
}

/** Checks one node (and its children) of `field`; returns the node's length. */
function visit(b: Batch, field: ArrowField): number {
  const node = nextNode(b, field);
  const { length } = node;
  if (field.dictionary !== undefined) {
    const { id, indexWidth, indexSigned } = field.dictionary;
    const bitmap = validity(b, field, node);
    const data = nextBuffer(b, field, 'indices');
    holdsValues(field, 'indices', data, length, indexWidth);
    const size = b.state.dictionaryLengths.get(id);
    if (size === undefined) fail(field.path, `dictionary ${id} is used before a dictionary batch delivers it`);
    const fast = bitmap === undefined ? ints(b, data, indexWidth, indexSigned, length) : undefined;
    if (fast !== undefined) {
      for (let i = 0; i < length; i++) {
        const index = fast[i];
        if (index < 0 || index >= size!) fail(field.path, `index ${index} at row ${i} is outside the ${size}-entry dictionary ${id}`);
      }
      return length;
    }
    for (let i = 0; i < length; i++) {
      if (!isValid(b, bitmap, i)) continue;
      const index = readInt(b, data.offset + i * indexWidth, indexWidth, indexSigned);
      if (index < 0 || index >= size!) fail(field.path, `index ${index} at row ${i} is outside the ${size}-entry dictionary ${id}`);
    }
    return length;
  }
  switch (field.typeId) {
    case ArrowType.Null:
      return length;
    case ArrowType.Bool:
      validity(b, field, node);
      holds(field, 'data', nextBuffer(b, field, 'data'), Math.ceil(length / 8));
      return length;
    case ArrowType.Binary:
    case ArrowType.Utf8:
    case ArrowType.LargeBinary:
    case ArrowType.LargeUtf8: {
      validity(b, field, node);
      const end = offsets(b, field, length);
      holds(field, 'data', nextBuffer(b, field, 'data'), end);
      return length;
    }
    case ArrowType.List:
    case ArrowType.LargeList:
    case ArrowType.Map: {
      validity(b, field, node);
      const end = offsets(b, field, length);
      const child = visit(b, field.children[0]);
      if (child < end) fail(field.path, `offsets reach ${end} but the child has ${child} values`);
      return length;
    }
    case ArrowType.FixedSizeList: {
      validity(b, field, node);
      const child = visit(b, field.children[0]);
      if (field.listSize > 0 && length > Math.floor(child / field.listSize)) {
        fail(field.path, `${length} lists of ${field.listSize} need more than the child's ${child} values`);
      }
      return length;
    }
    case ArrowType.Struct:
      validity(b, field, node);
      for (const c of field.children) {
        const child = visit(b, c);
        if (child < length) fail(c.path, `has ${child} values, its struct has ${length}`);
      }
      return length;
    case ArrowType.Union:
      return visitUnion(b, field, node);
    default: {
      // every fixed-width type: validity and `width` bytes per value
      const bitmap = validity(b, field, node);
      const data = nextBuffer(b, field, 'data');
      holdsValues(field, 'data', data, length, field.width);
      if (field.maxInt64 !== undefined) int64sWithin(b, field, bitmap, data, length, field.maxInt64);
      return length;
    }
  }
}

/** Dates and timestamps apache-arrow would throw on when read: refused here instead. */
function int64sWithin(b: Batch, field: ArrowField, bitmap: Region | undefined, data: Region, length: number, max: bigint): void {
  for (let i = 0; i < length; i++) {
    if (!isValid(b, bitmap, i)) continue;
    const v = b.body.getBigInt64(data.offset + 8 * i, true);
    if (v > max || v < -max) fail(field.path, `value ${v} at row ${i} is out of the range apache-arrow can read (±${max})`);
  }
}

function visitUnion(b: Batch, field: ArrowField, node: { length: number; nullCount: number }): number {
  const { length } = node;
  const { dense, typeIds } = field.union!;
  if (b.state.version < 4) validity(b, field, node);
  const ids = nextBuffer(b, field, 'type ids');
  holds(field, 'type ids', ids, length);
  const at = dense ? nextBuffer(b, field, 'offsets') : undefined;
  if (at !== undefined) holdsValues(field, 'offsets', at, length, 4);
  const childLengths = field.children.map((c) => visit(b, c));
  for (let i = 0; i < length; i++) {
    const child = typeIds.indexOf(b.body.getInt8(ids.offset + i));
    if (child < 0) fail(field.path, `type id ${b.body.getInt8(ids.offset + i)} at row ${i} is not one of ${JSON.stringify(typeIds)}`);
    const slot = at === undefined ? i : b.body.getInt32(at.offset + 4 * i, true);
    if (slot < 0 || slot >= childLengths[child]) fail(field.path, `row ${i} points at value ${slot} of a child with ${childLengths[child]}`);
  }
  return length;
}

/** Checks a DictionaryBatch's data against the dictionary's value type; returns the dictionary's new length. */
export function checkDictionaryBatch(
  dict: FlatTable,
  dictionaries: Map<number, ArrowField>,
  body: DataView,
  state: StreamState,
  what: string,
): { id: number; length: number } {
  const id = count(dict.i64(0, 'id'), `${what} dictionary id`);
  const valueType = dictionaries.get(id) ?? fail(what, `dictionary id ${id} is not declared by the schema`);
  const data = dict.table(1, 'data') ?? fail(what, 'dictionary batch without data');
  const isDelta = dict.bool(2, 'isDelta');
  const rows = checkRecordBatch(data, [valueType], body, state, what);
  const before = state.dictionaryLengths.get(id) ?? 0;
  return { id, length: isDelta ? before + rows : rows };
}
