/**
 * What the messenger hands to analyses and what they ask it for: the message, the options of a send,
 * the filter of a wait, the counts it keeps, and how an inbox entry is matched against a filter.
 */
import type { WireMessage } from '../broker/port.js';
import type { FlameValue } from '../codec/index.js';
import type { FlameError } from '../errors.js';

/** A message as analyses see it: seed 003's `{sender, time, message_number, data}` plus routing fields. */
export interface FlameMessage<T = FlameValue> {
  /** Unique message id (a UUID); answer it with `respond`. */
  id: string;
  /** Node id of the sender (proven: the message's tag verified with the sender's key). */
  sender: string;
  /** Node id of the receiver (this node). */
  recipient: string;
  /** Routing tag given by the sender; `message` by default, `intermediate_result` for sealed results, `response` for answers. */
  category: string;
  /** ISO-8601 time of sending (sender's clock). */
  time: string;
  /** Per-sender sequence number within the sender's session, starting at 1. */
  message_number: number;
  /** Id of the message this one answers. */
  reply_to?: string;
  /** The decoded payload (decrypted for intermediate results); `null` in `getMessages` when it could not be read (`awaitMessage` rejects with the reason instead). */
  data: T;
  /** For intermediate results: the id of the sealed object in hub storage. */
  result_id?: string;
}

/** Options of sendMessage. */
export interface SendOptions {
  /** Routing tag the receiver can wait for; default `message`. */
  category?: string;
  /** Mark the message as the answer to message `replyTo`. */
  replyTo?: string;
}

/** Filter of awaitMessage / getMessages. */
export interface MessageFilter {
  /** Sender node id(s); any sender when absent. */
  from?: string | string[];
  /** Only messages with this category (or one of these); any category when absent. */
  category?: string | string[];
  /** Only answers to the message with this id. */
  replyTo?: string;
  /** `read`: only messages awaited already; `unread`: only those not awaited yet (getMessages only). */
  status?: MessageStatus;
}

/** Whether the analysis has awaited (read) a message yet. */
export type MessageStatus = 'read' | 'unread';

/** Options of clearMessages. */
export interface ClearOptions {
  /** Only messages of this status; both when absent. */
  status?: MessageStatus;
  /** Only messages that arrived at least this many milliseconds ago (a message restored after a restart counts from the restart). */
  minAgeMs?: number;
}

/** A node's reachability as `askNodeStatus` reports it. */
export type NodeStatus = 'online' | 'offline' | 'not_connected';

/** What the messenger counted since it started. */
export interface MessageStats {
  /** Messages that passed verification and entered the inbox (quarantined ones included). */
  received: number;
  /** Redeliveries and replays recognised as already received, and dropped. */
  duplicates: number;
  /** Messages refused by verification, by sender, then by reason (`bad_tag`, `not_participant`, …). */
  refused: Record<string, Record<string, number>>;
  /** Messages whose body could not be read (kept in the quarantine folder). */
  quarantined: number;
  /** Times a sender was held back on the broker because its unread messages reached `maxUnreadBytes`. */
  heldBack: number;
}

/** A message in the in-memory inbox, with how it was read and whether it was taken. */
export interface InboxEntry {
  msg: FlameMessage;
  /** Set when the message arrived but could not be decoded or decrypted. */
  error?: FlameError;
  consumed: boolean;
  /** Bytes it accounts for (for the bounded history of taken messages). */
  size: number;
  /** When this node filed it (ms since the epoch; the restart time for a restored one). */
  receivedAt?: number;
}

/** Whether `e` is one of the messages `f` asks for. */
export function matches(e: InboxEntry, f: MessageFilter): boolean {
  if (f.category !== undefined && !(Array.isArray(f.category) ? f.category.includes(e.msg.category) : e.msg.category === f.category)) return false;
  if (f.replyTo !== undefined && e.msg.reply_to !== f.replyTo) return false;
  if (f.status !== undefined && e.consumed !== (f.status === 'read')) return false;
  if (f.from !== undefined) {
    const from = Array.isArray(f.from) ? f.from : [f.from];
    if (!from.includes(e.msg.sender)) return false;
  }
  return true;
}

/**
 * Category prefix of a message whose sender asks for a receipt: the receiver's messenger answers it
 * with a {@link RECEIPT} once the message is in its durable inbox. The analysis sees the category
 * without the prefix.
 */
export const RECEIPT_REQUEST = 'flame.receipt-request/';
/** Category of a receipt; its `reply_to` is the id of the message it acknowledges. Never filed in the inbox. */
export const RECEIPT = 'flame.receipt';

/** What `sendMessageAcknowledged` reports: which receivers stored the message durably in time. */
export interface AcknowledgedSend {
  /** Receivers whose SDK confirmed the message is in its durable inbox, in the order given. */
  acknowledged: string[];
  /** Receivers that did not confirm within the time (or could not be sent to), in the order given. */
  notAcknowledged: string[];
}

/** What `awaitMessages` returns: one message per sender that sent in time, and who did not. */
export interface AwaitedMessages {
  /** The next matching message of each sender that sent one in time. */
  messages: Record<string, FlameMessage>;
  /** Senders with no matching message within the time. */
  missing: string[];
  /** Senders whose next message arrived but could not be read (quarantined), with the reason. */
  unreadable: Record<string, Error>;
}

/** The fields of a FlameMessage that come from the wire message as they are (a receipt request's prefix dropped). */
export function messageFields(wire: WireMessage): Omit<FlameMessage, 'data' | 'result_id'> {
  return {
    id: wire.id,
    sender: wire.sender,
    recipient: wire.recipient,
    category: wire.category.startsWith(RECEIPT_REQUEST) ? wire.category.slice(RECEIPT_REQUEST.length) : wire.category,
    time: wire.time,
    message_number: wire.message_number,
    ...(wire.reply_to ? { reply_to: wire.reply_to } : {}),
  };
}

/** `f` in words, for a TimeoutError. */
export function describe(f: MessageFilter): string {
  const from = f.from === undefined ? 'any node' : (Array.isArray(f.from) ? f.from : [f.from]).map((n) => `"${n}"`).join(' or ');
  const category = f.category === undefined ? '' : ` (category ${(Array.isArray(f.category) ? f.category : [f.category]).map((c) => `"${c}"`).join(' or ')})`;
  return `from ${from}${category}${f.replyTo ? ` answering ${f.replyTo}` : ''}`;
}
