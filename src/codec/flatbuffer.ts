/**
 * A minimal, bounds-checked reader of flatbuffers, for validating Arrow IPC metadata before
 * apache-arrow reads it. apache-arrow's generated flatbuffer code trusts every offset and length
 * (reading past the end yields zeros, a length of 2^31 loops 2^31 times); this reader checks each
 * one against the buffer and throws {@link FlatbufferError} instead.
 *
 * It reads offsets the way the JavaScript flatbuffers runtime does (vtable entries as signed 16-bit,
 * offsets and lengths as signed 32-bit) and refuses every value where the two readings could
 * differ, so what passes here reads identically in apache-arrow.
 *
 * Shared references (several offsets pointing at one string, vector or table) would let a small
 * buffer make a reader visit the same bytes many times over; every string, vector and table read
 * is charged against a budget of the buffer's own size, which a buffer without sharing never exceeds.
 */

const textDecoder = new TextDecoder('utf-8');

/** A flatbuffer that breaks the format or points outside itself; the message says where. */
export class FlatbufferError extends Error {}

/** The bytes of one flatbuffer and what reading them has cost so far. */
export class FlatbufferBytes {
  private readonly view: DataView;
  /** Bytes still allowed to be read through strings, vectors and tables. */
  private budget: number;

  /** `bytes` holds exactly one flatbuffer (its root offset at 0). */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.budget = bytes.byteLength;
  }

  /** Byte length of the buffer. */
  get length(): number {
    return this.bytes.byteLength;
  }

  /** Throws unless `[at, at + size)` lies inside the buffer. */
  check(at: number, size: number, what: string): void {
    if (!Number.isSafeInteger(at) || at < 0 || size < 0 || at + size > this.bytes.byteLength) {
      throw new FlatbufferError(`${what} at byte ${at} (${size} bytes) lies outside the ${this.bytes.byteLength}-byte flatbuffer`);
    }
  }

  /** Charges `size` bytes of reading against the budget. */
  charge(size: number, what: string): void {
    this.budget -= size;
    if (this.budget < 0) throw new FlatbufferError(`${what}: the flatbuffer refers to the same bytes repeatedly (more is read than it holds)`);
  }

  /** Unsigned byte. */
  u8(at: number, what: string): number {
    this.check(at, 1, what);
    return this.view.getUint8(at);
  }

  /** Signed 16-bit. */
  i16(at: number, what: string): number {
    this.check(at, 2, what);
    return this.view.getInt16(at, true);
  }

  /** Signed 32-bit. */
  i32(at: number, what: string): number {
    this.check(at, 4, what);
    return this.view.getInt32(at, true);
  }

  /** Signed 64-bit as a bigint. */
  i64(at: number, what: string): bigint {
    this.check(at, 8, what);
    return this.view.getBigInt64(at, true);
  }

  /** Follows the offset stored at `at` (forward, as flatbuffers offsets always are). */
  indirect(at: number, what: string): number {
    const off = this.i32(at, what);
    if (off <= 0) throw new FlatbufferError(`${what}: offset ${off} at byte ${at} does not point forward`);
    const target = at + off;
    this.check(target, 4, what);
    return target;
  }

  /** The root table. */
  root(what: string): FlatTable {
    return this.table(this.indirect(0, `${what} root`), what);
  }

  /** The table starting at `at`. */
  table(at: number, what: string): FlatTable {
    const soffset = this.i32(at, `${what} vtable offset`);
    const vtable = at - soffset;
    this.check(vtable, 4, `${what} vtable`);
    const vtableSize = this.view.getInt16(vtable, true);
    const tableSize = this.view.getInt16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) throw new FlatbufferError(`${what}: bad vtable size ${vtableSize}`);
    if (tableSize < 4) throw new FlatbufferError(`${what}: bad table size ${tableSize}`);
    this.check(vtable, vtableSize, `${what} vtable`);
    this.check(at, tableSize, what);
    this.charge(tableSize, what);
    return new FlatTable(this, at, vtable, vtableSize, tableSize, what);
  }
}

/** Where a vector's elements are: `count` elements of `size` bytes from byte `start`. */
export interface FlatVector {
  /** Offset of the first element. */
  start: number;
  /** Number of elements. */
  count: number;
}

/** One table: typed, bounds-checked access to its fields by slot number (0 = the first field). */
export class FlatTable {
  /** @internal */
  constructor(
    readonly fb: FlatbufferBytes,
    readonly at: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    private readonly tableSize: number,
    readonly what: string,
  ) {}

  /** Absolute position of a field, or undefined when absent; checks it fits the table. */
  private field(slot: number, width: number, name: string): number | undefined {
    const entry = 4 + 2 * slot;
    if (entry + 2 > this.vtableSize) return undefined;
    const off = this.fb.i16(this.vtable + entry, `${this.what}.${name} vtable entry`);
    if (off === 0) return undefined;
    if (off < 4 || off + width > this.tableSize) throw new FlatbufferError(`${this.what}.${name}: field offset ${off} lies outside the ${this.tableSize}-byte table`);
    return this.at + off;
  }

  /** Whether the field is present. */
  has(slot: number): boolean {
    return this.field(slot, 1, `field ${slot}`) !== undefined;
  }

  /** A uint8 / bool / enum-byte field. */
  u8(slot: number, name: string, fallback = 0): number {
    const at = this.field(slot, 1, name);
    return at === undefined ? fallback : this.fb.u8(at, `${this.what}.${name}`);
  }

  /** A bool field. */
  bool(slot: number, name: string, fallback = false): boolean {
    return this.u8(slot, name, fallback ? 1 : 0) !== 0;
  }

  /** An int16 / enum-short field. */
  i16(slot: number, name: string, fallback = 0): number {
    const at = this.field(slot, 2, name);
    return at === undefined ? fallback : this.fb.i16(at, `${this.what}.${name}`);
  }

  /** An int32 field. */
  i32(slot: number, name: string, fallback = 0): number {
    const at = this.field(slot, 4, name);
    return at === undefined ? fallback : this.fb.i32(at, `${this.what}.${name}`);
  }

  /** An int64 field as a bigint. */
  i64(slot: number, name: string, fallback = 0n): bigint {
    const at = this.field(slot, 8, name);
    return at === undefined ? fallback : this.fb.i64(at, `${this.what}.${name}`);
  }

  /** A sub-table, or undefined when absent. */
  table(slot: number, name: string): FlatTable | undefined {
    const at = this.field(slot, 4, name);
    return at === undefined ? undefined : this.fb.table(this.fb.indirect(at, `${this.what}.${name}`), `${this.what}.${name}`);
  }

  /** A string's byte length and position, or undefined when absent. */
  string(slot: number, name: string): FlatVector | undefined {
    return this.vector(slot, 1, name, Number.MAX_SAFE_INTEGER);
  }

  /** A string field decoded (invalid UTF-8 replaced), or undefined when absent. */
  text(slot: number, name: string): string | undefined {
    const v = this.string(slot, name);
    return v === undefined ? undefined : textDecoder.decode(this.fb.bytes.subarray(v.start, v.start + v.count));
  }

  /** A vector of `size`-byte elements (scalars, structs or table offsets), at most `max` of them. */
  vector(slot: number, size: number, name: string, max: number): FlatVector | undefined {
    const at = this.field(slot, 4, name);
    if (at === undefined) return undefined;
    const what = `${this.what}.${name}`;
    const lengthAt = this.fb.indirect(at, what);
    const count = this.fb.i32(lengthAt, `${what} length`);
    if (count < 0) throw new FlatbufferError(`${what}: negative length ${count}`);
    if (count > max) throw new FlatbufferError(`${what}: ${count} entries, at most ${max}`);
    this.fb.check(lengthAt + 4, count * size, `${what} (${count} entries)`);
    this.fb.charge(count * size, what);
    return { start: lengthAt + 4, count };
  }

  /** The tables of a vector of tables, at most `max` of them. */
  tables(slot: number, name: string, max: number): FlatTable[] {
    const v = this.vector(slot, 4, name, max);
    if (v === undefined) return [];
    const out: FlatTable[] = [];
    for (let i = 0; i < v.count; i++) {
      const what = `${this.what}.${name}[${i}]`;
      out.push(this.fb.table(this.fb.indirect(v.start + 4 * i, what), what));
    }
    return out;
  }
}
