/**
 * How a WireMessage travels on NATS: its bytes (../wire.ts) as the payload, on the subject of its
 * recipient and sender. The sender on receipt is the one the subject names (the broker lets a login
 * publish only as itself): a payload that names another sender or recipient is a forgery.
 */
import type { JsMsg } from 'nats';
import type { WireMessage } from '../port.js';
import { decodeWire } from '../wire.js';
import { fromNatsToken } from './names.js';

/** Why {@link decodeMessage} refused a message. */
export type WireRejection = 'malformed' | 'sender_mismatch' | 'recipient_mismatch';

/** Rebuilds a WireMessage from a JetStream message, checked against its subject. */
export function decodeMessage(m: JsMsg): WireMessage | WireRejection {
  const msg = decodeWire(m.data);
  if (!msg) return 'malformed';
  const tokens = m.subject.split('.');
  if (tokens.length < 2) return 'malformed';
  if (msg.sender !== fromNatsToken(tokens[tokens.length - 1])) return 'sender_mismatch';
  if (msg.recipient !== fromNatsToken(tokens[tokens.length - 2])) return 'recipient_mismatch';
  return msg;
}
