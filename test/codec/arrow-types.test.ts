/**
 * The Arrow validator must accept every table apache-arrow writes for the types it supports:
 * each column type (with nulls), nested types, dictionaries, several batches and empty tables
 * round-trip through encodeValue / decodeValue unchanged.
 */
import {
  Binary,
  Bool,
  DateDay,
  DateMillisecond,
  Decimal,
  DenseUnion,
  Dictionary,
  DurationMillisecond,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  IntervalDayTime,
  IntervalYearMonth,
  LargeBinary,
  LargeUtf8,
  List,
  Map_,
  Null,
  SparseUnion,
  Struct,
  Table,
  TimeMicrosecond,
  TimeMillisecond,
  TimestampMillisecond,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  makeBuilder,
  makeData,
  makeTable,
  makeVector,
  tableFromArrays,
  vectorFromArray,
  type DataType,
  type Vector,
} from 'apache-arrow';
import { BadRequestError } from '../../src/errors.js';
import { decodeValue, encodeValue } from '../../src/codec/index.js';

const int = (): Field => new Field('v', new Int32(), true);

function mapType(): DataType {
  const entries = new Struct<{ key: Utf8; value: Int32 }>([new Field('key', new Utf8(), false), new Field('value', new Int32(), true)]);
  return new Map_<Utf8, Int32>(new Field('entries', entries, false));
}

/** One column per case: [name, type, values (with nulls)]. */
const COLUMNS: Array<[string, DataType, unknown[]]> = [
  ['null', new Null(), [null, null, null]],
  ['bool', new Bool(), [true, null, false]],
  ['int8', new Int8(), [-128, null, 127]],
  ['int16', new Int16(), [-1, null, 2]],
  ['int32', new Int32(), [1, null, -3]],
  ['int64', new Int64(), [1n, null, -(2n ** 62n)]],
  ['uint8', new Uint8(), [0, null, 255]],
  ['uint16', new Uint16(), [0, null, 65535]],
  ['uint32', new Uint32(), [0, null, 2 ** 32 - 1]],
  ['uint64', new Uint64(), [0n, null, 2n ** 64n - 1n]],
  ['float16', new Float16(), [0.5, null, -2]],
  ['float32', new Float32(), [0.25, null, 3]],
  ['float64', new Float64(), [Math.PI, null, -1e300]],
  ['utf8', new Utf8(), ['é✓', null, '']],
  ['large utf8', new LargeUtf8(), ['a', null, 'bcd']],
  ['binary', new Binary(), [Uint8Array.of(1, 2), null, Uint8Array.of()]],
  ['large binary', new LargeBinary(), [Uint8Array.of(3), null, Uint8Array.of(4, 5)]],
  ['fixed binary', new FixedSizeBinary(3), [Uint8Array.of(1, 2, 3), null, Uint8Array.of(4, 5, 6)]],
  ['date day', new DateDay(), [new Date(0), null, new Date(86400000 * 3)]],
  ['date ms', new DateMillisecond(), [new Date(5), null, new Date(1e12)]],
  ['time ms', new TimeMillisecond(), [1000, null, 2000]],
  ['time us', new TimeMicrosecond(), [1000n, null, 2000n]],
  ['timestamp', new TimestampMillisecond('Europe/Berlin'), [0, null, 1e12]],
  ['duration', new DurationMillisecond(), [5n, null, 7n]],
  ['interval ym', new IntervalYearMonth(), [Int32Array.of(1, 2), null, Int32Array.of(0, 5)]],
  ['interval dt', new IntervalDayTime(), [Int32Array.of(1, 2), null, Int32Array.of(3, 4)]],
  ['decimal', new Decimal(2, 10, 128), [Uint32Array.of(1, 0, 0, 0), null, Uint32Array.of(5, 0, 0, 0)]],
  ['list', new List(int()), [[1, 2], null, []]],
  ['fixed list', new FixedSizeList(2, int()), [[1, 2], null, [3, 4]]],
  ['struct', new Struct([int(), new Field('s', new Utf8(), true)]), [{ v: 1, s: 'x' }, null, { v: 3, s: null }]],
  ['map', mapType(), [new Map([['a', 1]]), null, new Map()]],
  ['dictionary', new Dictionary(new Utf8(), new Int8()), ['x', null, 'x']],
  ['dense union', new DenseUnion([0, 1], [int(), new Field('s', new Utf8(), true)]), [1, 'two', 3]],
  ['sparse union', new SparseUnion([0, 1], [int(), new Field('s', new Utf8(), true)]), ['one', 2, 'three']],
];

/** A vector of `values`; unions need to be told which child each value goes to. */
function vectorOf(type: DataType, values: unknown[]): Vector {
  if (!(type instanceof DenseUnion || type instanceof SparseUnion)) return vectorFromArray(values, type) as Vector;
  const options = { type, valueToChildTypeId: (_b: unknown, v: unknown) => (typeof v === 'number' ? 0 : 1) };
  const builder = makeBuilder(options as Parameters<typeof makeBuilder>[0]);
  for (const v of values) builder.append(v as never);
  return builder.toVector() as Vector;
}

function json(table: Table): string {
  return JSON.stringify(table.toArray().map((r) => r.toJSON()), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

function roundTrip(table: Table): Table {
  return decodeValue(encodeValue(table), 'table') as Table;
}

describe('Arrow validation accepts what apache-arrow writes', () => {
  it.each(COLUMNS)('a %s column with nulls', (_name, type, values) => {
    const vector = vectorOf(type, values);
    const table = new Table({ c: vector });
    const out = roundTrip(table);
    expect(out.numRows).toBe(3);
    expect(String(out.schema.fields[0].type)).toBe(String(table.schema.fields[0].type));
    expect(json(out)).toBe(json(table));
  });

  it('all columns at once, in several batches', () => {
    const columns = Object.fromEntries(COLUMNS.map(([name, type, values]) => [name, vectorOf(type, values)]));
    const one = new Table(columns);
    const table = one.concat(one, one);
    expect(table.batches.length).toBe(3);
    const out = roundTrip(table);
    expect(out.numRows).toBe(9);
    expect(json(out)).toBe(json(table));
  });

  it('empty tables: no rows, and no columns', () => {
    const noRows = makeTable({ x: new Int32Array(0) });
    expect(roundTrip(noRows).numRows).toBe(0);
    const noColumns = new Table();
    expect(roundTrip(noColumns).numCols).toBe(0);
  });

  it('larger tables with many rows and a dictionary of strings', () => {
    const n = 50_000;
    const table = tableFromArrays({
      id: Int32Array.from({ length: n }, (_, i) => i),
      label: Array.from({ length: n }, (_, i) => `class-${i % 7}`),
      score: Float64Array.from({ length: n }, (_, i) => i / 3),
    });
    const out = roundTrip(table);
    expect(out.numRows).toBe(n);
    expect(out.get(n - 1)?.toJSON()).toEqual({ id: n - 1, label: `class-${(n - 1) % 7}`, score: (n - 1) / 3 });
  });
});

describe('Arrow validation refuses values apache-arrow cannot read back', () => {
  it('a millisecond timestamp past 2^53 (reading it would throw a TypeError in the receiving analysis)', () => {
    const type = new TimestampMillisecond();
    const data = makeData({ type, length: 2, nullCount: 0, data: BigInt64Array.of(5n, 2n ** 60n) });
    const table = new Table({ when: makeVector(data) });
    expect(() => decodeValue(encodeValue(table), 'result "t"')).toThrow(BadRequestError);
    expect(() => decodeValue(encodeValue(table), 'result "t"')).toThrow(/result "t".*field 0 "when": value 1152921504606846976 at row 1 is out of the range/);
  });

  it('but keeps one at a null slot, which is never read', () => {
    const type = new TimestampMillisecond();
    const nullBitmap = Uint8Array.of(0b01);
    const data = makeData({ type, length: 2, nullCount: 1, nullBitmap, data: BigInt64Array.of(5n, 2n ** 60n) });
    const out = decodeValue(encodeValue(new Table({ when: makeVector(data) })), 't') as Table;
    expect([...out.getChild('when')!]).toEqual([5, null]);
  });

  it('a stream of more arrays or record batches than a frame may make apache-arrow build', () => {
    const columns = (n: number): Table => tableFromArrays(Object.fromEntries(Array.from({ length: n }, (_, c) => [`c${c}`, Int32Array.of(c)])));
    const wide = columns(20).batches[0];
    const manyArrays = new Table(Array.from({ length: 5001 }, () => wide));
    expect(() => decodeValue(encodeValue(manyArrays), 'table "a"')).toThrow(/table "a".*more than 100000 arrays/);
    const narrow = columns(1).batches[0];
    const manyBatches = new Table(Array.from({ length: 10_001 }, () => narrow));
    expect(() => decodeValue(encodeValue(manyBatches), 'table "b"')).toThrow(/table "b".*more than 10000 record batches/);
  });
});
