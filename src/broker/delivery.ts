/**
 * Delivery rules both broker adapters share, so their semantics stay identical:
 * which ids and messages are acceptable, how long to wait before redelivering a rejected message,
 * and the bounded memory of recently seen message ids used for de-duplication.
 */
import { BadRequestError } from '../errors.js';
import type { ParticipantInfo, WireMessage } from './port.js';

/** Same shape as config ids: letters, digits, '_', '-', '.' (1-64 chars), no '..'. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Message ids may be longer (uuids with prefixes) but stay header- and subject-safe. */
const MESSAGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
/** Printable ASCII without control characters: categories travel as NATS headers. */
const CATEGORY_PATTERN = /^[\x21-\x7e][\x20-\x7e]{0,199}$/;
/** The ISO-8601 form `toISOString` writes (checked first: Date.parse is slow on the hot path). */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** A sender session id. */
const SESSION_PATTERN = /^[A-Za-z0-9]{1,64}$/;
/** An authentication tag (travels as a header). */
const AUTH_PATTERN = /^[\x21-\x7e][\x20-\x7e]{0,199}$/;

/** Throws BadRequestError unless `value` is a valid node or analysis id; `field` names it in the error. */
export function checkBrokerId(field: string, value: unknown): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value) || value.includes('..')) {
    throw new BadRequestError(
      `broker ${field}: expected an id of letters, digits, '_', '-' or '.' (1-64 chars), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Validates a message before it is sent: ids, category, time, sequence number and body size.
 * The size error names both the size and the limit, because the SDK reacts to it by routing the
 * body through storage instead.
 */
export function checkWireMessage(msg: WireMessage, maxPayload: number): void {
  if (!msg || typeof msg !== 'object') throw new BadRequestError('broker message: expected an object');
  if (typeof msg.id !== 'string' || !MESSAGE_ID_PATTERN.test(msg.id)) {
    throw new BadRequestError(`broker message.id: expected 1-200 chars of letters, digits, '_', '-', '.', ':', got ${JSON.stringify(msg.id)}`);
  }
  checkBrokerId('message.sender', msg.sender);
  checkBrokerId('message.recipient', msg.recipient);
  if (typeof msg.category !== 'string' || !CATEGORY_PATTERN.test(msg.category)) {
    throw new BadRequestError(`broker message.category: expected 1-200 printable ASCII chars, got ${JSON.stringify(msg.category)}`);
  }
  if (typeof msg.time !== 'string' || !(ISO_TIME.test(msg.time) || !Number.isNaN(Date.parse(msg.time)))) {
    throw new BadRequestError(`broker message.time: expected an ISO-8601 time, got ${JSON.stringify(msg.time)}`);
  }
  if (!Number.isSafeInteger(msg.message_number) || msg.message_number < 1) {
    throw new BadRequestError(`broker message.message_number: expected a whole number >= 1, got ${JSON.stringify(msg.message_number)}`);
  }
  if (msg.reply_to !== undefined && (typeof msg.reply_to !== 'string' || !MESSAGE_ID_PATTERN.test(msg.reply_to))) {
    throw new BadRequestError(`broker message.reply_to: expected a message id, got ${JSON.stringify(msg.reply_to)}`);
  }
  if (msg.session !== undefined && (typeof msg.session !== 'string' || !SESSION_PATTERN.test(msg.session))) {
    throw new BadRequestError(`broker message.session: expected 1-64 letters or digits, got ${JSON.stringify(msg.session)}`);
  }
  if (msg.auth !== undefined && (typeof msg.auth !== 'string' || !AUTH_PATTERN.test(msg.auth))) {
    throw new BadRequestError(`broker message.auth: expected 1-200 printable ASCII chars`);
  }
  if (!(msg.body instanceof Uint8Array)) {
    throw new BadRequestError(`broker message.body of message ${msg.id}: expected a Uint8Array`);
  }
  if (msg.body.byteLength > maxPayload) {
    throw new BadRequestError(
      `broker message.body of message ${msg.id}: ${msg.body.byteLength} bytes exceed the broker's inline limit of ${maxPayload} bytes`,
    );
  }
}

/**
 * Delay before a rejected message is offered again: the rejection's own `retryAfterMs` when it has one
 * (a receiver holding back a sender that is over its unread limit), else 50 ms doubling per attempt,
 * capped at 2 s.
 */
export function redeliveryDelayMs(attempt: number, rejection?: unknown): number {
  const asked = (rejection as { retryAfterMs?: unknown } | null | undefined)?.retryAfterMs;
  if (typeof asked === 'number' && Number.isFinite(asked) && asked >= 0) return Math.min(60_000, asked);
  return Math.min(2000, 50 * 2 ** Math.max(0, Math.min(attempt - 1, 6)));
}

/**
 * Message ids seen recently, forgotten after `ttlMs` or when more than `capacity` are held
 * (oldest first). Bounded so that a long analysis cannot grow it without limit.
 */
export class RecentIds {
  private readonly seen = new Map<string, number>();

  /** @param ttlMs how long an id is remembered; @param capacity most ids held at once */
  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly capacity = 100_000,
  ) {}

  /** True if `id` was added within the window. */
  has(id: string, now = Date.now()): boolean {
    const at = this.seen.get(id);
    return at !== undefined && now - at <= this.ttlMs;
  }

  /** Remembers `id` as seen now. */
  add(id: string, now = Date.now()): void {
    this.seen.delete(id);
    this.seen.set(id, now);
    // Map iteration is insertion order, so the first entries are the oldest.
    for (const [oldId, at] of this.seen) {
      if (this.seen.size <= this.capacity && now - at <= this.ttlMs) break;
      this.seen.delete(oldId);
    }
  }
}

/** Validates a participant record before it is written. */
export function checkParticipant(info: ParticipantInfo): void {
  if (!info || typeof info !== 'object') throw new BadRequestError('broker participant: expected an object');
  checkBrokerId('participant.nodeId', info.nodeId);
  if (info.role !== 'aggregator' && info.role !== 'analyzer') {
    throw new BadRequestError(`broker participant.role of ${info.nodeId}: expected "aggregator" or "analyzer", got ${JSON.stringify(info.role)}`);
  }
  if (info.keys !== undefined && (typeof info.keys !== 'object' || ![info.keys.kid, info.keys.box, info.keys.sign].every((v) => typeof v === 'string' && v.length <= 200))) {
    throw new BadRequestError(`broker participant.keys of ${info.nodeId}: expected {kid, box, sign} strings`);
  }
  if (typeof info.lastSeen !== 'string' || Number.isNaN(Date.parse(info.lastSeen))) {
    throw new BadRequestError(`broker participant.lastSeen of ${info.nodeId}: expected an ISO-8601 time, got ${JSON.stringify(info.lastSeen)}`);
  }
}

/** How long close() waits for a running handler to finish so its message can still be acknowledged. */
export const CLOSE_GRACE_MS = 2000;
