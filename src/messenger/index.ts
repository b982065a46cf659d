/**
 * The message broker client of FlameSDK: numbering, authentication, encoding, sealing, the detour of
 * large payloads through hub storage, the durable inbox and the waiters on it. It sits on any
 * BrokerAdapter and trusts nothing that arrives:
 *
 *   1. the sender must be a participant and the message's tag must verify with the sender's key from
 *      the roster (else it is dropped, counted and logged by sender — it never reaches the analysis);
 *   2. a message seen before (sender session and number) is dropped as a duplicate;
 *   3. a sender over its unread limit is held back: its flow waits (its messages stay on the broker, in
 *      order) until the analysis has read enough of what it sent; other senders are not held up;
 *   4. the body is read within bounds: references only to the sender's own transfer object of that
 *      message, of the announced size and digest; sealed boxes only from that sender; values decoded
 *      within size and time budgets. A body that cannot be read is quarantined: kept in the state folder,
 *      logged, acknowledged, and reported to the analysis' waiter by name — the inbox moves on;
 *   5. only then is it written to the durable inbox and acknowledged.
 */
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { BrokerAdapter, DeliveryInfo, WireMessage } from '../broker/port.js';
import { decodeBudgetOf, decodeUntrusted, encodeValue, type FlameValue } from '../codec/index.js';
import { BadRequestError, ConflictError, ExcludedError, FlameError, InternalError, NotFoundError, TimeoutError, UnauthorizedError, type FlameErrorKind } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../logger.js';
import type { ObjectStore } from '../results/port.js';
import type { NodeIdentity, PublicKeySet } from '../trust/identity.js';
import { MessageAuthenticator, type PeerKeys } from '../trust/message-auth.js';
import { openSealed, sealFor } from '../trust/seal.js';
import { FRAME_INLINE, FRAME_SEALED, FRAME_STORED, frame, parseFrame, readReferenced, referenceFrame, sha256Hex, transferKey, type ObjectRef } from './frames.js';
import { HoldBack } from './hold-back.js';
import { DurableInbox, type InboxRecord } from './inbox.js';
import { Mailbox } from './mailbox.js';
import { messageFields, RECEIPT, RECEIPT_REQUEST, type AcknowledgedSend, type AwaitedMessages, type ClearOptions, type FlameMessage, type InboxEntry, type MessageFilter, type MessageStats, type SendOptions } from './message.js';
import { QuarantineFolder } from './quarantine.js';

export type { AcknowledgedSend, AwaitedMessages, ClearOptions, FlameMessage, MessageFilter, MessageStats, MessageStatus, NodeStatus, SendOptions } from './message.js';

const EMPTY = new Uint8Array(0);

/** Room left in a broker payload for the frame byte and adapter overhead. */
const FRAME_MARGIN = 1024;
/** A body that could not be fetched is retried this often before it is quarantined. */
const MAX_FETCH_ATTEMPTS = 8;

/** What a Messenger works with. */
export interface MessengerOptions {
  nodeId: string;
  projectId: string;
  analysisId: string;
  participants: string[];
  broker: BrokerAdapter;
  hub: ObjectStore;
  /** This node's keys. */
  identity: NodeIdentity;
  /** The other nodes' keys, and a way to look for newer ones. */
  trust: PeerKeys & { refresh(minIntervalMs?: number): Promise<boolean> };
  limits: Limits;
  log: Logger;
  /** Folder of the durable inbox and the quarantine. */
  stateDir: string;
  /** Told of every message sent or taken in (the run is alive: see RunState's `stuck`). */
  onActivity?: () => void;
  /** Decoder of untrusted values (default: the codec's decodeUntrusted within the node's limits). */
  decode?: (bytes: Uint8Array, what: string, limits: Limits) => Promise<FlameValue>;
}

/** Size, time and memory budgets of the codec, from the node's limits. */
function defaultDecode(bytes: Uint8Array, what: string, limits: Limits): Promise<FlameValue> {
  return decodeUntrusted(bytes, what, decodeBudgetOf(limits));
}

const ERROR_CLASSES: Record<FlameErrorKind, new (m: string) => FlameError> = {
  bad_request: BadRequestError,
  not_found: NotFoundError,
  unauthorized: UnauthorizedError,
  conflict: ConflictError,
  timeout: TimeoutError,
  excluded: ExcludedError,
  internal: InternalError,
};

/** See the module comment. */
export class Messenger {
  /** This run's session id: message numbers count up within it. */
  readonly session = randomBytes(8).toString('hex');
  /** What was received, refused and held back (see {@link MessageStats}). */
  readonly stats: MessageStats = { received: 0, duplicates: 0, refused: {}, quarantined: 0, heldBack: 0 };
  private readonly mailbox = new Mailbox((entry) => {
    this.inbox?.take(entry.msg.id);
    this.holdBack.wake();
  });
  private readonly holdBack: HoldBack;
  private readonly quarantined: QuarantineFolder;
  private counter = 0;
  private inbox: DurableInbox | undefined;
  private readonly auth: MessageAuthenticator;
  private readonly decode: (bytes: Uint8Array, what: string, limits: Limits) => Promise<FlameValue>;
  private readonly fetchFailures = new Map<string, number>();
  private readonly lastWarned = new Map<string, number>();
  private closing = false;
  /** Senders of acknowledged messages waiting for receipts, by `receiver/message id`. */
  private readonly receiptWaiters = new Map<string, (acked: boolean) => void>();

  constructor(private readonly o: MessengerOptions) {
    this.auth = new MessageAuthenticator(o.analysisId, o.identity, o.trust);
    this.decode = o.decode ?? defaultDecode;
    this.holdBack = new HoldBack({ unreadBytes: (sender) => this.inbox?.unreadBytes(sender), maxUnreadBytes: o.limits.maxUnreadBytes, stats: this.stats, log: o.log });
    this.quarantined = new QuarantineFolder(path.join(o.stateDir, 'quarantine'), o.log);
  }

  /** Opens the durable inbox (messages kept from before a restart come back first), then starts consuming. */
  async start(): Promise<void> {
    const { inbox, restored } = DurableInbox.open(path.join(this.o.stateDir, 'inbox'));
    this.inbox = inbox;
    for (const rec of restored) {
      this.mailbox.restore(await this.restore(rec));
    }
    await this.o.broker.start(this.o.nodeId, (wire, info) => this.receive(wire, info), {
      senders: this.o.participants,
      onRefused: ({ sender, reason, id }) =>
        this.refuse({ id: id ?? '?', sender, recipient: this.o.nodeId, category: '?', time: '', message_number: 0, body: new Uint8Array(0) }, reason, 'refused by the broker adapter: the headers disagree with the proven sender, or are not ours'),
    });
  }

  /** Closes the inbox file (the broker adapter is closed by its owner). */
  close(): void {
    this.inbox?.close();
    this.inbox = undefined;
  }

  private checkReceiver(receiver: string): void {
    if (typeof receiver !== 'string' || !this.o.participants.includes(receiver)) {
      throw new NotFoundError(`unknown receiver ${JSON.stringify(receiver)}: participants are ${this.o.participants.join(', ')}`);
    }
  }

  private envelope(receiver: string, category: string, replyTo?: string): WireMessage {
    // Every field present from the start (one object shape for every message keeps V8's caches fast).
    return {
      id: randomUUID(),
      sender: this.o.nodeId,
      recipient: receiver,
      category,
      time: new Date().toISOString(),
      message_number: ++this.counter,
      reply_to: replyTo || undefined,
      session: this.session,
      auth: undefined,
      body: EMPTY,
    };
  }

  /** The receiver's newest key set, waiting (first-use trust) up to `timeoutMs` for it to become known. */
  private async keysFor(receiver: string, timeoutMs: number): Promise<PublicKeySet> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const k = this.o.trust.keysOf(receiver)?.[0];
      if (k) return k;
      if (Date.now() >= deadline) throw new TimeoutError(`node "${receiver}" has no known key (not in the roster, or not announced within ${timeoutMs} ms)`);
      await this.o.trust.refresh(100);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private aad(sender: string, receiver: string, id: string, messageId: string): string {
    return `${this.o.analysisId}/${sender}/${receiver}/${id}/${messageId}`;
  }

  /** Seals `plain` for `receiver`, parks it in hub storage and returns the reference. */
  private async park(receiver: string, keys: PublicKeySet, id: string, messageId: string, plain: Uint8Array, resultId?: string): Promise<ObjectRef> {
    const key = transferKey(this.o.projectId, this.o.analysisId, this.o.nodeId, id);
    const sealed = sealFor(keys.box, plain, this.aad(this.o.nodeId, receiver, id, messageId), { senderPrivateKey: this.o.identity.keys[0].boxPrivate });
    await this.o.hub.put(key, sealed, { metadata: { sender: this.o.nodeId, recipient: receiver, sealed: 'x25519-auth-aes256gcm' } });
    return { key, size: sealed.byteLength, sha256: sha256Hex(sealed), ...(resultId ? { result_id: resultId } : {}) };
  }

  private async publish(msg: WireMessage): Promise<void> {
    msg.auth = this.auth.tag(msg);
    await this.o.broker.publish(msg);
    this.o.onActivity?.();
  }

  /** Send `data` to one or more nodes; returns the message ids in receiver order. */
  async send(receivers: string | string[], data: FlameValue, opts: SendOptions = {}): Promise<string[]> {
    const list = Array.isArray(receivers) ? receivers : [receivers];
    if (list.length === 0) throw new BadRequestError('sendMessage: receivers is empty');
    list.forEach((r) => this.checkReceiver(r));
    const encoded = encodeValue(data);
    const ids: string[] = [];
    for (const receiver of list) {
      const msg = await this.prepare(receiver, encoded, opts.category ?? 'message', opts.replyTo, 30_000);
      await this.publish(msg);
      ids.push(msg.id);
    }
    return ids;
  }

  /** The message to `receiver` with `encoded` as its body (inline, or through hub storage when too large), not yet tagged. */
  private async prepare(receiver: string, encoded: Uint8Array, category: string, replyTo: string | undefined, keyTimeoutMs: number): Promise<WireMessage> {
    const keys = await this.keysFor(receiver, keyTimeoutMs);
    const msg = this.envelope(receiver, category, replyTo);
    if (encoded.length + FRAME_MARGIN > this.o.broker.maxPayload) {
      // Too large for the broker: sealed for the receiver in hub storage, a reference on the broker.
      msg.body = referenceFrame(FRAME_STORED, await this.park(receiver, keys, msg.id, msg.id, encoded));
    } else {
      msg.body = frame(FRAME_INLINE, encoded);
    }
    return msg;
  }

  /**
   * Send `data` to each of `receivers` asking for a receipt, and wait up to `timeoutMs` (from the start)
   * for the receipts: a receiver is acknowledged once its messenger has the message in its durable
   * inbox. Receivers that do not answer in time, or cannot be sent to, are listed as not acknowledged.
   */
  async sendAcknowledged(receivers: string[], data: FlameValue, opts: { category?: string; timeoutMs?: number } = {}): Promise<AcknowledgedSend> {
    if (!Array.isArray(receivers) || receivers.length === 0) throw new BadRequestError('sendMessageAcknowledged: receivers must be a non-empty array of node ids');
    const list = [...new Set(receivers)];
    list.forEach((r) => this.checkReceiver(r));
    const category = opts.category ?? 'message';
    if (category.startsWith('flame.receipt')) throw new BadRequestError(`sendMessageAcknowledged: category ${JSON.stringify(category)} is reserved`);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    const encoded = encodeValue(data);
    const receipts = list.map(async (receiver): Promise<boolean> => {
      let key: string | undefined;
      try {
        const msg = await this.prepare(receiver, encoded, RECEIPT_REQUEST + category, undefined, Math.max(0, deadline - Date.now()));
        key = `${receiver}/${msg.id}`;
        // Waiting before publishing: a receipt may arrive before publish returns.
        const acked = new Promise<boolean>((resolve) => this.receiptWaiters.set(key!, resolve));
        await this.publish(msg);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
        const result = await Promise.race([acked, late]);
        clearTimeout(timer);
        return result;
      } catch (e) {
        this.o.log.warn('acknowledged send failed', { receiver, error: e });
        return false;
      } finally {
        if (key) this.receiptWaiters.delete(key);
      }
    });
    const acked = await Promise.all(receipts);
    return { acknowledged: list.filter((_, i) => acked[i]), notAcknowledged: list.filter((_, i) => !acked[i]) };
  }

  /** Tells `wire`'s sender that it is in the durable inbox (best effort: a lost receipt leaves it unacknowledged). */
  private sendReceipt(wire: WireMessage): void {
    void (async () => {
      const msg = await this.prepare(wire.sender, encodeValue(null), RECEIPT, wire.id, 5000);
      await this.publish(msg);
    })().catch((e: unknown) => this.o.log.warn('could not send a receipt', { id: wire.id, sender: wire.sender, error: e }));
  }

  /**
   * Seal `value` for `receiver` (and from this node), park it in hub storage and send a reference.
   * Waits up to `timeoutMs` for the receiver's key (first-use trust; a roster names it at once).
   */
  async sendIntermediateResult(receiver: string, value: FlameValue, opts: { category?: string; timeoutMs?: number } = {}): Promise<string> {
    this.checkReceiver(receiver);
    const keys = await this.keysFor(receiver, opts.timeoutMs ?? 30_000);
    const resultId = randomUUID();
    const msg = this.envelope(receiver, opts.category ?? 'intermediate_result');
    msg.body = referenceFrame(FRAME_SEALED, await this.park(receiver, keys, resultId, msg.id, encodeValue(value), resultId));
    await this.publish(msg);
    return resultId;
  }

  private refuse(wire: WireMessage, reason: string, detail: string): void {
    const bySender = (this.stats.refused[wire.sender] ??= {});
    bySender[reason] = (bySender[reason] ?? 0) + 1;
    const key = `${wire.sender}/${reason}`;
    const now = Date.now();
    // One line per sender and reason per 10 s: a flood cannot flood the log too.
    if (now - (this.lastWarned.get(key) ?? 0) >= 10_000) {
      this.lastWarned.set(key, now);
      this.o.log.warn('refused a message', { id: wire.id, sender: wire.sender, reason, detail, refused_so_far: bySender[reason] });
    }
  }

  /** Adapter callback; see the module comment for the steps. Rejects only to have the message offered again. */
  private async receive(wire: WireMessage, delivery: DeliveryInfo): Promise<void> {
    const inbox = this.inbox;
    if (!inbox) throw new Error('inbox closed');
    if (wire.recipient !== this.o.nodeId) return this.refuse(wire, 'wrong_recipient', `addressed to "${wire.recipient}"`);
    if (!this.o.participants.includes(wire.sender)) return this.refuse(wire, 'not_participant', `"${wire.sender}" is not a participant`);
    let check = this.auth.verify(wire);
    if (!check.ok && (check.reason === 'unknown_sender_key' || check.reason === 'unknown_sender') && (await this.o.trust.refresh())) {
      this.auth.clearCache();
      check = this.auth.verify(wire);
    }
    if (!check.ok) return this.refuse(wire, check.reason, check.detail);
    if (wire.category === RECEIPT) {
      // Proven from its sender: it acknowledges that sender's copy of our message, nothing else.
      if (wire.reply_to) this.receiptWaiters.get(`${wire.sender}/${wire.reply_to}`)?.(true);
      return;
    }
    const wantsReceipt = wire.category.startsWith(RECEIPT_REQUEST);
    if (inbox.isDuplicate(wire)) {
      this.stats.duplicates++;
      // Redelivered after a crash before the receipt went out, or the receipt was lost: send it again.
      if (wantsReceipt) this.sendReceipt(wire);
      return;
    }
    let parsed: ReturnType<typeof parseFrame> | undefined;
    let error: FlameError | undefined;
    const what = `message ${wire.id} from "${wire.sender}"`;
    try {
      parsed = parseFrame(wire.body, what);
    } catch (e) {
      error = e as FlameError;
    }
    const size = parsed?.kind === 'inline' ? parsed.payload.byteLength : (parsed?.ref.size ?? wire.body.byteLength);
    if (this.holdBack.full(wire.sender, size)) await this.holdBack.roomFor(wire.sender, size);
    let value: { data: FlameValue; result_id?: string; raw?: Uint8Array } | undefined;
    if (parsed) {
      try {
        value = await this.resolve(wire, parsed, what, check.senderKeys.box, check.recipientKeys.boxPrivate);
        this.fetchFailures.delete(wire.id);
      } catch (e) {
        const retryable = !(e instanceof FlameError) || e.kind === 'internal' || e.kind === 'timeout';
        const failures = (this.fetchFailures.get(wire.id) ?? 0) + 1;
        if (retryable && failures < MAX_FETCH_ATTEMPTS && !(delivery.attempt > 64)) {
          // A storage or network hiccup: offer it again later (not forever: MAX_FETCH_ATTEMPTS).
          this.fetchFailures.set(wire.id, failures);
          throw e;
        }
        this.fetchFailures.delete(wire.id);
        error = e instanceof FlameError ? e : new InternalError(`${what}: ${(e as Error)?.message ?? String(e)} (after ${failures} attempts)`, { cause: e });
      }
    }
    const base = messageFields(wire);
    let entry: InboxEntry;
    if (error || !value) {
      const err = error ?? new InternalError(`${what}: no value`);
      this.quarantine(wire, err, parsed?.kind === 'inline' ? parsed.payload : wire.body);
      inbox.add(wire, 'quarantined', size, { kind: err.kind, message: err.message });
      entry = { msg: { ...base, data: null }, error: err, consumed: false, size };
    } else {
      inbox.add(wire, 'ok', size);
      entry = { msg: { ...base, data: value.data, ...(value.result_id ? { result_id: value.result_id } : {}) }, consumed: false, size };
    }
    this.stats.received++;
    this.o.onActivity?.();
    this.mailbox.file(entry);
    if (wantsReceipt) this.sendReceipt(wire);
  }

  private async resolve(wire: WireMessage, f: ReturnType<typeof parseFrame>, what: string, senderBox: string, ownBox: NodeIdentity['keys'][number]['boxPrivate']): Promise<{ data: FlameValue; result_id?: string }> {
    if (f.kind === 'inline') return { data: await this.decode(f.payload, what, this.o.limits) };
    const id = f.kind === 'sealed' ? f.ref.result_id! : wire.id;
    const expected = transferKey(this.o.projectId, this.o.analysisId, wire.sender, id);
    if (f.ref.key !== expected) {
      throw new BadRequestError(`${what}: the storage reference points at ${JSON.stringify(f.ref.key)}, outside the sender's transfer object ${expected}`);
    }
    const refused = f.kind === 'sealed' ? `cannot decrypt intermediate result ${id} from "${wire.sender}"` : `cannot decrypt ${what}`;
    const sealed = await readReferenced(this.o.hub, f.ref, this.o.limits, what, refused);
    const plain = openSealed(ownBox, sealed, this.aad(wire.sender, wire.recipient, id, wire.id), refused.replace(/^cannot decrypt /, ''), { senderPublicKey: senderBox });
    const data = await this.decode(plain, what, this.o.limits);
    return f.kind === 'sealed' ? { data, result_id: id } : { data };
  }

  /** Keeps an unreadable payload and why, in the state folder (bounded), for an operator to look at. */
  private quarantine(wire: WireMessage, error: FlameError, payload: Uint8Array): void {
    this.stats.quarantined++;
    this.o.log.error('could not read message', { id: wire.id, sender: wire.sender, category: wire.category, error });
    this.quarantined.keep(wire, error, payload);
  }

  /** Rebuilds an in-memory entry from the durable inbox after a restart. */
  private async restore(rec: InboxRecord): Promise<InboxEntry> {
    const wire = rec.wire;
    const base = messageFields(wire);
    const what = `message ${wire.id} from "${wire.sender}"`;
    if (rec.status === 'quarantined') {
      const Cls = ERROR_CLASSES[rec.error?.kind ?? 'internal'] ?? InternalError;
      return { msg: { ...base, data: null }, error: new Cls(rec.error?.message ?? `${what}: could not be read`), consumed: rec.taken, size: rec.size };
    }
    try {
      const check = this.auth.verify(wire);
      if (!check.ok) throw new BadRequestError(`${what}: no longer verifies after the restart (${check.detail})`);
      const v = await this.resolve(wire, parseFrame(wire.body, what), what, check.senderKeys.box, check.recipientKeys.boxPrivate);
      return { msg: { ...base, data: v.data, ...(v.result_id ? { result_id: v.result_id } : {}) }, consumed: rec.taken, size: rec.size };
    } catch (e) {
      const err = e instanceof FlameError ? e : new InternalError(`${what}: ${(e as Error).message}`, { cause: e });
      return { msg: { ...base, data: null }, error: err, consumed: rec.taken, size: rec.size };
    }
  }

  /**
   * The first not-yet-awaited message that matches `filter`, waiting up to `timeoutMs` for one to arrive.
   * A message that arrived but could not be read rejects with the reason.
   */
  async await(filter: MessageFilter, timeoutMs: number): Promise<FlameMessage> {
    // Waiting on a closed node would only time out later: say so now (loops that retry timeouts end).
    if (this.closing) throw new InternalError(`node "${this.o.nodeId}" is closed: no more messages arrive`);
    return this.mailbox.await(filter, timeoutMs);
  }

  /**
   * The next matching message of each of `senders`, waited for at once (up to `timeoutMs` for all):
   * who did not send in time is listed as missing, whose message could not be read as unreadable.
   */
  async awaitEach(senders: string[], filter: Omit<MessageFilter, 'from'>, timeoutMs: number): Promise<AwaitedMessages> {
    if (!Array.isArray(senders) || senders.length === 0) throw new BadRequestError('awaitMessages: senders must be a non-empty array of node ids');
    const list = [...new Set(senders)];
    list.forEach((s) => {
      if (!this.o.participants.includes(s)) throw new NotFoundError(`awaitMessages: unknown sender ${JSON.stringify(s)}: participants are ${this.o.participants.join(', ')}`);
    });
    const settled = await Promise.allSettled(list.map((from) => this.await({ ...filter, from }, timeoutMs)));
    const out: AwaitedMessages = { messages: {}, missing: [], unreadable: {} };
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') out.messages[list[i]] = r.value;
      else if (r.reason instanceof TimeoutError || (r.reason instanceof InternalError && this.closing)) out.missing.push(list[i]);
      else out.unreadable[list[i]] = r.reason as Error;
    });
    return out;
  }

  /** Every message that has arrived so far (awaited or not), oldest first. */
  messages(filter: MessageFilter = {}): FlameMessage[] {
    return this.mailbox.messages(filter);
  }

  /**
   * Deletes messages `ids` from the inbox, in memory and durably (they do not come back after a
   * restart). Unknown ids are ignored; returns how many were removed.
   */
  deleteMessages(ids: readonly string[]): number {
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw new BadRequestError('deleteMessages: ids must be an array of message id strings');
    const inbox = this.inbox;
    if (!inbox) throw new InternalError(`node "${this.o.nodeId}" is closed: its inbox cannot be changed`);
    // The durable inbox may still hold taken messages memory has forgotten: both are asked.
    const gone = new Set([...this.mailbox.remove(new Set(ids)), ...inbox.delete(ids)]);
    // Deleting unread messages makes room for a held-back sender.
    this.holdBack.wake();
    return gone.size;
  }

  /** Deletes every message of `opts.status` (both when absent) that arrived at least `opts.minAgeMs` ago; returns how many. */
  clearMessages(opts: ClearOptions = {}): number {
    if (opts.status !== undefined && opts.status !== 'read' && opts.status !== 'unread') throw new BadRequestError(`clearMessages: status must be "read" or "unread", not ${JSON.stringify(opts.status)}`);
    if (opts.minAgeMs !== undefined && !(Number.isFinite(opts.minAgeMs) && opts.minAgeMs >= 0)) throw new BadRequestError(`clearMessages: minAgeMs must be a number >= 0, not ${JSON.stringify(opts.minAgeMs)}`);
    return this.deleteMessages(this.mailbox.idsToClear(opts));
  }

  /** Fail all pending waiters, and let held-back senders' messages go back to the broker (used on close). */
  cancelWaiters(reason: string): void {
    this.closing = true;
    for (const resolve of this.receiptWaiters.values()) resolve(false);
    this.holdBack.release();
    this.mailbox.cancelWaiters(reason);
  }
}
