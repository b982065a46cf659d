import { tableFromArrays, Table } from 'apache-arrow';
import { BadRequestError } from '../../src/errors.js';
import {
  contentTypeOf,
  decodeValue,
  encodeValue,
  encodedKindOf,
  HEADER_BYTES,
  Tensor,
  valueKindOf,
  type FlameValue,
} from '../../src/codec/index.js';

function roundTrip(value: FlameValue): FlameValue {
  return decodeValue(encodeValue(value), 'test value');
}

describe('codec round trips', () => {
  it('keeps JSON values, dropping undefined properties as JSON does', () => {
    const value = { a: 1, b: [true, null, 'x', 2.5, -0.125], c: { d: 'é✓' }, e: undefined };
    expect(roundTrip(value)).toEqual({ a: 1, b: [true, null, 'x', 2.5, -0.125], c: { d: 'é✓' } });
    expect(roundTrip('plain string')).toBe('plain string');
    expect(roundTrip(42)).toBe(42);
    expect(roundTrip(null)).toBeNull();
    expect(valueKindOf(value)).toBe('json');
    expect(contentTypeOf(value)).toBe('application/json');
  });

  it('decodes bytes as a Buffer with the same content, for Uint8Array and Buffer input', () => {
    const bytes = new Uint8Array([0, 1, 2, 255, 128]);
    const out = roundTrip(bytes);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect([...(out as Buffer)]).toEqual([0, 1, 2, 255, 128]);
    // a view into a larger buffer must encode only its own bytes
    const view = Buffer.from('xxhelloxx').subarray(2, 7);
    expect((roundTrip(view) as Buffer).toString()).toBe('hello');
    expect(contentTypeOf(bytes)).toBe('application/octet-stream');
  });

  it('keeps an Arrow table: schema, rows and values', () => {
    const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), score: Float64Array.from([0.5, 1.5, -2]), name: ['a', 'b', 'c'] });
    const out = roundTrip(table) as Table;
    expect(out).toBeInstanceOf(Table);
    expect(out.numRows).toBe(3);
    expect(out.schema.fields.map((f) => f.name)).toEqual(['id', 'score', 'name']);
    expect(out.toArray().map((r) => r.toJSON())).toEqual([
      { id: 1, score: 0.5, name: 'a' },
      { id: 2, score: 1.5, name: 'b' },
      { id: 3, score: -2, name: 'c' },
    ]);
    expect(contentTypeOf(table)).toBe('application/vnd.apache.arrow.stream');
  });

  it.each([
    ['float32', new Float32Array([1.5, -2, 3.25, 4, 5, 6])],
    ['float64', new Float64Array([Math.PI, -1e300, 0, 1, 2, 3])],
    ['int32', new Int32Array([-2147483648, 2147483647, 0, 1, 2, 3])],
    ['uint8', new Uint8Array([0, 255, 1, 2, 3, 4])],
    ['int16', new Int16Array([-32768, 32767, 0, 1, 2, 3])],
    ['int64', new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n, 2n, 3n])],
  ] as const)('keeps a %s tensor with its shape', (dtype, data) => {
    const t = new Tensor(dtype, [2, 3], data);
    const out = roundTrip(t) as Tensor;
    expect(out).toBeInstanceOf(Tensor);
    expect(out.dtype).toBe(dtype);
    expect(out.shape).toEqual([2, 3]);
    expect(out.data.constructor).toBe(data.constructor);
    expect([...out.data]).toEqual([...data]);
  });

  it('keeps a tensor that is a view at an odd offset, and a scalar and an empty tensor', () => {
    const backing = new ArrayBuffer(8 * 5);
    const view = new Float64Array(backing, 8, 3);
    view.set([1, 2, 3]);
    expect([...(roundTrip(new Tensor('float64', [3], view)) as Tensor).data]).toEqual([1, 2, 3]);
    const scalar = roundTrip(new Tensor('float32', [], new Float32Array([7]))) as Tensor;
    expect(scalar.shape).toEqual([]);
    expect([...scalar.data]).toEqual([7]);
    const empty = roundTrip(Tensor.zeros('int32', [0, 4])) as Tensor;
    expect(empty.shape).toEqual([0, 4]);
    expect(empty.size).toBe(0);
  });

  it('keeps bytes, tensors and tables nested in JSON (composite values)', () => {
    const value = {
      round: 2,
      weights: new Tensor('float32', [2], new Float32Array([0.25, 0.75])),
      blobs: [Buffer.from('one'), { inner: new Uint8Array([9]) }],
      table: tableFromArrays({ x: Int32Array.from([5]) }),
      note: 'ok',
    };
    expect(valueKindOf(value)).toBe('composite');
    const out = roundTrip(value) as Record<string, FlameValue>;
    expect(out.round).toBe(2);
    expect(out.note).toBe('ok');
    expect([...(out.weights as Tensor).data]).toEqual([0.25, 0.75]);
    const blobs = out.blobs as [Buffer, { inner: Buffer }];
    expect(blobs[0].toString()).toBe('one');
    expect([...blobs[1].inner]).toEqual([9]);
    expect((out.table as Table).getChild('x')?.toArray()).toEqual(Int32Array.from([5]));
  });
});

describe('Tensor validation', () => {
  it('rejects a shape that does not match the data length, naming dtype and shape', () => {
    expect(() => new Tensor('float32', [2, 2], new Float32Array(3))).toThrow(BadRequestError);
    expect(() => new Tensor('float32', [2, 2], new Float32Array(3))).toThrow(/float32.*\[2,2\].*4 elements.*3/);
  });
  it('rejects data of the wrong array type, negative or fractional dims and unknown dtypes', () => {
    expect(() => new Tensor('float64', [2], new Float32Array(2) as unknown as Float64Array)).toThrow(/Float64Array/);
    expect(() => new Tensor('int32', [-1], new Int32Array(0))).toThrow(BadRequestError);
    expect(() => new Tensor('int32', [1.5], new Int32Array(1))).toThrow(BadRequestError);
    expect(() => new Tensor('complex64' as 'float32', [1], new Float32Array(1))).toThrow(/unknown dtype/);
  });
});

describe('codec rejects what cannot travel, naming the spot', () => {
  it.each([
    [{ a: { b: NaN } }, /value\.a\.b.*NaN/],
    [{ list: [1, Infinity] }, /value\.list\[1\].*Infinity/],
    [{ f: () => 1 }, /value\.f.*function/],
    [{ when: new Date(0) }, /value\.when.*Date/],
    [{ m: new Map() }, /value\.m.*Map/],
    [{ big: 1n }, /value\.big.*bigint/],
    [[1, undefined], /value\[1\].*undefined/],
    [{ raw: new Float32Array(2) }, /value\.raw.*Tensor/],
    [{ $flame: 0, blob: Buffer.from('x') }, /reserved/],
  ])('rejects %p', (value, message) => {
    expect(() => encodeValue(value as unknown as FlameValue)).toThrow(BadRequestError);
    expect(() => encodeValue(value as unknown as FlameValue)).toThrow(message);
  });

  it('rejects circular references', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(() => encodeValue(a as FlameValue)).toThrow(/circular/);
  });
});

describe('codec rejects corrupt input with BadRequestError naming what', () => {
  const good = encodeValue({ hello: 'world', n: [1, 2, 3] });

  it('garbage and empty input', () => {
    expect(() => decodeValue(Buffer.from('definitely not a value'), 'result "r1"')).toThrow(/result "r1".*wrong magic/);
    expect(() => decodeValue(new Uint8Array(0), 'result "r1"')).toThrow(BadRequestError);
  });

  it('an unknown version or kind', () => {
    const v = Buffer.from(good);
    v[4] = 99;
    expect(() => decodeValue(v, 'result "r2"')).toThrow(/result "r2".*version 99/);
    const k = Buffer.from(good);
    k[5] = 77;
    expect(() => decodeValue(k, 'result "r3"')).toThrow(/result "r3".*kind tag 77/);
  });

  it('truncation anywhere, and trailing bytes', () => {
    for (const cut of [3, HEADER_BYTES - 1, HEADER_BYTES, good.length - 1]) {
      expect(() => decodeValue(good.subarray(0, cut), 'result "r4"')).toThrow(BadRequestError);
    }
    expect(() => decodeValue(good.subarray(0, good.length - 1), 'result "r4"')).toThrow(/result "r4".*truncated/);
    expect(() => decodeValue(Buffer.concat([good, Buffer.from([0])]), 'x')).toThrow(/unexpected bytes/);
  });

  it('a flipped bit in the payload of every kind', () => {
    const values: FlameValue[] = [
      { a: 1 },
      Buffer.from('bytes'),
      new Tensor('int32', [2], new Int32Array([1, 2])),
      tableFromArrays({ x: Int32Array.from([1, 2]) }),
    ];
    for (const value of values) {
      const bytes = Buffer.from(encodeValue(value));
      bytes[bytes.length - 1] ^= 0x01;
      expect(() => decodeValue(bytes, 'result "r5"')).toThrow(/result "r5".*checksum/);
    }
  });

  it('reads the kind from the header alone', () => {
    expect(encodedKindOf(encodeValue(Buffer.from('x')))).toBe('bytes');
    expect(encodedKindOf(good)).toBe('json');
  });
});
