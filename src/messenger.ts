/**
 * The message broker client of FlameSDK: numbering, encoding, the detour of large payloads through hub
 * storage, sealed intermediate results, the inbox and the waiters on it. It sits on any BrokerAdapter.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import type { BrokerAdapter, ParticipantInfo, WireMessage } from './broker/port.js';
import type { ObjectStore } from './results/port.js';
import { decodeValue, encodeValue, type FlameValue } from './codec/index.js';
import { openSealed, sealFor } from './crypto/seal.js';
import { BadRequestError, FlameError, NotFoundError, TimeoutError } from './errors.js';
import type { Logger } from './logger.js';

/** A message as analyses see it: seed 003's `{sender, time, message_number, data}` plus routing fields. */
export interface FlameMessage<T = FlameValue> {
  /** Unique message id (a UUID); answer it with `respond`. */
  id: string;
  /** Node id of the sender. */
  sender: string;
  /** Node id of the receiver (this node). */
  recipient: string;
  /** Routing tag given by the sender; `message` by default, `intermediate_result` for sealed results, `response` for answers. */
  category: string;
  /** ISO-8601 time of sending (sender's clock). */
  time: string;
  /** Per-sender sequence number, starting at 1. */
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
}

/** A node's reachability as `askNodeStatus` reports it. */
export type NodeStatus = 'online' | 'offline' | 'not_connected';

/** Body framing: what follows the first byte. */
const FRAME_INLINE = 1; // codec bytes
const FRAME_STORED = 2; // JSON {key}: codec bytes in hub storage (payload over the broker limit)
const FRAME_SEALED = 3; // JSON {key, result_id}: sealed codec bytes in hub storage (intermediate result)

/** The `{key, result_id?}` reference a stored or sealed frame carries; BadRequestError when malformed. */
function parseReference(payload: Uint8Array, what: string): { key: string; result_id?: unknown } {
  let ref: unknown;
  try {
    ref = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new BadRequestError(`${what}: the storage reference is not JSON`);
  }
  const key = (ref as { key?: unknown } | null)?.key;
  if (typeof key !== 'string' || key === '') throw new BadRequestError(`${what}: the storage reference has no key`);
  return ref as { key: string; result_id?: unknown };
}

/** Room left in a broker payload for the frame byte and adapter overhead. */
const FRAME_MARGIN = 1024;

interface InboxEntry {
  msg: FlameMessage;
  /** Set when the message arrived but could not be decoded or decrypted. */
  error?: FlameError;
  consumed: boolean;
}

interface Waiter {
  filter: MessageFilter;
  resolve: (e: InboxEntry) => void;
}

export interface MessengerOptions {
  nodeId: string;
  projectId: string;
  analysisId: string;
  participants: string[];
  broker: BrokerAdapter;
  hub: ObjectStore;
  privateKey: KeyObject;
  log: Logger;
}

function matches(e: InboxEntry, f: MessageFilter): boolean {
  if (f.category !== undefined && !(Array.isArray(f.category) ? f.category.includes(e.msg.category) : e.msg.category === f.category)) return false;
  if (f.replyTo !== undefined && e.msg.reply_to !== f.replyTo) return false;
  if (f.from !== undefined) {
    const from = Array.isArray(f.from) ? f.from : [f.from];
    if (!from.includes(e.msg.sender)) return false;
  }
  return true;
}

function describe(f: MessageFilter): string {
  const from = f.from === undefined ? 'any node' : (Array.isArray(f.from) ? f.from : [f.from]).map((n) => `"${n}"`).join(' or ');
  const category = f.category === undefined ? '' : ` (category ${(Array.isArray(f.category) ? f.category : [f.category]).map((c) => `"${c}"`).join(' or ')})`;
  return `from ${from}${category}${f.replyTo ? ` answering ${f.replyTo}` : ''}`;
}

export class Messenger {
  private readonly inbox: InboxEntry[] = [];
  private readonly seen = new Set<string>();
  private waiters: Waiter[] = [];
  private counter = 0;

  constructor(private readonly o: MessengerOptions) {}

  private transferKey(id: string): string {
    return `projects/${this.o.projectId}/analyses/${this.o.analysisId}/transfers/${id}`;
  }

  /** Begin durable consumption of this node's inbox. */
  async start(): Promise<void> {
    await this.o.broker.start(this.o.nodeId, (wire) => this.receive(wire));
  }

  private checkReceiver(receiver: string): void {
    if (typeof receiver !== 'string' || !this.o.participants.includes(receiver)) {
      throw new NotFoundError(`unknown receiver ${JSON.stringify(receiver)}: participants are ${this.o.participants.join(', ')}`);
    }
  }

  private envelope(receiver: string, category: string, body: Uint8Array, replyTo?: string): WireMessage {
    return {
      id: randomUUID(),
      sender: this.o.nodeId,
      recipient: receiver,
      category,
      time: new Date().toISOString(),
      message_number: ++this.counter,
      ...(replyTo ? { reply_to: replyTo } : {}),
      body,
    };
  }

  private static frame(kind: number, payload: Uint8Array): Uint8Array {
    const out = new Uint8Array(payload.length + 1);
    out[0] = kind;
    out.set(payload, 1);
    return out;
  }

  /** Send `data` to one or more nodes; returns the message ids in receiver order. */
  async send(receivers: string | string[], data: FlameValue, opts: SendOptions = {}): Promise<string[]> {
    const list = Array.isArray(receivers) ? receivers : [receivers];
    if (list.length === 0) throw new BadRequestError('sendMessage: receivers is empty');
    list.forEach((r) => this.checkReceiver(r));
    const encoded = encodeValue(data);
    const ids: string[] = [];
    for (const receiver of list) {
      let msg = this.envelope(receiver, opts.category ?? 'message', new Uint8Array(0), opts.replyTo);
      if (encoded.length + FRAME_MARGIN > this.o.broker.maxPayload) {
        // Too large for the broker: park the bytes in hub storage and send a reference.
        const key = this.transferKey(msg.id);
        await this.o.hub.put(key, encoded, { metadata: { sender: this.o.nodeId, recipient: receiver } });
        msg = { ...msg, body: Messenger.frame(FRAME_STORED, Buffer.from(JSON.stringify({ key }))) };
      } else {
        msg = { ...msg, body: Messenger.frame(FRAME_INLINE, encoded) };
      }
      await this.o.broker.publish(msg);
      ids.push(msg.id);
    }
    return ids;
  }

  /**
   * Seal `value` for `receiver` (its announced X25519 key), park it in hub storage and send a reference.
   * Waits up to `timeoutMs` for the receiver to announce its key.
   */
  async sendIntermediateResult(receiver: string, value: FlameValue, opts: { category?: string; timeoutMs?: number } = {}): Promise<string> {
    this.checkReceiver(receiver);
    const info = await this.waitForParticipant(receiver, opts.timeoutMs ?? 30_000);
    const resultId = randomUUID();
    const key = this.transferKey(resultId);
    const sealed = sealFor(info.publicKey, encodeValue(value), this.aad(receiver, resultId));
    await this.o.hub.put(key, sealed, { metadata: { sender: this.o.nodeId, recipient: receiver, sealed: 'x25519-aes256gcm' } });
    const msg = this.envelope(receiver, opts.category ?? 'intermediate_result', Messenger.frame(FRAME_SEALED, Buffer.from(JSON.stringify({ key, result_id: resultId }))));
    await this.o.broker.publish(msg);
    return resultId;
  }

  private aad(receiver: string, resultId: string): string {
    return `${this.o.analysisId}/${receiver}/${resultId}`;
  }

  private async waitForParticipant(nodeId: string, timeoutMs: number): Promise<ParticipantInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = (await this.o.broker.participants()).find((p) => p.nodeId === nodeId);
      if (info?.publicKey) return info;
      if (Date.now() >= deadline) throw new TimeoutError(`node "${nodeId}" has not announced itself within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Adapter callback: resolve the body, file the message, wake a waiter. Rejects only for retryable faults. */
  private async receive(wire: WireMessage): Promise<void> {
    if (this.seen.has(wire.id)) return;
    const base = {
      id: wire.id,
      sender: wire.sender,
      recipient: wire.recipient,
      category: wire.category,
      time: wire.time,
      message_number: wire.message_number,
      ...(wire.reply_to ? { reply_to: wire.reply_to } : {}),
    };
    const what = `message ${wire.id} from "${wire.sender}"`;
    let entry: InboxEntry;
    try {
      entry = { msg: { ...base, ...(await this.resolveBody(wire, what)) }, consumed: false };
    } catch (e) {
      // A storage or network hiccup is worth a redelivery; a missing, undecodable or foreign body is not
      // (S3 reads its own writes, so a missing object stays missing): the waiter gets the reason.
      if (!(e instanceof FlameError) || e.kind === 'internal' || e.kind === 'timeout') throw e;
      this.o.log.error('could not read message', { id: wire.id, sender: wire.sender, error: e });
      entry = { msg: { ...base, data: null }, error: e, consumed: false };
    }
    this.seen.add(wire.id);
    this.inbox.push(entry);

    const waiter = this.waiters.find((w) => matches(entry, w.filter));
    if (waiter) {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      entry.consumed = true;
      waiter.resolve(entry);
    }
  }

  private async resolveBody(wire: WireMessage, what: string): Promise<{ data: FlameValue; result_id?: string }> {
    const body = wire.body;
    if (body.length === 0) throw new BadRequestError(`${what}: empty body`);
    const payload = body.subarray(1);
    switch (body[0]) {
      case FRAME_INLINE:
        return { data: decodeValue(payload, what) };
      case FRAME_STORED: {
        const { key } = parseReference(payload, what);
        return { data: decodeValue(await this.o.hub.getBytes(key), what) };
      }
      case FRAME_SEALED: {
        const { key, result_id } = parseReference(payload, what);
        if (typeof result_id !== 'string') throw new BadRequestError(`${what}: sealed reference without a result_id`);
        const sealed = await this.o.hub.getBytes(key);
        const plain = openSealed(this.o.privateKey, sealed, this.aad(this.o.nodeId, result_id), `intermediate result ${result_id} from "${wire.sender}"`);
        return { data: decodeValue(plain, what), result_id };
      }
      default:
        throw new BadRequestError(`${what}: unknown frame kind ${body[0]}`);
    }
  }


  /**
   * The first not-yet-awaited message that matches `filter`, waiting up to `timeoutMs` for one to arrive.
   * A message that arrived but could not be read rejects with the reason.
   */
  async await(filter: MessageFilter, timeoutMs: number): Promise<FlameMessage> {
    const found = this.inbox.find((e) => !e.consumed && matches(e, filter));
    let entry: InboxEntry;
    if (found) {
      found.consumed = true;
      entry = found;
    } else {
      entry = await new Promise<InboxEntry>((resolve, reject) => {
        const waiter: Waiter = {
          filter,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new TimeoutError(`no message ${describe(filter)} within ${timeoutMs} ms`));
        }, timeoutMs);
        this.waiters.push(waiter);
      });
    }
    if (entry.error) throw entry.error;
    return entry.msg;
  }

  /** Every message that has arrived so far (awaited or not), oldest first. */
  messages(filter: MessageFilter = {}): FlameMessage[] {
    return this.inbox.filter((e) => matches(e, filter)).map((e) => e.msg);
  }

  /** Fail all pending waiters (used on close). */
  cancelWaiters(reason: string): void {
    const pending = this.waiters;
    this.waiters = [];
    for (const w of pending) w.resolve({ msg: { id: '', sender: '', recipient: '', category: '', time: '', message_number: 0, data: null }, error: new TimeoutError(reason), consumed: true });
  }
}
