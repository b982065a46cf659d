/**
 * How the FLAME node broker adapter's messages look inside the node message broker's JSON `message`:
 * a python-SDK-style `meta` (id, sender, category, number, akn_id, status) so FLAME's tooling reads
 * them, and a `flame_sdk` part with what our port needs: a per-(sender run, recipient) stream with
 * sequence numbers (the broker neither orders nor keeps messages), the base below which the sender
 * holds nothing unacknowledged, fragments of bodies larger than one broker request, and the control
 * kinds (acknowledgements, pings, participant announcements). Everything parsed here came over the
 * network from anyone who could reach the webhook, so each field is checked within bounds.
 */
import { BadRequestError } from '../errors.js';
import { checkBrokerId, checkParticipant } from '../broker/delivery.js';
import type { ParticipantInfo, WireMessage } from '../broker/port.js';
import { normaliseMetadata } from '../results/metadata.js';

/** A stream id: the sender adapter's random id for one recipient. */
const STREAM_PATTERN = /^[A-Za-z0-9]{8,64}$/;
const NONCE_PATTERN = /^[A-Za-z0-9]{8,64}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

/** One fragment of a message (most messages are one fragment). */
export interface DataFrame {
  /** Always `data`. */
  kind: 'data';
  /** The sender's stream to this recipient. */
  stream: string;
  /** Sequence number in the stream, from 1. */
  seq: number;
  /** Every seq below this is acknowledged or abandoned by the sender. */
  base: number;
  /** Fragment index, from 0. */
  part: number;
  /** Number of fragments of the message. */
  parts: number;
  /** The message's fields; `body` holds this fragment's bytes only. */
  msg: WireMessage;
}

/** The control messages of the adapter's own protocol. */
export type ControlFrame =
  | { kind: 'ack'; sender: string; recipient: string; stream: string; seqs: number[] }
  | { kind: 'ping' | 'pong'; sender: string; recipient: string; nonce: string }
  | { kind: 'announce'; sender: string; recipient: string; nonce: string; participant: ParticipantInfo }
  | { kind: 'announce_ack'; sender: string; recipient: string; nonce: string }
  | { kind: 'object'; sender: string; recipient: string; nonce: string; object: SharedObject }
  | { kind: 'object_ack'; sender: string; recipient: string; nonce: string };

/** Where a node put an object for another one in the storage service's intermediate results. */
export interface SharedObject {
  /** The ObjectStore key the sender wrote. */
  key: string;
  /** The storage service's id of it. */
  objectId: string;
  /** Size in bytes. */
  size: number;
  /** ISO-8601 time of writing. */
  lastModified: string;
  /** The object's metadata. */
  metadata: Record<string, string>;
}

/** Anything the webhook accepts. */
export type Frame = DataFrame | ControlFrame;

/** Bounds on what the webhook parses. */
export interface FrameLimits {
  /** Largest fragment body in bytes. */
  fragmentBytes: number;
  /** Most fragments of one message. */
  maxParts: number;
  /** Most seqs in one acknowledgement. */
  maxAckSeqs: number;
}

/** The JSON `message` posted to the broker for `frame`. */
export function frameToJson(frame: Frame): Record<string, unknown> {
  if (frame.kind === 'data') {
    const m = frame.msg;
    return {
      meta: meta(m.id, m.sender, m.category, m.message_number, m.time),
      flame_sdk: {
        v: 1,
        kind: 'data',
        stream: frame.stream,
        seq: frame.seq,
        base: frame.base,
        part: frame.part,
        parts: frame.parts,
        recipient: m.recipient,
        time: m.time,
        ...(m.reply_to !== undefined ? { reply_to: m.reply_to } : {}),
        ...(m.session !== undefined ? { session: m.session } : {}),
        ...(m.auth !== undefined ? { auth: m.auth } : {}),
        body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('base64'),
      },
    };
  }
  const id = frame.kind === 'ack' ? `${frame.stream}.ack.${frame.seqs[0]}` : `${frame.kind}.${frame.nonce}`;
  const { kind, sender, recipient, ...rest } = frame;
  return {
    meta: meta(id, sender, `flame_sdk.${kind}`, 0, new Date().toISOString()),
    flame_sdk: { v: 1, kind, recipient, ...rest },
  };
}

function meta(id: string, sender: string, category: string, number: number, time: string): Record<string, unknown> {
  return { type: 'outgoing', category, id, akn_id: null, status: 'unread', sender, created_at: time, arrived_at: null, number };
}

function field(o: Record<string, unknown>, name: string, pattern: RegExp): string {
  const v = o[name];
  if (typeof v !== 'string' || !pattern.test(v)) throw new BadRequestError(`webhook message flame_sdk.${name}: malformed (${JSON.stringify(v)?.slice(0, 80)})`);
  return v;
}

function count(o: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = o[name];
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    throw new BadRequestError(`webhook message flame_sdk.${name}: expected a whole number in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function optionalString(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > 256) throw new BadRequestError(`webhook message flame_sdk.${name}: expected a short string`);
  return v;
}

/**
 * Reads a frame from the JSON the broker pushed to the webhook. Throws BadRequestError naming the
 * field when anything is missing, malformed or over `limits`; the message's own fields (ids,
 * category, body size) are checked again by the adapter with the port's rules.
 */
export function parseFrame(json: Record<string, unknown>, limits: FrameLimits): Frame {
  const m = json.meta as Record<string, unknown> | undefined;
  const f = json.flame_sdk as Record<string, unknown> | undefined;
  if (!m || typeof m !== 'object' || !f || typeof f !== 'object') {
    throw new BadRequestError('webhook message: expected the fields meta and flame_sdk (not a message of this SDK)');
  }
  if (f.v !== 1) throw new BadRequestError(`webhook message flame_sdk.v: expected 1, got ${JSON.stringify(f.v)}`);
  const sender = checkBrokerId('webhook message meta.sender', m.sender);
  const recipient = checkBrokerId('webhook message flame_sdk.recipient', f.recipient);
  switch (f.kind) {
    case 'data': {
      const parts = count(f, 'parts', 1, limits.maxParts);
      const body = f.body;
      if (typeof body !== 'string' || body.length > Math.ceil(limits.fragmentBytes / 3) * 4 || !BASE64_PATTERN.test(body)) {
        throw new BadRequestError(`webhook message flame_sdk.body: expected base64 of at most ${limits.fragmentBytes} bytes`);
      }
      if (typeof m.id !== 'string' || typeof m.category !== 'string' || typeof f.time !== 'string') {
        throw new BadRequestError('webhook message: meta.id, meta.category and flame_sdk.time must be strings');
      }
      const msg: WireMessage = {
        id: m.id,
        sender,
        recipient,
        category: m.category,
        time: f.time,
        message_number: m.number as number,
        body: new Uint8Array(Buffer.from(body, 'base64')),
      };
      const reply = optionalString(f, 'reply_to');
      const session = optionalString(f, 'session');
      const auth = optionalString(f, 'auth');
      if (reply !== undefined) msg.reply_to = reply;
      if (session !== undefined) msg.session = session;
      if (auth !== undefined) msg.auth = auth;
      return {
        kind: 'data',
        stream: field(f, 'stream', STREAM_PATTERN),
        seq: count(f, 'seq', 1, Number.MAX_SAFE_INTEGER),
        base: count(f, 'base', 1, Number.MAX_SAFE_INTEGER),
        part: count(f, 'part', 0, parts - 1),
        parts,
        msg,
      };
    }
    case 'ack': {
      const seqs = f.seqs;
      if (!Array.isArray(seqs) || seqs.length < 1 || seqs.length > limits.maxAckSeqs || !seqs.every((s) => Number.isSafeInteger(s) && s >= 1)) {
        throw new BadRequestError(`webhook message flame_sdk.seqs: expected 1-${limits.maxAckSeqs} sequence numbers`);
      }
      return { kind: 'ack', sender, recipient, stream: field(f, 'stream', STREAM_PATTERN), seqs: seqs as number[] };
    }
    case 'object': {
      const o = f.object as Record<string, unknown> | undefined;
      if (!o || typeof o.key !== 'string' || o.key.length > 1024 || typeof o.objectId !== 'string' || !/^[0-9a-fA-F-]{32,36}$/.test(o.objectId)) {
        throw new BadRequestError('webhook message flame_sdk.object: expected {key, objectId, size, lastModified, metadata}');
      }
      if (!Number.isSafeInteger(o.size) || (o.size as number) < 0 || typeof o.lastModified !== 'string' || o.lastModified.length > 40) {
        throw new BadRequestError('webhook message flame_sdk.object: bad size or lastModified');
      }
      const metadata = normaliseMetadata(o.metadata as Record<string, string>, o.key);
      return { kind: 'object', sender, recipient, nonce: field(f, 'nonce', NONCE_PATTERN), object: { key: o.key, objectId: o.objectId, size: o.size as number, lastModified: o.lastModified, metadata } };
    }
    case 'ping':
    case 'pong':
    case 'announce_ack':
    case 'object_ack':
      return { kind: f.kind, sender, recipient, nonce: field(f, 'nonce', NONCE_PATTERN) };
    case 'announce': {
      const p = f.participant as ParticipantInfo;
      checkParticipant(p);
      if (p.nodeId !== sender) throw new BadRequestError(`webhook announcement of ${JSON.stringify(p.nodeId)} sent by ${sender}`);
      const info = participantCopy(p);
      return { kind: 'announce', sender, recipient, nonce: field(f, 'nonce', NONCE_PATTERN), participant: info };
    }
    default:
      throw new BadRequestError(`webhook message flame_sdk.kind: unknown ${JSON.stringify(f.kind)?.slice(0, 40)}`);
  }
}

/** A participant record with only the port's fields, each a bounded string. */
function participantCopy(p: ParticipantInfo): ParticipantInfo {
  const short = (v: unknown, name: string, max: number): string => {
    if (typeof v !== 'string' || v.length > max) throw new BadRequestError(`webhook announcement ${name}: expected a string of at most ${max} chars`);
    return v;
  };
  const out: ParticipantInfo = { nodeId: p.nodeId, role: p.role, lastSeen: short(p.lastSeen, 'lastSeen', 40) };
  if (p.keys !== undefined) {
    out.keys = { kid: short(p.keys.kid, 'keys.kid', 128), box: short(p.keys.box, 'keys.box', 1024), sign: short(p.keys.sign, 'keys.sign', 1024) };
  }
  if (p.closed !== undefined) out.closed = p.closed === true;
  return out;
}
