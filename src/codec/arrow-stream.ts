/**
 * Structural validation of an Arrow IPC stream before apache-arrow reads it, and the decoder that
 * uses it. apache-arrow trusts every length in the stream: a vector length of 2^31 in a 700-byte
 * frame makes it loop and allocate until the process dies. Here each message's framing
 * (continuation marker, metadata length, 8-byte padding), its flatbuffer (version, header type,
 * bodyLength within the frame), the schema and every record and dictionary batch are checked
 * against the bytes actually present, in time linear in the frame size.
 *
 * Stream layout: messages of `0xFFFFFFFF, int32 metadata length, flatbuffer Message, body`,
 * ended by `0xFFFFFFFF 0x00000000` (or the end of the bytes).
 */
import { Table, tableFromIPC } from 'apache-arrow';
import { BadRequestError } from '../errors.js';
import { FlatbufferBytes, FlatbufferError } from './flatbuffer.js';
import { checkMetadata, readSchema, type ArrowSchema } from './arrow-schema.js';
import { checkDictionaryBatch, checkRecordBatch, type StreamState } from './arrow-batch.js';

/** Record batches one stream may hold (each costs apache-arrow tens of µs, even without columns). */
export const MAX_RECORD_BATCHES = 10_000;
/** Dictionary batches one stream may hold (apache-arrow concatenates deltas, quadratic in their number). */
export const MAX_DICTIONARY_BATCHES = 1_000;
/** Arrays may claim up to 8 values per frame byte (bit-packed booleans), and at least this many. */
const MIN_MAX_LENGTH = 65_536;

const CONTINUATION = 0xffffffff;
const MESSAGE_HEADER = { Schema: 1, DictionaryBatch: 2, RecordBatch: 3 } as const;
const HEADER_NAMES: Record<number, string> = { 0: 'NONE', 1: 'Schema', 2: 'DictionaryBatch', 3: 'RecordBatch', 4: 'Tensor', 5: 'SparseTensor' };
/** MetadataVersion V4 and V5 (apache-arrow writes V5). */
const SUPPORTED_VERSIONS = new Set([3, 4]);

const fail = (why: string): never => {
  throw new FlatbufferError(why);
};

/** Throws FlatbufferError (with a message saying what and where) unless `ipc` is a well-formed stream. */
export function checkArrowStream(ipc: Uint8Array): void {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  let schema: ArrowSchema | undefined;
  let state: StreamState | undefined;
  let batches = 0;
  let dictionaries = 0;
  let at = 0;
  for (let index = 0; at < ipc.length; index++) {
    const what = `message ${index} (at byte ${at})`;
    if (ipc.length - at < 8) fail(`${what}: ${ipc.length - at} stray bytes where a message header should be`);
    if (view.getUint32(at, true) !== CONTINUATION) fail(`${what}: no continuation marker (not an Arrow IPC stream, or a pre-0.15 one)`);
    const metaLength = view.getInt32(at + 4, true);
    if (metaLength === 0) {
      if (at + 8 !== ipc.length) fail(`${what}: ${ipc.length - at - 8} bytes after the end-of-stream marker`);
      break;
    }
    const metaStart = at + 8;
    if (metaLength < 0 || metaLength > ipc.length - metaStart) fail(`${what}: metadata length ${metaLength}, only ${ipc.length - metaStart} bytes left`);
    if (metaLength % 8 !== 0) fail(`${what}: metadata length ${metaLength} is not padded to 8 bytes`);
    const fb = new FlatbufferBytes(ipc.subarray(metaStart, metaStart + metaLength));
    const message = fb.root('Message');
    const version = message.i16(0, 'version');
    if (!SUPPORTED_VERSIONS.has(version)) fail(`${what}: metadata version ${version + 1} is not supported (V4 or V5)`);
    const headerType = message.u8(1, 'header_type');
    const header = message.table(2, 'header') ?? fail(`${what}: no header`);
    checkMetadata(message, 4);
    const bodyStart = metaStart + metaLength;
    const bodyLength = message.i64(3, 'bodyLength');
    if (bodyLength < 0n || bodyLength > BigInt(ipc.length - bodyStart)) {
      fail(`${what}: bodyLength ${bodyLength}, only ${ipc.length - bodyStart} bytes left in the frame`);
    }
    const body = new DataView(ipc.buffer, ipc.byteOffset + bodyStart, Number(bodyLength));
    const name = `${what} ${HEADER_NAMES[headerType] ?? `header type ${headerType}`}`;
    if (schema === undefined || state === undefined) {
      if (headerType !== MESSAGE_HEADER.Schema) fail(`${name}: the stream must start with a Schema`);
      if (bodyLength !== 0n) fail(`${name}: a schema has no body, bodyLength is ${bodyLength}`);
      schema = readSchema(header);
      state = { maxLength: Math.max(MIN_MAX_LENGTH, 8 * ipc.length), dictionaryLengths: new Map(), arrays: 0, version };
    } else if (headerType === MESSAGE_HEADER.RecordBatch) {
      if (++batches > MAX_RECORD_BATCHES) fail(`${name}: more than ${MAX_RECORD_BATCHES} record batches`);
      checkRecordBatch(header, schema.fields, body, state, name);
    } else if (headerType === MESSAGE_HEADER.DictionaryBatch) {
      if (++dictionaries > MAX_DICTIONARY_BATCHES) fail(`${name}: more than ${MAX_DICTIONARY_BATCHES} dictionary batches`);
      const { id, length } = checkDictionaryBatch(header, schema.dictionaries, body, state, name);
      state.dictionaryLengths.set(id, length);
    } else {
      fail(`${name}: ${headerType === MESSAGE_HEADER.Schema ? 'a second Schema' : 'this message type'} is not supported in a table stream`);
    }
    if (version !== state.version) fail(`${name}: metadata version changes mid-stream`);
    at = bodyStart + Number(bodyLength);
  }
  if (schema === undefined) fail('empty stream (no Schema)');
}

/**
 * Validates `payload` as an Arrow IPC stream, then reads it with apache-arrow; BadRequestError names
 * `what`. The table views a copy of the payload, unless `owned` says the caller hands it over.
 */
export function decodeArrow(payload: Uint8Array, what: string, owned = false): Table {
  // 8-aligned (apache-arrow views buffers in place and needs them aligned; the checks read aligned
  // buffers faster), and not the caller's
  const aligned = owned && payload.byteOffset % 8 === 0 ? payload : new Uint8Array(payload);
  try {
    checkArrowStream(aligned);
  } catch (err) {
    // anything else is a bug in the validator, but still a frame this node cannot take
    const why = err instanceof FlatbufferError ? err.message : `validator fault: ${String(err)}`;
    throw new BadRequestError(`cannot decode ${what}: invalid Arrow IPC stream (${why})`, { cause: err });
  }
  try {
    const table = tableFromIPC(aligned);
    if (!(table instanceof Table)) throw new Error('not a table');
    return table;
  } catch (err) {
    throw new BadRequestError(`cannot decode ${what}: invalid Arrow IPC stream (${(err as Error).message})`, { cause: err });
  }
}
