/**
 * The seed-004 packets: one JSON object `{type, id, data}` per line, the error-code table with its
 * message templates, and a decoder that checks a line against the protocol and names the first
 * problem with the table's code and wording. The decoder knows every packet type in both
 * directions; which types a side accepts is the side's business (see worker.ts).
 */

/** Every packet type of the protocol. */
export const PACKET_TYPES = ['ack', 'error', 'ping', 'pong', 'progress', 'load-samples', 'infer', 'inference-result'] as const;

/** A packet type of the protocol. */
export type PacketType = (typeof PACKET_TYPES)[number];

/** The error table of seed 004: code → message template with `${name}` placeholders. */
export const ERROR_MESSAGES = {
  'bad-packet-json': 'Received packet that is invalid JSON.',
  'null-packet': 'Received a null packet.',
  'no-such-packet': 'Received packet with invalid type: "${packet}".',
  'no-such-id': 'Received a ${packet_type} for invalid packet with id ${id}.',
  'missing-protocol-field': 'Received a ${packet_type} without the required protocol field ${field_name}.',
  'missing-body-field': 'Received a ${packet_type} without the required body field ${field_name}.',
  'field-out-of-range': 'Field ${field_name} is unexpectedly not in range ${range_string}.',
  'field-of-wrong-type': 'Field ${field_name} is of invalid type, expected a ${expected_type}.',
  bug: 'Something went wrong on the receiving side. This is a bug.',
  'wrong-pong': 'Received a pong with the wrong message. Expected: "${message}", not "${wrong_message}".',
  'path-does-not-exist': '${path} unexpectedly does not exist.',
  'unexpected-empty-string': 'Field ${field_name} is unexpectedly empty.',
  'unexpected-not-directory': '${path} unexpectedly is not a directory.',
  'unexpected-not-file': '${path} unexpectedly is not a file.',
  'unexpected-not-file-or-directory': '${path} unexpectedly is not a file or a directory.',
  'unexpected-class': '"${class}" is not one of previously specified classes.',
} as const;

/** An error code of the table. */
export type ErrorCode = keyof typeof ERROR_MESSAGES;

/**
 * The id an error refers to when the offending packet has no usable id (invalid JSON, null, no
 * `id` field, an `id` of the wrong type or out of range). Packet ids themselves are never negative.
 */
export const NO_PACKET_ID = -1;

/** Range of packet ids: non-negative safe integers, so -1 stays free for {@link NO_PACKET_ID}. */
export const PACKET_ID_RANGE = [0, Number.MAX_SAFE_INTEGER] as const;

/** Range of ids that refer to another packet (`data.id`): packet ids plus {@link NO_PACKET_ID}. */
export const REFERENCE_ID_RANGE = [NO_PACKET_ID, Number.MAX_SAFE_INTEGER] as const;

/** Fills a template of the table; every placeholder must be given (a missing one is a bug here). */
export function errorMessage(code: ErrorCode, params: Readonly<Record<string, string | number>> = {}): string {
  return ERROR_MESSAGES[code].replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`error message ${code}: no value for \${${name}}`);
    return String(value);
  });
}

/** A protocol failure: a table code, its filled-in message, and the packet id it refers to. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    params: Readonly<Record<string, string | number>> = {},
    /** Id of the packet that caused it ({@link NO_PACKET_ID} when unknown). */
    public refId: number = NO_PACKET_ID,
  ) {
    super(errorMessage(code, params));
    this.name = 'ProtocolError';
  }
}

/** Bodies of every packet type, as the seed defines them. */
export interface PacketBodies {
  ack: { id: number };
  /** `etc` is optional on receipt ("unspecified extra information"); this side always sends it. */
  error: { id: number; code: string; etc?: string };
  ping: { message: string };
  pong: { id: number; message: string };
  progress: { id: number; completeness: number };
  'load-samples': { path: string; label: string };
  infer: { input_path: string; output_path: string };
  /** `id` (the `infer` packet's id) is this implementation's addition, so results can be matched. */
  'inference-result': { label: string; id?: number };
}

/** A packet with a typed body. */
export type PacketOf<T extends PacketType> = { type: T; id: number; data: PacketBodies[T] };

/** Any well-formed packet. */
export type Packet = { [T in PacketType]: PacketOf<T> }[PacketType];

type FieldType = 'int' | 'string' | 'double';

interface FieldSpec {
  name: string;
  type: FieldType;
  optional?: boolean;
  /** An empty string is refused with `unexpected-empty-string`. */
  nonEmpty?: boolean;
  range?: readonly [number, number];
}

/** Body fields per type, in the order they are checked. */
const BODY_FIELDS: Record<PacketType, readonly FieldSpec[]> = {
  ack: [{ name: 'id', type: 'int', range: REFERENCE_ID_RANGE }],
  error: [
    { name: 'id', type: 'int', range: REFERENCE_ID_RANGE },
    { name: 'code', type: 'string', nonEmpty: true },
    { name: 'etc', type: 'string', optional: true },
  ],
  ping: [{ name: 'message', type: 'string' }],
  pong: [
    { name: 'id', type: 'int', range: REFERENCE_ID_RANGE },
    { name: 'message', type: 'string' },
  ],
  progress: [
    { name: 'id', type: 'int', range: REFERENCE_ID_RANGE },
    { name: 'completeness', type: 'double', range: [0, 1] },
  ],
  'load-samples': [
    { name: 'path', type: 'string', nonEmpty: true },
    { name: 'label', type: 'string', nonEmpty: true },
  ],
  infer: [
    { name: 'input_path', type: 'string', nonEmpty: true },
    { name: 'output_path', type: 'string' },
  ],
  'inference-result': [
    { name: 'label', type: 'string' },
    { name: 'id', type: 'int', optional: true, range: REFERENCE_ID_RANGE },
  ],
};

function isPacketType(v: string): v is PacketType {
  return (PACKET_TYPES as readonly string[]).includes(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rangeString([lo, hi]: readonly [number, number]): string {
  return `[${lo}, ${hi}]`;
}

function checkNumber(name: string, value: unknown, type: 'int' | 'double', range: readonly [number, number] | undefined, refId: number): number {
  if (typeof value !== 'number' || (type === 'int' && !Number.isInteger(value))) {
    throw new ProtocolError('field-of-wrong-type', { field_name: name, expected_type: type }, refId);
  }
  if (range && !(value >= range[0] && value <= range[1])) {
    throw new ProtocolError('field-out-of-range', { field_name: name, range_string: rangeString(range) }, refId);
  }
  return value;
}

/**
 * Checks one line against the protocol and returns the packet, or throws a {@link ProtocolError}
 * naming the first problem. Checks, in order: JSON, null, an object, `type` present and a string,
 * `id` present, an int and in {@link PACKET_ID_RANGE}, `type` known, then `data` (an object when
 * the type has body fields) and its fields in the seed's order. Fields not in the seed are ignored.
 * The error refers to the packet's id whenever that id is valid, else to {@link NO_PACKET_ID}.
 */
export function decodePacket(line: string): Packet {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError('bad-packet-json');
  }
  if (value === null) throw new ProtocolError('null-packet');
  if (!isPlainObject(value)) throw new ProtocolError('field-of-wrong-type', { field_name: 'packet', expected_type: 'object' });

  // The id is read first (without failing) so that every later error can refer to it.
  const rawId = value.id;
  const validId = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= PACKET_ID_RANGE[0] && rawId <= PACKET_ID_RANGE[1];
  const refId = validId ? rawId : NO_PACKET_ID;

  if (!('type' in value)) throw new ProtocolError('missing-protocol-field', { packet_type: 'packet', field_name: 'type' }, refId);
  const type = value.type;
  if (typeof type !== 'string') throw new ProtocolError('field-of-wrong-type', { field_name: 'type', expected_type: 'string' }, refId);
  // An unknown type is named before checking the id: a name like `packet` would say nothing.
  if (!isPacketType(type)) throw new ProtocolError('no-such-packet', { packet: type }, refId);
  if (!('id' in value)) throw new ProtocolError('missing-protocol-field', { packet_type: type, field_name: 'id' }, refId);
  const id = checkNumber('id', rawId, 'int', PACKET_ID_RANGE, refId);

  const fields = BODY_FIELDS[type];
  const data = value.data;
  let body: Record<string, unknown> = {};
  if (data !== undefined) {
    if (!isPlainObject(data)) throw new ProtocolError('field-of-wrong-type', { field_name: 'data', expected_type: 'object' }, id);
    body = data;
  }
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = body[f.name];
    if (v === undefined) {
      if (f.optional) continue;
      throw new ProtocolError('missing-body-field', { packet_type: type, field_name: f.name }, id);
    }
    if (f.type === 'string') {
      if (typeof v !== 'string') throw new ProtocolError('field-of-wrong-type', { field_name: f.name, expected_type: 'string' }, id);
      if (f.nonEmpty && v === '') throw new ProtocolError('unexpected-empty-string', { field_name: f.name }, id);
      out[f.name] = v;
    } else {
      out[f.name] = checkNumber(f.name, v, f.type, f.range, id);
    }
  }
  return { type, id, data: out } as Packet;
}

/** The line (without its LF) for a packet. */
export function encodePacket<T extends PacketType>(type: T, id: number, data: PacketBodies[T]): string {
  return JSON.stringify({ type, id, data });
}
