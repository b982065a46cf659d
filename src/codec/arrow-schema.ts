/**
 * Reads an Arrow Schema flatbuffer (Schema.fbs) into a small description of each column's physical
 * layout, refusing anything apache-arrow could misread: unsupported types, type parameters out of
 * range, too many fields, nesting too deep. Checked with {@link FlatTable}, so every vector and
 * string lies within the flatbuffer.
 */
import { FlatbufferError, type FlatTable } from './flatbuffer.js';

/** Fields a schema may declare, counting nested children. */
export const MAX_ARROW_FIELDS = 10_000;
/** Deepest nesting of child fields. */
export const MAX_ARROW_DEPTH = 64;
/** Entries of one custom_metadata vector. */
export const MAX_METADATA_ENTRIES = 10_000;

/** Arrow's Type union tags (Schema.fbs), for the types this reader accepts. */
export const ArrowType = {
  Null: 1,
  Int: 2,
  FloatingPoint: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Date: 8,
  Time: 9,
  Timestamp: 10,
  Interval: 11,
  List: 12,
  Struct: 13,
  Union: 14,
  FixedSizeBinary: 15,
  FixedSizeList: 16,
  Map: 17,
  Duration: 18,
  LargeBinary: 19,
  LargeUtf8: 20,
  LargeList: 21,
} as const;

const TYPE_NAMES: Record<number, string> = {
  0: 'NONE',
  ...Object.fromEntries(Object.entries(ArrowType).map(([name, tag]) => [tag, name])),
  22: 'RunEndEncoded',
  23: 'BinaryView',
  24: 'Utf8View',
  25: 'ListView',
  26: 'LargeListView',
};

/** The physical layout of one column (or nested child) as the IPC body must carry it. */
export interface ArrowField {
  /** Path for messages, e.g. `field "scores".children[0]`. */
  path: string;
  /** Arrow type tag (see {@link ArrowType}). */
  typeId: number;
  /** Bytes per value of a fixed-width type; 0 otherwise (Bool counts bits). */
  width: number;
  /** Bytes per offset of a variable-length type (Binary/Utf8/List/Map: 4, Large*: 8); 0 otherwise. */
  offsetWidth: number;
  /** Values per list of a FixedSizeList. */
  listSize: number;
  /**
   * Largest magnitude of an int64 value apache-arrow can read back (it converts dates and
   * timestamps to numbers and throws past 2^53); undefined when any value reads.
   */
  maxInt64?: bigint;
  /** Union mode (0 sparse, 1 dense) and its type ids, for unions. */
  union?: { dense: boolean; typeIds: number[] };
  /** Child fields (list item, struct members, union members, map entries). */
  children: ArrowField[];
  /** Set when the column is dictionary-encoded: its dictionary id and index type. */
  dictionary?: { id: number; indexWidth: number; indexSigned: boolean };
}

/** What a schema declares: top-level fields and the value type of each dictionary id. */
export interface ArrowSchema {
  /** Top-level columns. */
  fields: ArrowField[];
  /** Dictionary id → the value type its dictionary batches carry (the first field that names it). */
  dictionaries: Map<number, ArrowField>;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const fail = (what: string, why: string): never => {
  throw new FlatbufferError(`${what}: ${why}`);
};

/** Checks the bounds of a custom_metadata vector (KeyValue tables with two strings) at `slot`. */
export function checkMetadata(t: FlatTable, slot: number): void {
  for (const kv of t.tables(slot, 'custom_metadata', MAX_METADATA_ENTRIES)) {
    kv.string(0, 'key');
    kv.string(1, 'value');
  }
}

/** Reads and checks a Schema table. */
export function readSchema(schema: FlatTable): ArrowSchema {
  const endianness = schema.i16(0, 'endianness');
  if (endianness !== 0) fail('Schema', 'big-endian data is not supported');
  checkMetadata(schema, 2);
  schema.vector(3, 8, 'features', MAX_METADATA_ENTRIES);
  const state = { count: 0, dictionaries: new Map<number, ArrowField>() };
  const fields = schema.tables(1, 'fields', MAX_ARROW_FIELDS).map((f, i) => readField(f, `field ${i}`, 0, state, false));
  return { fields, dictionaries: state.dictionaries };
}

type SchemaState = { count: number; dictionaries: Map<number, ArrowField> };

function readField(f: FlatTable, path: string, depth: number, state: SchemaState, inDictionary: boolean): ArrowField {
  if (depth > MAX_ARROW_DEPTH) fail(path, `nested deeper than ${MAX_ARROW_DEPTH} levels`);
  if (++state.count > MAX_ARROW_FIELDS) fail(path, `the schema declares more than ${MAX_ARROW_FIELDS} fields`);
  const name = f.text(0, 'name');
  if (name !== undefined) path = `${path} ${JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)}`;
  f.bool(1, 'nullable');
  checkMetadata(f, 6);
  const typeId = f.u8(2, 'type_type');
  const type = f.table(3, 'type');
  const encoding = f.table(4, 'dictionary');
  const isDictionary = encoding !== undefined;
  if (isDictionary && inDictionary) fail(path, 'a dictionary inside a dictionary-encoded type is not supported');
  const children = f
    .tables(5, 'children', MAX_ARROW_FIELDS)
    .map((c, i) => readField(c, `${path}.children[${i}]`, depth + 1, state, inDictionary || isDictionary));
  const field: ArrowField = { path, typeId, width: 0, offsetWidth: 0, listSize: 0, children };
  describeType(field, type);
  if (encoding !== undefined) {
    const id = encoding.i64(0, 'id');
    if (id < 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) fail(path, `dictionary id ${id} out of range`);
    const index = encoding.table(1, 'indexType');
    const indexWidth = index === undefined ? 4 : intWidth(index, `${path} dictionary index`);
    const indexSigned = index === undefined ? true : index.bool(1, 'is_signed');
    encoding.bool(2, 'isOrdered');
    encoding.i16(3, 'dictionaryKind');
    // the record batch carries the indices; the dictionary batches carry `field` itself
    const valueType = { ...field, path: `${path} (dictionary values)` };
    if (!state.dictionaries.has(Number(id))) state.dictionaries.set(Number(id), valueType);
    return { ...field, dictionary: { id: Number(id), indexWidth, indexSigned } };
  }
  return field;
}

function intWidth(t: FlatTable, what: string): number {
  const bits = t.i32(0, 'bitWidth');
  if (![8, 16, 32, 64].includes(bits)) fail(what, `integer bit width ${bits} (expected 8, 16, 32 or 64)`);
  return bits / 8;
}

function needType(type: FlatTable | undefined, field: ArrowField, name: string): FlatTable {
  return type ?? fail(field.path, `type ${name} without its parameters`);
}

function childCount(field: ArrowField, name: string, expected: number): void {
  if (field.children.length !== expected) fail(field.path, `${name} needs ${expected} child fields, has ${field.children.length}`);
}

/** Fills in the layout of `field` from its type table; refuses types and parameters apache-arrow cannot read. */
function describeType(field: ArrowField, type: FlatTable | undefined): void {
  const name = TYPE_NAMES[field.typeId] ?? `type ${field.typeId}`;
  const leaf = (): void => childCount(field, name, 0);
  switch (field.typeId) {
    case ArrowType.Null:
    case ArrowType.Bool:
      return leaf();
    case ArrowType.Binary:
    case ArrowType.Utf8:
      field.offsetWidth = 4;
      return leaf();
    case ArrowType.LargeBinary:
    case ArrowType.LargeUtf8:
      field.offsetWidth = 8;
      return leaf();
    case ArrowType.Int:
      field.width = intWidth(needType(type, field, name), field.path);
      needType(type, field, name).bool(1, 'is_signed');
      return leaf();
    case ArrowType.FloatingPoint: {
      const precision = needType(type, field, name).i16(0, 'precision');
      if (precision < 0 || precision > 2) fail(field.path, `floating point precision ${precision}`);
      field.width = [2, 4, 8][precision];
      return leaf();
    }
    case ArrowType.Decimal: {
      const t = needType(type, field, name);
      t.i32(0, 'precision');
      t.i32(1, 'scale');
      const bits = t.i32(2, 'bitWidth', 128);
      if (![32, 64, 128, 256].includes(bits)) fail(field.path, `decimal bit width ${bits}`);
      field.width = bits / 8;
      return leaf();
    }
    case ArrowType.Date: {
      const unit = needType(type, field, name).i16(0, 'unit', 1);
      if (unit !== 0 && unit !== 1) fail(field.path, `date unit ${unit}`);
      field.width = unit === 0 ? 4 : 8;
      if (unit === 1) field.maxInt64 = MAX_SAFE;
      return leaf();
    }
    case ArrowType.Time: {
      const t = needType(type, field, name);
      const unit = t.i16(0, 'unit', 1);
      const bits = t.i32(1, 'bitWidth', 32);
      if (unit < 0 || unit > 3) fail(field.path, `time unit ${unit}`);
      if (bits !== (unit <= 1 ? 32 : 64)) fail(field.path, `time bit width ${bits} does not fit unit ${unit}`);
      field.width = bits / 8;
      return leaf();
    }
    case ArrowType.Timestamp:
    case ArrowType.Duration: {
      const t = needType(type, field, name);
      const unit = t.i16(0, 'unit', field.typeId === ArrowType.Duration ? 1 : 0);
      if (unit < 0 || unit > 3) fail(field.path, `time unit ${unit}`);
      if (field.typeId === ArrowType.Timestamp) {
        t.string(1, 'timezone');
        // read as milliseconds: seconds and milliseconds must fit a number, microseconds after / 1000
        if (unit <= 1) field.maxInt64 = MAX_SAFE;
        else if (unit === 2) field.maxInt64 = (MAX_SAFE + 1n) * 1000n - 1n;
      }
      field.width = 8;
      return leaf();
    }
    case ArrowType.Interval: {
      const unit = needType(type, field, name).i16(0, 'unit');
      if (unit < 0 || unit > 2) fail(field.path, `interval unit ${unit}`);
      field.width = [4, 8, 16][unit];
      return leaf();
    }
    case ArrowType.FixedSizeBinary: {
      const width = needType(type, field, name).i32(0, 'byteWidth');
      if (width < 1) fail(field.path, `fixed-size binary width ${width}`);
      field.width = width;
      return leaf();
    }
    case ArrowType.List:
    case ArrowType.LargeList:
      field.offsetWidth = field.typeId === ArrowType.List ? 4 : 8;
      return childCount(field, name, 1);
    case ArrowType.FixedSizeList: {
      const size = needType(type, field, name).i32(0, 'listSize');
      if (size < 0) fail(field.path, `fixed-size list size ${size}`);
      field.listSize = size;
      return childCount(field, name, 1);
    }
    case ArrowType.Map: {
      needType(type, field, name).bool(0, 'keysSorted');
      field.offsetWidth = 4;
      childCount(field, name, 1);
      const entries = field.children[0];
      if (entries.typeId !== ArrowType.Struct || entries.children.length !== 2 || entries.dictionary !== undefined) {
        fail(field.path, 'a map needs one struct child of key and value');
      }
      return;
    }
    case ArrowType.Struct:
      return;
    case ArrowType.Union: {
      const t = needType(type, field, name);
      const mode = t.i16(0, 'mode');
      if (mode !== 0 && mode !== 1) fail(field.path, `union mode ${mode}`);
      const ids = t.vector(1, 4, 'typeIds', 128);
      if (ids === undefined || ids.count !== field.children.length || ids.count === 0) {
        fail(field.path, 'a union needs one type id per child field');
      }
      const typeIds = Array.from({ length: ids!.count }, (_, i) => t.fb.i32(ids!.start + 4 * i, `${field.path} typeIds[${i}]`));
      if (typeIds.some((id) => id < 0 || id > 127) || new Set(typeIds).size !== typeIds.length) {
        fail(field.path, `union type ids ${JSON.stringify(typeIds)} must be distinct and within 0..127`);
      }
      field.union = { dense: mode === 1, typeIds };
      return;
    }
    default:
      fail(field.path, `Arrow type ${name} is not supported`);
  }
}
