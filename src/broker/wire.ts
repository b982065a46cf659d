/**
 * One byte layout of a WireMessage, shared by the NATS adapter (the message's payload) and the
 * durable inbox (its journal records), read within bounds:
 *
 *   offset  size  field
 *   0       1     version (1)
 *   1       2     length H of the head, unsigned little-endian (at most 4096)
 *   3       H     head: JSON {i: id, s: sender, r: recipient, c: category, t: time, n: number,
 *                 p?: reply_to, e?: session, a?: auth}
 *   3+H     ...   body
 *
 * Carrying the fields in the payload rather than as NATS headers keeps the receiver from parsing
 * headers at all (the broker's own dedup header is still set on publish).
 */
import type { WireMessage } from './port.js';

const VERSION = 1;
/** Largest head accepted. */
export const MAX_WIRE_HEAD = 4096;

/** The bytes of `m`. */
export function encodeWire(m: WireMessage): Buffer {
  const head: Record<string, string | number> = { i: m.id, s: m.sender, r: m.recipient, c: m.category, t: m.time, n: m.message_number };
  if (m.reply_to !== undefined) head.p = m.reply_to;
  if (m.session !== undefined) head.e = m.session;
  if (m.auth !== undefined) head.a = m.auth;
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  const out = Buffer.allocUnsafe(3 + json.length + m.body.byteLength);
  out[0] = VERSION;
  out.writeUInt16LE(json.length, 1);
  json.copy(out, 3);
  out.set(m.body, 3 + json.length);
  return out;
}

/** The bytes each decoded message came from, so the inbox can journal them without encoding again. */
const sources = new WeakMap<WireMessage, Uint8Array>();

/** The bytes of `m`: those it was decoded from when there are such, else encoded now. */
export function wireBytes(m: WireMessage): Uint8Array {
  return sources.get(m) ?? encodeWire(m);
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 512;

/** The message in `bytes`, or undefined when they are not one (wrong version, lengths, field types). */
export function decodeWire(bytes: Uint8Array): WireMessage | undefined {
  if (bytes.byteLength < 3 || bytes[0] !== VERSION) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = buf.readUInt16LE(1);
  if (len > MAX_WIRE_HEAD || 3 + len > buf.length) return undefined;
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(buf.toString('utf8', 3, 3 + len)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (h === null || typeof h !== 'object') return undefined;
  const { i, s, r, c, t, n, p, e, a } = h;
  if (!str(i) || !str(s) || !str(r) || !str(c) || !str(t) || !Number.isSafeInteger(n)) return undefined;
  if ((p !== undefined && !str(p)) || (e !== undefined && !str(e)) || (a !== undefined && !str(a))) return undefined;
  // One object shape for every message (optional fields present, possibly undefined).
  const msg: WireMessage = {
    id: i,
    sender: s,
    recipient: r,
    category: c,
    time: t,
    message_number: n as number,
    reply_to: p as string | undefined,
    session: e as string | undefined,
    auth: a as string | undefined,
    body: bytes.subarray(3 + len),
  };
  sources.set(msg, bytes);
  return msg;
}
