/**
 * Test helper for the decoder fuzzer: a seeded PRNG, seed values of every kind, a model of frames
 * (envelope → payload, composites → JSON + nested part frames) and structure-aware mutations that
 * re-seal each level (lengths and CRC recomputed), so mutated bytes reach the inner decoders
 * instead of all dying at the checksum.
 */
import { crc32 } from 'node:zlib';
import {
  Bool,
  DenseUnion,
  Field,
  FixedSizeList,
  Int32,
  LargeUtf8,
  List,
  makeBuilder,
  Map_,
  Struct,
  Table,
  tableFromArrays,
  TimestampMillisecond,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { encodeValue, HEADER_BYTES, KIND_TAGS, Tensor, type FlameValue, type ValueKind } from '../../src/codec/index.js';
import { hostileValues, lengthFields, readLength, type LengthField } from './arrow-frames.js';
import { SeededRandom } from '../../src/ml/random.js';

/** Uniform numbers in [0, 1) from a seed (the SDK's mulberry32), so a fuzz run repeats exactly. */
export function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

/** A frame as a tree: its kind and payload; composites also keep their JSON and part frames. */
export interface FrameNode {
  kind: ValueKind;
  payload: Buffer;
  json?: Buffer;
  parts?: FrameNode[];
  /** Length fields of an Arrow payload (from apache-arrow's own flatbuffer classes). */
  arrowLengths?: LengthField[];
}

/** Header + payload with length and CRC computed. */
export function seal(kind: ValueKind, payload: Buffer): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.write('FLMV', 0, 'latin1');
  head.writeUInt8(1, 4);
  head.writeUInt8(KIND_TAGS[kind], 5);
  head.writeBigUInt64LE(BigInt(payload.length), 8);
  head.writeUInt32LE(crc32(payload) >>> 0, 16);
  return Buffer.concat([head, payload]);
}

/** Serialises a node, composing a composite's payload from its JSON and parts. */
export function serialize(node: FrameNode): Buffer {
  if (node.kind !== 'composite' || node.parts === undefined || node.json === undefined) return seal(node.kind, node.payload);
  const chunks: Buffer[] = [u32(node.json.length), node.json];
  for (const part of node.parts) {
    const bytes = serialize(part);
    chunks.push(u64(bytes.length), bytes);
  }
  return seal('composite', Buffer.concat(chunks));
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Parses a frame made by encodeValue back into the model. */
export function parse(frame: Buffer): FrameNode {
  const kind = (Object.entries(KIND_TAGS).find(([, t]) => t === frame[5])![0]) as ValueKind;
  const payload = frame.subarray(HEADER_BYTES);
  if (kind === 'arrow') return { kind, payload, arrowLengths: lengthFields(payload) };
  if (kind !== 'composite') return { kind, payload };
  const jsonLength = payload.readUInt32LE(0);
  const json = payload.subarray(4, 4 + jsonLength);
  const parts: FrameNode[] = [];
  for (let at = 4 + jsonLength; at < payload.length; ) {
    const n = Number(payload.readBigUInt64LE(at));
    parts.push(parse(payload.subarray(at + 8, at + 8 + n)));
    at += 8 + n;
  }
  return { kind, payload, json, parts };
}

function tables(): Table[] {
  const flat = tableFromArrays({ id: Int32Array.from([1, 2, 3, 4]), score: Float64Array.from([0.5, 1.5, -2, 8]), name: ['a', 'b', 'c', 'a'] });
  const list = vectorFromArray([[1, 2], [], null, [3]], new List(new Field('item', new Int32(), true)));
  const struct = vectorFromArray(
    [{ x: 1, label: 'p' }, null, { x: 3, label: null }, { x: 4, label: 'q' }],
    new Struct([new Field('x', new Int32(), true), new Field('label', new Utf8(), true)]),
  );
  const flags = vectorFromArray([true, null, false, true], new Bool());
  const nested = new Table({ list, struct, flags });
  const entries = new Struct<{ key: Utf8; value: Int32 }>([new Field('key', new Utf8(), false), new Field('value', new Int32(), true)]);
  const union = makeBuilder({
    type: new DenseUnion([0, 1], [new Field('n', new Int32(), true), new Field('s', new Utf8(), true)]),
    valueToChildTypeId: (_b: unknown, v: unknown) => (typeof v === 'number' ? 0 : 1),
  } as Parameters<typeof makeBuilder>[0]);
  for (const v of [1, 'two', 3, 'four']) union.append(v as never);
  const wide = new Table({
    map: vectorFromArray([new Map([['a', 1]]), null, new Map(), new Map([['b', 2], ['c', 3]])], new Map_<Utf8, Int32>(new Field('entries', entries, false))),
    pairs: vectorFromArray([[1, 2], null, [3, 4], [5, 6]], new FixedSizeList(2, new Field('v', new Int32(), true))),
    big: vectorFromArray(['x', null, 'yz', ''], new LargeUtf8()),
    when: vectorFromArray([0, 1e12, null, 5], new TimestampMillisecond('UTC')),
    union: union.toVector(),
  });
  return [flat, nested, flat.concat(flat), wide];
}

/** The seed values, by the decoder they exercise. */
export function seedValues(): Array<[ValueKind, FlameValue]> {
  const [flat, nested, twoBatches, wide] = tables();
  return [
    ['json', { round: 3, loss: 0.25, names: ['a', 'é✓', ''], nested: { deep: [[1], [2, [3]]] }, ok: true, none: null }],
    ['json', [1, -2.5e300, 'x'.repeat(40)]],
    ['bytes', Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff))],
    ['arrow', flat],
    ['arrow', nested],
    ['arrow', twoBatches],
    ['arrow', wide],
    ['tensor', new Tensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]))],
    ['tensor', new Tensor('int64', [4], new BigInt64Array([1n, -2n, 3n, 4n]))],
    ['tensor', Tensor.zeros('uint8', [0, 5])],
    ['composite', { w: new Tensor('float64', [2], new Float64Array([0.5, 2])), t: flat, b: Buffer.from('blob'), nested: [nested, { x: new Tensor('int32', [1], new Int32Array([9])) }] }],
  ];
}

/** Seed frames parsed into the model. */
export function seedFrames(): Array<{ kind: ValueKind; node: FrameNode }> {
  return seedValues().map(([kind, value]) => ({ kind, node: parse(Buffer.from(encodeValue(value))) }));
}

const INTERESTING = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 1n << 40n, -1n, -8n];

/** The mutations, named for the report. */
export const MUTATIONS = ['bitflip', 'overwrite', 'length', 'truncate', 'extend', 'splice', 'envelope'] as const;
/** One of {@link MUTATIONS}. */
export type Mutation = (typeof MUTATIONS)[number];

/** Applies one random mutation to a copy of `node` (or its serialised frame); returns the bytes to decode. */
export function mutate(node: FrameNode, donors: FrameNode[], rnd: () => number, op: Mutation): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const int = (n: number): number => Math.floor(rnd() * n);
  if (op === 'envelope') {
    // header fields of the outer frame, checksum left as it falls
    const frame = serialize(node);
    const at = pick([0, 1, 3, 4, 5, 6, 8, 9, 12, 15, 16, 19]);
    frame[at] = pick([0, 1, 2, 3, 4, 5, 6, 0x7f, 0xff, frame[at] ^ (1 << int(8))]);
    return frame;
  }
  // pick the level to mutate: the outer payload, a composite's JSON, or one of its parts
  const targets: Array<{ get: () => Buffer; set: (b: Buffer) => void; node: FrameNode }> = [];
  const collect = (n: FrameNode): void => {
    targets.push({ get: () => n.payload, set: (b) => ((n.payload = b), delete n.parts, delete n.json), node: n });
    if (n.json !== undefined) targets.push({ get: () => n.json!, set: (b) => (n.json = b), node: n });
    for (const p of n.parts ?? []) collect(p);
  };
  const copy = clone(node);
  collect(copy);
  const target = pick(targets);
  const bytes = Buffer.from(target.get());
  let out: Buffer = bytes;
  switch (op) {
    case 'bitflip':
      for (let i = 1 + int(8); i > 0 && bytes.length > 0; i--) bytes[int(bytes.length)] ^= 1 << int(8);
      break;
    case 'overwrite':
      for (let i = 1 + int(4); i > 0 && bytes.length > 0; i--) bytes[int(bytes.length)] = pick([0, 0xff, 0x7f, 0x80, int(256)]);
      break;
    case 'length': {
      const fields = target.node.arrowLengths;
      if (fields !== undefined && fields.length > 0 && target.get() === target.node.payload && rnd() < 0.8) {
        const f = pick(fields);
        const v = pick([...hostileValues(readLength(bytes, f), f.width), ...INTERESTING]);
        if (f.width === 4) bytes.writeUInt32LE(Number(BigInt.asUintN(32, v)), f.at);
        else bytes.writeBigUInt64LE(BigInt.asUintN(64, v), f.at);
      } else if (bytes.length >= 8) {
        // any aligned word: tensor dims, composite lengths, flatbuffer offsets
        const width = rnd() < 0.5 ? 4 : 8;
        const at = int(Math.floor((bytes.length - width) / 4) + 1) * 4;
        const v = pick(INTERESTING);
        if (width === 4) bytes.writeUInt32LE(Number(BigInt.asUintN(32, v)), at);
        else bytes.writeBigUInt64LE(BigInt.asUintN(64, v), at);
      }
      break;
    }
    case 'truncate':
      out = bytes.subarray(0, int(bytes.length + 1));
      break;
    case 'extend': {
      const extra = rnd() < 0.5 ? Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256))) : bytes.subarray(int(bytes.length + 1));
      out = Buffer.concat([bytes, extra]);
      break;
    }
    case 'splice': {
      const donor = pick(donors);
      const other = rnd() < 0.5 ? donor.payload : serialize(donor);
      out = Buffer.concat([bytes.subarray(0, int(bytes.length + 1)), other.subarray(int(other.length + 1))]);
      break;
    }
  }
  target.set(out);
  // usually re-seal (lengths and CRC recomputed at every level); sometimes leave the outer frame stale
  const frame = serialize(copy);
  if (rnd() < 0.05) frame.writeUInt32LE((frame.readUInt32LE(16) ^ 1) >>> 0, 16);
  return frame;
}

function clone(n: FrameNode): FrameNode {
  return { ...n, payload: Buffer.from(n.payload), json: n.json && Buffer.from(n.json), parts: n.parts?.map(clone) };
}
