/**
 * Test helper: finds the length fields of an Arrow IPC stream (with apache-arrow's own generated
 * flatbuffer classes, independent of the codec's validator) so attack tests can rewrite them, and
 * re-frames a mutated payload with a fresh envelope checksum.
 */
import { Builder, ByteBuffer } from 'flatbuffers';
import { KeyValue } from 'apache-arrow/fb/key-value';
import { MetadataVersion } from 'apache-arrow/fb/metadata-version';
import { Message } from 'apache-arrow/fb/message';
import { Schema } from 'apache-arrow/fb/schema';
import { Field } from 'apache-arrow/fb/field';
import { RecordBatch } from 'apache-arrow/fb/record-batch';
import { DictionaryBatch } from 'apache-arrow/fb/dictionary-batch';
import { MessageHeader } from 'apache-arrow/fb/message-header';
import { crc32 } from 'node:zlib';
import { HEADER_BYTES } from '../../src/codec/envelope.js';

/** One integer field of the stream that says how long or how many something is. */
export interface LengthField {
  /** What it is, e.g. `message 1 RecordBatch.nodes[0].length`. */
  name: string;
  /** Absolute byte offset in the IPC stream. */
  at: number;
  /** 4 (uint32 / int32) or 8 (int64). */
  width: 4 | 8;
}

/** Where every message of a stream sits. */
export interface MessageSpan {
  /** Offset of the metadata length (after the continuation marker). */
  lengthAt: number;
  /** Offset of the flatbuffer. */
  metaStart: number;
  /** Bytes of flatbuffer (with padding). */
  metaLength: number;
  /** Message header type (1 schema, 2 dictionary batch, 3 record batch). */
  headerType: number;
}

/** The messages of a stream, stopping at the end-of-stream marker. */
export function messageSpans(ipc: Uint8Array): MessageSpan[] {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  const out: MessageSpan[] = [];
  let at = 0;
  while (at + 8 <= ipc.length) {
    const metaLength = view.getInt32(at + 4, true);
    if (metaLength === 0) break;
    const metaStart = at + 8;
    const msg = Message.getRootAsMessage(new ByteBuffer(ipc.subarray(metaStart, metaStart + metaLength)));
    out.push({ lengthAt: at + 4, metaStart, metaLength, headerType: msg.headerType() });
    at = metaStart + metaLength + Number(msg.bodyLength());
  }
  return out;
}

type Table = { bb: ByteBuffer | null; bb_pos: number };

/** Absolute position of a table's field (vtable slot `slot`), or undefined when absent. */
function fieldAt(t: Table, slot: number): number | undefined {
  const off = t.bb!.__offset(t.bb_pos, 4 + 2 * slot);
  return off === 0 ? undefined : t.bb_pos + off;
}

/** Position of a vector's uint32 length, given the position of the field that points to it. */
function vectorLengthAt(bb: ByteBuffer, fieldPos: number): number {
  return bb.__vector(fieldPos) - 4;
}

function fieldLengths(f: Field, bb: ByteBuffer, base: number, name: string, out: LengthField[]): void {
  const namePos = fieldAt(f as unknown as Table, 0);
  if (namePos !== undefined) out.push({ name: `${name}.name`, at: base + bb.__indirect(namePos), width: 4 });
  const children = fieldAt(f as unknown as Table, 5);
  if (children !== undefined) out.push({ name: `${name}.children`, at: base + vectorLengthAt(bb, children), width: 4 });
  for (let i = 0; i < f.childrenLength(); i++) fieldLengths(f.children(i)!, bb, base, `${name}.children[${i}]`, out);
}

function batchLengths(b: RecordBatch, bb: ByteBuffer, base: number, name: string, out: LengthField[]): void {
  const t = b as unknown as Table;
  const length = fieldAt(t, 0);
  if (length !== undefined) out.push({ name: `${name}.length`, at: base + length, width: 8 });
  const nodes = fieldAt(t, 1);
  if (nodes !== undefined) {
    out.push({ name: `${name}.nodes`, at: base + vectorLengthAt(bb, nodes), width: 4 });
    for (let i = 0; i < b.nodesLength(); i++) {
      const at = base + bb.__vector(nodes) + 16 * i;
      out.push({ name: `${name}.nodes[${i}].length`, at, width: 8 }, { name: `${name}.nodes[${i}].nullCount`, at: at + 8, width: 8 });
    }
  }
  const buffers = fieldAt(t, 2);
  if (buffers !== undefined) {
    out.push({ name: `${name}.buffers`, at: base + vectorLengthAt(bb, buffers), width: 4 });
    for (let i = 0; i < b.buffersLength(); i++) {
      const at = base + bb.__vector(buffers) + 16 * i;
      out.push({ name: `${name}.buffers[${i}].offset`, at, width: 8 }, { name: `${name}.buffers[${i}].length`, at: at + 8, width: 8 });
    }
  }
}

/** Every length field of every message in `ipc`: framing, flatbuffer vectors, bodyLength, nodes and buffers. */
export function lengthFields(ipc: Uint8Array): LengthField[] {
  const out: LengthField[] = [];
  messageSpans(ipc).forEach((span, m) => {
    const base = span.metaStart;
    const bb = new ByteBuffer(ipc.slice(base, base + span.metaLength));
    const msg = Message.getRootAsMessage(bb);
    const name = `message ${m}`;
    out.push({ name: `${name} metadata length`, at: span.lengthAt, width: 4 });
    const body = fieldAt(msg as unknown as Table, 3);
    if (body !== undefined) out.push({ name: `${name} bodyLength`, at: base + body, width: 8 });
    if (msg.headerType() === MessageHeader.Schema) {
      const schema = msg.header(new Schema()) as Schema;
      const fields = fieldAt(schema as unknown as Table, 1);
      if (fields !== undefined) out.push({ name: `${name} Schema.fields`, at: base + vectorLengthAt(bb, fields), width: 4 });
      for (let i = 0; i < schema.fieldsLength(); i++) fieldLengths(schema.fields(i)!, bb, base, `${name} Schema.fields[${i}]`, out);
    } else if (msg.headerType() === MessageHeader.RecordBatch) {
      batchLengths(msg.header(new RecordBatch()) as RecordBatch, bb, base, `${name} RecordBatch`, out);
    } else if (msg.headerType() === MessageHeader.DictionaryBatch) {
      const dict = msg.header(new DictionaryBatch()) as DictionaryBatch;
      batchLengths(dict.data()!, bb, base, `${name} DictionaryBatch.data`, out);
    }
  });
  return out;
}

/** A copy of `ipc` with the field at `f` set to `value` (two's complement for negative values). */
export function withLength(ipc: Uint8Array, f: LengthField, value: bigint): Buffer {
  const out = Buffer.from(ipc);
  if (f.width === 4) out.writeUInt32LE(Number(BigInt.asUintN(32, value)), f.at);
  else out.writeBigUInt64LE(BigInt.asUintN(64, value), f.at);
  return out;
}

/** The current value of a length field. */
export function readLength(ipc: Uint8Array, f: LengthField): bigint {
  const b = Buffer.from(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  return f.width === 4 ? BigInt(b.readUInt32LE(f.at)) : b.readBigInt64LE(f.at);
}

/** Hostile values for a length field: huge, negative, just too big, off by one. */
export function hostileValues(current: bigint, width: 4 | 8): bigint[] {
  const values = [current + 1n, current + 8n, current * 2n + 16n, 0x7fffffffn, 0xffffffffn, 0x10000000n, -1n, -8n];
  if (width === 8) values.push(1n << 40n, (1n << 53n) + 1n, (1n << 62n), -(1n << 62n));
  if (current > 0n) values.push(current - 1n, 0n);
  return [...new Set(values)].filter((v) => v !== current);
}

/** Re-frames the payload of an encoded frame after a mutation, with the envelope checksum recomputed. */
export function reseal(frame: Uint8Array): Buffer {
  const out = Buffer.from(frame);
  out.writeBigUInt64LE(BigInt(out.length - HEADER_BYTES), 8);
  out.writeUInt32LE(crc32(out.subarray(HEADER_BYTES)) >>> 0, 16);
  return out;
}

/** The frame of an arrow value with `ipc` as its payload. */
export function arrowFrame(header: Uint8Array, ipc: Uint8Array): Buffer {
  return reseal(Buffer.concat([header.subarray(0, HEADER_BYTES), ipc]));
}

/** A schema-only IPC stream whose metadata vector repeats one entry `references` times. */
export function sharedMetadataStream(references: number, valueBytes: number): Buffer {
  const b = new Builder(1024);
  const key = b.createString('k');
  const value = b.createString('v'.repeat(valueBytes));
  KeyValue.startKeyValue(b);
  KeyValue.addKey(b, key);
  KeyValue.addValue(b, value);
  const kv = KeyValue.endKeyValue(b);
  const metadata = Schema.createCustomMetadataVector(b, new Array<number>(references).fill(kv));
  const fields = Schema.createFieldsVector(b, []);
  Schema.startSchema(b);
  Schema.addFields(b, fields);
  Schema.addCustomMetadata(b, metadata);
  const schema = Schema.endSchema(b);
  Message.startMessage(b);
  Message.addVersion(b, MetadataVersion.V5);
  Message.addHeaderType(b, MessageHeader.Schema);
  Message.addHeader(b, schema);
  Message.addBodyLength(b, 0n);
  b.finish(Message.endMessage(b));
  const fb = b.asUint8Array();
  const padded = Buffer.alloc(Math.ceil(fb.length / 8) * 8);
  padded.set(fb);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0xffffffff, 0);
  head.writeInt32LE(padded.length, 4);
  const eos = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  return Buffer.concat([head, padded, eos]);
}
