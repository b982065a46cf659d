/**
 * The Broker port on NATS JetStream. One stream per analysis holds every node's inbox subject until
 * the recipient acknowledges; each node consumes its inbox through a durable pull consumer;
 * participant records live in a JetStream KV bucket; pings are core NATS request/reply.
 *
 * Delivery guarantees match the in-memory adapter: the handler is awaited before the ack, a rejected
 * handler means a nak with backoff, and ids are de-duplicated twice — by JetStream's duplicate window
 * on publish (`Nats-Msg-Id`) and by a recent-ids set on the consumer side, so a redelivery after a
 * lost ack never reaches the handler twice.
 */
import fs from 'node:fs';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  Empty,
  ErrorCode,
  Events,
  RetentionPolicy,
  StorageType,
  connect,
  credsAuthenticator,
  headers,
  nanos,
  type ConnectionOptions,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type KV,
  type NatsConnection,
  type NatsError,
  type Subscription,
  type TlsOptions,
} from 'nats';
import { BadRequestError, InternalError, TimeoutError, UnauthorizedError } from '../errors.js';
import {
  CLOSE_GRACE_MS,
  RecentIds,
  checkBrokerId,
  checkParticipant,
  checkWireMessage,
  redeliveryDelayMs,
} from './delivery.js';
import { analysisNames, type AnalysisNames } from './nats-names.js';
import type { BrokerAdapter, MessageHandler, ParticipantInfo, WireMessage } from './port.js';

/** Bytes of max_payload kept free for the message headers (ids, category, time, subject). */
export const NATS_HEADER_MARGIN = 4096;

/** Header names of the message fields; the body travels as the payload. */
const H = {
  msgId: 'Nats-Msg-Id',
  sender: 'Flame-Sender',
  recipient: 'Flame-Recipient',
  category: 'Flame-Category',
  time: 'Flame-Time',
  number: 'Flame-Message-Number',
  replyTo: 'Flame-Reply-To',
} as const;

/** How long the server holds a message for a recipient that never acknowledges it. */
const STREAM_MAX_AGE_MS = 7 * 24 * 3600_000;
/** JetStream duplicate window for `Nats-Msg-Id`. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** Unacknowledged messages are redelivered after this long; long handlers extend it. */
const ACK_WAIT_MS = 30_000;

/** Options of {@link NatsBrokerAdapter.connect}. */
export interface NatsBrokerOptions {
  /** NATS server URLs (`nats://host:4222`, `tls://…`). */
  servers: string[];
  /** The analysis; names the JetStream stream and participant bucket this adapter uses. */
  analysisId: string;
  /**
   * The node this connection acts for. Sets the connection's reply-inbox prefix to the one that
   * `natsNodePermissions` allows; required when the server enforces those permissions.
   */
  nodeId?: string;
  /** User name for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  pass?: string;
  /** Token for token authentication. */
  token?: string;
  /** Path to a NATS credentials (JWT + nkey seed) file. */
  credsFile?: string;
  /** Accept self-signed TLS certificates (for `tls://` servers). */
  insecure?: boolean;
  /** Connection name shown in the server's monitoring. */
  name?: string;
  /** Give up a publish or announce that cannot reach the server for this long; default 60 s. */
  publishTimeoutMs?: number;
}

type Retryable = (e: unknown) => boolean;

/** Errors that mean "the server is not reachable right now" rather than "this request is wrong". */
const transient: Retryable = (e) => {
  const code = (e as NatsError | undefined)?.code;
  return (
    code === ErrorCode.Timeout ||
    code === ErrorCode.NoResponders ||
    code === ErrorCode.Disconnect ||
    code === ErrorCode.JetStream408RequestTimeout ||
    // JetStream answers 503 / "no suitable peers" while it is still recovering after a restart.
    /jetstream not (enabled|ready)|no suitable peers|timeout/i.test(String((e as Error | undefined)?.message ?? ''))
  );
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for `p` but at most `ms`; the timer is cleared so it never keeps the process alive. */
async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Translates a NATS error into the SDK's error classes, naming what was attempted. */
function toFlameError(what: string, e: unknown): Error {
  const err = e as NatsError;
  const detail = err?.message ?? String(e);
  if (err?.code === ErrorCode.PermissionsViolation || err?.code === ErrorCode.AuthorizationViolation) {
    return new UnauthorizedError(`${what}: ${detail}`, { cause: e });
  }
  if (transient(e)) return new TimeoutError(`${what}: ${detail}`, { cause: e });
  return new InternalError(`${what}: ${detail}`, { cause: e });
}

/** A BrokerAdapter on a NATS server with JetStream. Create it with {@link NatsBrokerAdapter.connect}. */
export class NatsBrokerAdapter implements BrokerAdapter {
  /** Largest body carried inline: the server's max_payload minus 4096 bytes kept for headers (`NATS_HEADER_MARGIN`). */
  readonly maxPayload: number;
  private readonly names: AnalysisNames;
  private readonly seen = new RecentIds();
  private nodeId: string | undefined;
  private pingSub: Subscription | undefined;
  private messages: ConsumerMessages | undefined;
  /** Messages received from the consumer, handled one at a time in arrival order. */
  private readonly queue: JsMsg[] = [];
  private wakeLoop: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private closed = false;
  /** Settles when the connection next comes back after a loss; replaced after each reconnect. */
  /** Rejecters of the publishes in flight, called when the client reconnects (see retrying). */
  private readonly inFlight = new Set<() => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly analysisId: string,
    private readonly publishTimeoutMs: number,
  ) {
    this.names = analysisNames(analysisId);
    this.maxPayload = Math.max(1, (nc.info?.max_payload ?? 1024 * 1024) - NATS_HEADER_MARGIN);
    void this.watchReconnects();
  }

  /**
   * A request sent just before a connection loss is never answered; instead of waiting for its
   * timeout, publishes retry as soon as the client has reconnected (the message id keeps it single).
   */
  private async watchReconnects(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === Events.Reconnect) for (const cancel of [...this.inFlight]) cancel();
    }
  }

  /**
   * Connects, and creates the analysis' stream and KV bucket if they do not exist yet.
   * The connection reconnects forever after a loss; a first connection that fails throws.
   */
  static async connect(opts: NatsBrokerOptions): Promise<NatsBrokerAdapter> {
    const analysisId = checkBrokerId('analysisId', opts.analysisId);
    if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
      throw new BadRequestError('broker servers: expected at least one NATS URL');
    }
    if (opts.nodeId !== undefined) checkBrokerId('nodeId', opts.nodeId);
    const names = analysisNames(analysisId);
    const co: ConnectionOptions = {
      servers: opts.servers,
      name: opts.name,
      user: opts.user,
      pass: opts.pass,
      token: opts.token,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      timeout: 5000,
      inboxPrefix: opts.nodeId !== undefined ? names.replyPrefix(opts.nodeId) : undefined,
    };
    if (opts.credsFile) {
      let creds: Uint8Array;
      try {
        creds = fs.readFileSync(opts.credsFile);
      } catch (e) {
        throw new BadRequestError(`broker credsFile: cannot read ${opts.credsFile} (${(e as Error).message})`, { cause: e });
      }
      co.authenticator = credsAuthenticator(creds);
    }
    if (opts.insecure && opts.servers.some((s) => s.startsWith('tls://'))) {
      // nats.js hands these options to node's tls.connect, which knows rejectUnauthorized.
      co.tls = Object.assign({} as TlsOptions, { rejectUnauthorized: false });
    }
    let nc: NatsConnection;
    try {
      nc = await connect(co);
    } catch (e) {
      throw toFlameError(`broker: cannot connect to NATS ${opts.servers.join(', ')}`, e);
    }
    try {
      const jsm = await nc.jetstreamManager();
      await ensureStream(jsm, names);
      const js = nc.jetstream();
      const kv = await js.views.kv(names.bucket, { history: 1, storage: StorageType.File });
      return new NatsBrokerAdapter(nc, js, jsm, kv, analysisId, opts.publishTimeoutMs ?? 60_000);
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw toFlameError(`broker: cannot set up JetStream stream ${names.stream} for analysis ${analysisId} on ${opts.servers.join(', ')}`, e);
    }
  }

  /**
   * Deletes the analysis' stream (all undelivered messages, all consumers) and its KV bucket.
   * For tests and for operators cleaning up after an analysis; missing resources are ignored.
   */
  static async purgeAnalysis(opts: Omit<NatsBrokerOptions, 'nodeId'>): Promise<void> {
    const names = analysisNames(checkBrokerId('analysisId', opts.analysisId));
    const nc = await connect({ servers: opts.servers, user: opts.user, pass: opts.pass, token: opts.token, timeout: 5000 });
    try {
      const jsm = await nc.jetstreamManager();
      for (const stream of [names.stream, `KV_${names.bucket}`]) {
        try {
          await jsm.streams.delete(stream);
        } catch (e) {
          if (!/not found/i.test((e as Error).message)) throw toFlameError(`broker: cannot delete stream ${stream}`, e);
        }
      }
    } finally {
      await nc.close();
    }
  }

  async start(nodeId: string, handler: MessageHandler): Promise<void> {
    this.assertOpen('start');
    checkBrokerId('nodeId', nodeId);
    if (this.nodeId !== undefined) {
      throw new BadRequestError(`broker start(${nodeId}): this adapter already consumes for node ${this.nodeId}`);
    }
    this.nodeId = nodeId;
    const { stream } = this.names;
    const durable = this.names.durable(nodeId);
    try {
      await this.ensureConsumer(nodeId);
      const consumer = await this.js.consumers.get(stream, durable);
      // Callback mode fills our own queue, so close() can nak whatever was fetched but not handled.
      this.messages = await consumer.consume({
        max_messages: 64,
        callback: (m) => {
          this.queue.push(m);
          this.wake();
        },
      });
      this.pingSub = this.nc.subscribe(this.names.ping(nodeId), {
        callback: (err, m) => {
          if (!err) m.respond(Empty);
        },
      });
      // Once start() resolves the node must answer pings, so make sure the server has the subscription.
      await this.nc.flush();
    } catch (e) {
      // Leave the adapter as before, so start() may be tried again.
      this.nodeId = undefined;
      await this.messages?.close().catch(() => undefined);
      this.messages = undefined;
      throw toFlameError(`broker start(${nodeId}): cannot consume inbox ${this.names.inbox(nodeId)} of analysis ${this.analysisId}`, e);
    }
    this.loop = this.handleLoop(handler);
  }

  private async ensureConsumer(nodeId: string): Promise<void> {
    const durable = this.names.durable(nodeId);
    const config = {
      durable_name: durable,
      filter_subject: this.names.inbox(nodeId),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: 1000,
    };
    try {
      await this.jsm.consumers.add(this.names.stream, config);
    } catch (e) {
      // An existing durable (a restarted node) is reused as it is.
      if (!/already (exists|in use)/i.test((e as Error).message)) throw e;
    }
  }

  private wake(): void {
    const w = this.wakeLoop;
    this.wakeLoop = undefined;
    w?.();
  }

  /** Handles queued messages one at a time; acks after the handler resolves, naks on rejection. */
  private async handleLoop(handler: MessageHandler): Promise<void> {
    while (!this.stopping) {
      const m = this.queue.shift();
      if (!m) {
        await new Promise<void>((r) => (this.wakeLoop = r));
        continue;
      }
      const msg = decodeMessage(m);
      if (!msg) {
        // Not something an adapter sent (no Flame headers): drop it for good instead of looping.
        settle(() => m.term());
        continue;
      }
      if (this.seen.has(msg.id)) {
        settle(() => m.ack());
        continue;
      }
      // Long handlers keep the message theirs instead of letting ack_wait redeliver it meanwhile.
      const keepAlive = setInterval(() => settle(() => m.working()), ACK_WAIT_MS / 3);
      try {
        await handler(msg);
        this.seen.add(msg.id);
        settle(() => m.ack());
      } catch {
        settle(() => m.nak(redeliveryDelayMs(m.info.redeliveryCount)));
      } finally {
        clearInterval(keepAlive);
      }
    }
  }

  async publish(msg: WireMessage): Promise<void> {
    this.assertOpen('publish');
    checkWireMessage(msg, this.maxPayload);
    const h = headers();
    h.set(H.sender, msg.sender);
    h.set(H.recipient, msg.recipient);
    h.set(H.category, msg.category);
    h.set(H.time, msg.time);
    h.set(H.number, String(msg.message_number));
    if (msg.reply_to !== undefined) h.set(H.replyTo, msg.reply_to);
    const subject = this.names.inbox(msg.recipient);
    await this.retrying(`broker publish of message ${msg.id} to ${msg.recipient}`, () =>
      this.js.publish(subject, msg.body, { msgID: msg.id, headers: h, expect: { streamName: this.names.stream }, timeout: 5000 }),
    );
  }

  async announce(info: ParticipantInfo): Promise<void> {
    this.assertOpen('announce');
    checkParticipant(info);
    const body = new TextEncoder().encode(JSON.stringify(info));
    await this.retrying(`broker announce of node ${info.nodeId}`, () => this.kv.put(this.names.participantKey(info.nodeId), body));
  }

  async participants(): Promise<ParticipantInfo[]> {
    this.assertOpen('participants');
    return this.retrying(`broker participants of analysis ${this.analysisId}`, async () => {
      const keys: string[] = [];
      for await (const k of await this.kv.keys()) keys.push(k);
      const out: ParticipantInfo[] = [];
      for (const k of keys) {
        const e = await this.kv.get(k);
        if (e && e.operation === 'PUT' && e.value.length > 0) out.push(e.json<ParticipantInfo>());
      }
      return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    });
  }

  async ping(nodeId: string, timeoutMs: number): Promise<boolean> {
    this.assertOpen('ping');
    checkBrokerId('ping nodeId', nodeId);
    if (!(timeoutMs > 0)) throw new BadRequestError(`broker ping(${nodeId}) timeoutMs: expected > 0, got ${timeoutMs}`);
    try {
      await this.nc.request(this.names.ping(nodeId), Empty, { timeout: timeoutMs });
      return true;
    } catch {
      // No responder, a timeout or a lost connection all mean "not reachable now".
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    try {
      this.pingSub?.unsubscribe();
    } catch {
      // the connection may already be gone
    }
    this.wake();
    if (this.loop) await waitAtMost(this.loop, CLOSE_GRACE_MS);
    try {
      await this.messages?.close();
    } catch {
      // already stopped
    }
    // Fetched but unhandled messages go back to the server at once, not after ack_wait.
    for (const m of this.queue.splice(0)) settle(() => m.nak());
    await waitAtMost(this.nc.drain().catch(() => undefined), 5000);
    if (!this.nc.isClosed()) await this.nc.close();
  }

  /**
   * Runs `op`, retrying transient failures (disconnected, JetStream recovering) with backoff until
   * the publish timeout. Retried publishes keep their `Nats-Msg-Id`, so the server stores them once.
   */
  private async retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // One short-lived promise per attempt (not a reaction on a long-lived one, which would pile
        // up with every publish until the next reconnect).
        let cancel!: () => void;
        const reconnect = new Promise<never>((_, reject) => {
          cancel = () => reject(Object.assign(new Error('reconnected before an answer came'), { code: ErrorCode.Disconnect }));
        });
        reconnect.catch(() => undefined);
        this.inFlight.add(cancel);
        try {
          return await Promise.race([op(), reconnect]);
        } finally {
          this.inFlight.delete(cancel);
        }
      } catch (e) {
        if (this.nc.isClosed()) throw new BadRequestError(`${what}: the connection to NATS is closed`, { cause: e });
        if (!transient(e) || Date.now() >= deadline) throw toFlameError(what, e);
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
  }

  private assertOpen(op: string): void {
    if (this.closed) {
      throw new BadRequestError(`broker ${op}: the adapter of analysis ${this.analysisId}${this.nodeId ? ` (node ${this.nodeId})` : ''} is closed`);
    }
  }
}

/**
 * Sends an ack/nak/term. If the connection is closed it throws; the message then simply stays
 * unacknowledged and the server redelivers it, which is the outcome we want anyway.
 */
function settle(send: () => void): void {
  try {
    send();
  } catch {
    // see above
  }
}

/** Creates the analysis stream unless it exists (a concurrent creation by another node is fine). */
async function ensureStream(jsm: JetStreamManager, names: AnalysisNames): Promise<void> {
  try {
    await jsm.streams.info(names.stream);
    return;
  } catch (e) {
    if (!/not found/i.test((e as Error).message)) throw e;
  }
  try {
    await jsm.streams.add({
      name: names.stream,
      subjects: [names.inboxWildcard],
      // Work-queue retention: a message is gone once its recipient acknowledged it.
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(STREAM_MAX_AGE_MS),
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      num_replicas: 1,
    });
  } catch (e) {
    if (!/already in use/i.test((e as Error).message)) throw e;
  }
}

/** Rebuilds a WireMessage from a JetStream message's headers and payload; undefined if malformed. */
function decodeMessage(m: JsMsg): WireMessage | undefined {
  const h = m.headers;
  if (!h) return undefined;
  const id = h.get(H.msgId);
  const sender = h.get(H.sender);
  const recipient = h.get(H.recipient);
  const category = h.get(H.category);
  const time = h.get(H.time);
  const number = Number(h.get(H.number));
  if (!id || !sender || !recipient || !category || !time || !Number.isSafeInteger(number)) return undefined;
  const msg: WireMessage = { id, sender, recipient, category, time, message_number: number, body: m.data };
  const replyTo = h.get(H.replyTo);
  if (replyTo) msg.reply_to = replyTo;
  return msg;
}
