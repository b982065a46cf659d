/**
 * The Broker port on a FLAME node's message broker (PrivateAIM/node-message-broker): REST to send
 * (`POST /analyses/{id}/messages` with recipients), discovery (`/participants`, `/participants/self`)
 * and a webhook subscription through which the broker pushes incoming messages to this pod.
 *
 * That broker keeps nothing: it forwards through the hub and posts to whichever webhook is
 * subscribed at that moment, in no promised order. So the adapter brings the port's guarantees
 * itself, as FLAME's python SDK does with its acknowledgements: every message travels on a
 * numbered stream per (sender run, recipient); the sender keeps it until the recipient acknowledges
 * it (after the handler resolved) and sends it again until then; the recipient puts each stream back
 * in order, de-duplicates by id, and runs one handler at a time per sender. Bodies larger than one
 * broker request are sent as numbered fragments. Participants' records travel as announcements.
 *
 * The webhook proves nothing about who sent a message: the sender named in it is a claim, proven
 * above the port by the messenger's authentication tags.
 */
import { randomBytes } from 'node:crypto';
import { BadRequestError, ConflictError, FlameError, TimeoutError } from '../errors.js';
import {
  CLOSE_GRACE_MS,
  RecentIds,
  checkBrokerId,
  checkParticipant,
  checkWireMessage,
  redeliveryDelayMs,
} from '../broker/delivery.js';
import type { BrokerAdapter, MessageHandler, ParticipantInfo, StartOptions, WireMessage } from '../broker/port.js';
import type { Logger } from '../logger.js';
import { AnalysisServer, parseJsonObject } from './analysis-server.js';
import { frameToJson, parseFrame, type ControlFrame, type DataFrame, type Frame, type FrameLimits, type SharedObject } from './envelope.js';
import {
  DEFAULT_RETRY,
  expectStatus,
  axiosHttpClient,
  readJson,
  requestWithRetries,
  type HttpClient,
  type RetryPolicy,
} from './http.js';
import type { TokenHolder } from './token.js';
import { yieldToEventLoop } from '../liveness.js';

/** Default largest message body, in bytes (what the NATS and memory adapters carry too). */
export const FLAME_NODE_DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/**
 * Default largest body bytes in one broker request: the broker reads requests with Spring WebFlux,
 * whose JSON decoder holds at most 256 KiB by default; 128 KiB of bytes is ~171 KiB of base64.
 */
export const FLAME_NODE_DEFAULT_FRAGMENT_BYTES = 128 * 1024;

/** The node's role as the message broker names it. */
export interface FlameNodeSelf {
  /** The node id in this analysis. */
  nodeId: string;
  /** `aggregator`, or `default` for an analyzer. */
  nodeType: 'aggregator' | 'default';
}

/** Options of {@link FlameNodeBrokerAdapter}. */
export interface FlameNodeBrokerOptions {
  /** Base URL of the node's message broker, e.g. `http://nginx-<DEPLOYMENT_NAME>/message-broker`. */
  brokerUrl: string;
  /** The analysis (`ANALYSIS_ID`). */
  analysisId: string;
  /** The Keycloak token (swapped by `/token_refresh`). */
  token: TokenHolder;
  /** The pod's HTTP server the `/webhook` route goes on. */
  server: AnalysisServer;
  /** URL the broker posts messages to, e.g. `http://nginx-<DEPLOYMENT_NAME>/analysis/webhook`. */
  webhookUrl: string;
  /** HTTP transport; axios by default. */
  http?: HttpClient;
  /** Largest message body in bytes (default 1 MiB). */
  maxPayload?: number;
  /** Largest body bytes per broker request (default 128 KiB); larger bodies go as fragments. */
  fragmentBytes?: number;
  /** Wait before sending an unacknowledged message again, in ms (default 3000; doubles per resend). */
  ackTimeoutMs?: number;
  /** Longest wait between resends, in ms (default 10000). */
  maxResendMs?: number;
  /** How long `announce` waits for other nodes to confirm, in ms (default 1500). */
  announceWaitMs?: number;
  /** Time budget of one broker request, in ms (default 10000). */
  requestTimeoutMs?: number;
  /** Retries of one send on 5xx and timeouts (default: 10 attempts, as FLAME's python SDK). */
  retry?: RetryPolicy;
  /** Most unacknowledged messages kept per recipient (default 10000). */
  maxUnacked?: number;
  /** Where warnings go. */
  logger?: Logger;
}

/** A sent fragment waiting for its acknowledgement. */
interface OutEntry {
  json: Record<string, unknown>;
  /** Epoch ms of the next resend. */
  resendAt: number;
  resends: number;
  posting: boolean;
  /** False until publish() saw the broker accept it (resends wait for that). */
  accepted: boolean;
}

/** This adapter's stream to one recipient. */
interface OutStream {
  stream: string;
  nextSeq: number;
  entries: Map<number, OutEntry>;
}

/** A complete message waiting for (or back from) its handler. */
interface InEntry {
  msg: WireMessage;
  stream: string;
  seqs: number[];
  attempts: number;
  availableAt: number;
  inFlight: boolean;
}

/** One incoming stream being put back in order. */
interface InStream {
  sender: string;
  next: number;
  buffer: Map<number, DataFrame>;
  partial?: { id: string; parts: number; chunks: Uint8Array[]; seqs: number[]; size: number };
  /** Handled seqs whose acknowledgement the sender may not have seen yet. */
  done: Set<number>;
  /** Seqs taken in (queued or in a partial) and not yet handled. */
  taken: Set<number>;
  lastActive: number;
}

/** Most incoming streams remembered at once (oldest forgotten first). */
const MAX_IN_STREAMS = 1024;
/** Most out-of-order fragments buffered per stream. */
const MAX_BUFFERED = 512;

/** The Broker port on a FLAME node's message broker; see the module comment. */
export class FlameNodeBrokerAdapter implements BrokerAdapter {
  /** Largest body carried, in bytes. */
  readonly maxPayload: number;
  private readonly http: HttpClient;
  private readonly fragmentBytes: number;
  private readonly ackTimeoutMs: number;
  private readonly maxResendMs: number;
  private readonly announceWaitMs: number;
  private readonly requestTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly maxUnacked: number;
  private readonly limits: FrameLimits;
  private readonly base: string;

  private connecting: Promise<FlameNodeSelf> | undefined;
  private selfInfo: FlameNodeSelf | undefined;
  private subscriptionId: string | undefined;
  private closed = false;
  private resendTimer: NodeJS.Timeout | undefined;

  private readonly out = new Map<string, OutStream>();
  private readonly inStreams = new Map<string, InStream>();
  private readonly queues = new Map<string, InEntry[]>();
  private readonly wakers = new Map<string, () => void>();
  private readonly consumers: Promise<void>[] = [];
  private readonly queuedIds = new Set<string>();
  private readonly recent = new RecentIds();
  private readonly table = new Map<string, ParticipantInfo>();
  private readonly waiting = new Map<string, () => void>();
  private readonly pendingAcks = new Map<string, { sender: string; stream: string; seqs: number[] }>();
  private ackTimer: NodeJS.Timeout | undefined;
  /** Objects other nodes shared with this one, by key (bounded, oldest forgotten first). */
  private readonly shared = new Map<string, SharedObject>();
  private handler: MessageHandler | undefined;
  private startOptions: StartOptions = {};
  private abandoned = false;

  /** @param options where the broker is, the token, the pod's server and the timings */
  constructor(private readonly options: FlameNodeBrokerOptions) {
    checkBrokerId('analysisId', options.analysisId);
    this.maxPayload = positive('maxPayload', options.maxPayload ?? FLAME_NODE_DEFAULT_MAX_PAYLOAD);
    this.fragmentBytes = positive('fragmentBytes', options.fragmentBytes ?? FLAME_NODE_DEFAULT_FRAGMENT_BYTES);
    this.ackTimeoutMs = positive('ackTimeoutMs', options.ackTimeoutMs ?? 3000);
    this.maxResendMs = positive('maxResendMs', options.maxResendMs ?? 10_000);
    this.announceWaitMs = positive('announceWaitMs', options.announceWaitMs ?? 1500);
    this.requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? 10_000);
    this.maxUnacked = positive('maxUnacked', options.maxUnacked ?? 10_000);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.http = options.http ?? axiosHttpClient;
    this.limits = { fragmentBytes: this.fragmentBytes, maxParts: Math.ceil(this.maxPayload / this.fragmentBytes), maxAckSeqs: 4096 };
    this.base = `${options.brokerUrl.replace(/\/+$/, '')}/analyses/${encodeURIComponent(options.analysisId)}`;
  }

  /**
   * Who this pod is in the analysis, as the broker says (`GET …/participants/self`); also subscribes
   * the webhook on first call. Every other method calls it first.
   */
  self(): Promise<FlameNodeSelf> {
    this.assertOpen('connect');
    this.connecting ??= this.connect().catch((e) => {
      this.connecting = undefined;
      throw e;
    });
    return this.connecting;
  }

  private async connect(): Promise<FlameNodeSelf> {
    const res = await this.call('GET', '/participants/self');
    await expectStatus(res, [200], `message broker GET participants/self of analysis ${this.options.analysisId}`);
    const json = (await readJson(res, 64 * 1024, 'message broker participants/self')) as Record<string, unknown>;
    const nodeId = checkBrokerId('participants/self nodeId', json?.nodeId);
    const nodeType = json.nodeType === 'aggregator' ? 'aggregator' : 'default';
    const webhookMax = Math.ceil(this.fragmentBytes / 3) * 4 + 64 * 1024;
    this.options.server.route('POST', '/webhook', webhookMax, (body) => this.receive(body));
    await this.options.server.listen();
    const sub = await this.call('POST', '/messages/subscriptions', { webhookUrl: this.options.webhookUrl });
    await expectStatus(sub, [200, 201], `message broker subscription of ${this.options.webhookUrl}`);
    const subJson = (await readJson(sub, 64 * 1024, 'message broker subscription')) as Record<string, unknown>;
    if (typeof subJson?.subscriptionId === 'string') this.subscriptionId = subJson.subscriptionId;
    this.resendTimer = setInterval(() => this.resendDue(), Math.max(20, Math.min(500, this.ackTimeoutMs / 4)));
    this.resendTimer.unref();
    this.selfInfo = { nodeId, nodeType };
    return this.selfInfo;
  }

  async start(nodeId: string, handler: MessageHandler, options: StartOptions = {}): Promise<void> {
    this.assertOpen('start');
    checkBrokerId('nodeId', nodeId);
    if (this.handler) throw new BadRequestError(`broker start(${nodeId}): this adapter already consumes for node ${this.selfInfo?.nodeId}`);
    const self = await this.self();
    if (self.nodeId !== nodeId) {
      throw new ConflictError(`broker start(${nodeId}): the message broker says this pod is node ${self.nodeId}`);
    }
    this.startOptions = options;
    this.handler = handler;
  }

  async publish(msg: WireMessage): Promise<void> {
    this.assertOpen('publish');
    checkWireMessage(msg, this.maxPayload);
    const self = await this.self();
    if (msg.sender !== self.nodeId) throw new BadRequestError(`broker message.sender: ${msg.sender} is not this node (${self.nodeId})`);
    const out = this.outStream(msg.recipient);
    const parts = Math.max(1, Math.ceil(msg.body.byteLength / this.fragmentBytes));
    if (out.entries.size + parts > this.maxUnacked) {
      throw new FlameError(`broker publish to ${msg.recipient}: ${out.entries.size} messages still unacknowledged (limit ${this.maxUnacked})`);
    }
    const seqs: number[] = [];
    for (let part = 0; part < parts; part++) {
      const seq = out.nextSeq++;
      seqs.push(seq);
      const body = msg.body.subarray(part * this.fragmentBytes, (part + 1) * this.fragmentBytes);
      const json = frameToJson({ kind: 'data', stream: out.stream, seq, base: 0, part, parts, msg: { ...msg, body } });
      out.entries.set(seq, { json, resendAt: Infinity, resends: 0, posting: true, accepted: false });
    }
    try {
      for (const seq of seqs) {
        const entry = out.entries.get(seq);
        if (!entry) continue; // acknowledged already
        await this.post(msg.recipient, this.withBase(entry.json, out), `message ${msg.id} to ${msg.recipient}`, this.retry);
        entry.posting = false;
        entry.accepted = true;
        entry.resendAt = Date.now() + this.ackTimeoutMs;
      }
    } catch (e) {
      for (const seq of seqs) out.entries.delete(seq);
      throw e;
    }
  }

  async announce(info: ParticipantInfo): Promise<void> {
    this.assertOpen('announce');
    checkParticipant(info);
    const self = await this.self();
    if (info.nodeId !== self.nodeId) throw new BadRequestError(`broker announce: ${info.nodeId} is not this node (${self.nodeId})`);
    this.table.set(info.nodeId, { ...info });
    const others = (await this.brokerParticipants()).filter((p) => p.nodeId !== self.nodeId);
    const deadline = Date.now() + this.announceWaitMs;
    await Promise.all(
      others.map(async (p) => {
        const nonce = randomBytes(12).toString('hex');
        const confirmed = this.waitFor(`announce_ack:${p.nodeId}:${nonce}`, deadline - Date.now());
        try {
          await this.sendControl({ kind: 'announce', sender: self.nodeId, recipient: p.nodeId, nonce, participant: info }, deadline - Date.now());
        } catch (e) {
          this.options.logger?.debug('announcement not sent', { to: p.nodeId, error: e });
        }
        await confirmed;
      }),
    );
  }

  async participants(): Promise<ParticipantInfo[]> {
    this.assertOpen('participants');
    await this.self();
    return [...this.table.values()].map((p) => ({ ...p, ...(p.keys ? { keys: { ...p.keys } } : {}) })).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** The analysis' nodes as the broker lists them (`GET …/participants`). */
  async brokerParticipants(): Promise<FlameNodeSelf[]> {
    const res = await this.call('GET', '/participants');
    await expectStatus(res, [200], `message broker GET participants of analysis ${this.options.analysisId}`);
    const json = await readJson(res, 1024 * 1024, 'message broker participants');
    if (!Array.isArray(json) || json.length > 10_000) throw new FlameError('message broker participants: expected a list');
    return json.map((p: Record<string, unknown>) => ({
      nodeId: checkBrokerId('participants nodeId', p?.nodeId),
      nodeType: p.nodeType === 'aggregator' ? 'aggregator' : 'default',
    }));
  }

  /**
   * Tells `recipient` where an object for it lies in the storage service, and resolves once it
   * confirmed (sent again every ack timeout until `timeoutMs`). Messages that refer to the object are
   * sent only after this, so the recipient always knows it first.
   */
  async shareObject(recipient: string, object: SharedObject, timeoutMs = 60_000): Promise<void> {
    this.assertOpen('shareObject');
    const self = await this.self();
    const nonce = randomBytes(12).toString('hex');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !this.closed) {
      const confirmed = this.waitFor(`object_ack:${recipient}:${nonce}`, Math.min(this.ackTimeoutMs, deadline - Date.now()));
      await this.sendControl({ kind: 'object', sender: self.nodeId, recipient, nonce, object }).catch((e) => this.options.logger?.debug('object notice not sent', { to: recipient, error: e }));
      if (await confirmed) return;
    }
    throw new TimeoutError(`broker shareObject ${object.key}: ${recipient} did not confirm within ${timeoutMs} ms`);
  }

  /** Where the object `key` another node shared with this one lies, if it did. */
  sharedObject(key: string): SharedObject | undefined {
    return this.shared.get(key);
  }

  async ping(nodeId: string, timeoutMs: number): Promise<boolean> {
    this.assertOpen('ping');
    checkBrokerId('ping nodeId', nodeId);
    if (!(timeoutMs > 0)) throw new BadRequestError(`broker ping(${nodeId}) timeoutMs: expected > 0, got ${timeoutMs}`);
    const self = await this.self();
    const nonce = randomBytes(12).toString('hex');
    const answered = this.waitFor(`pong:${nodeId}:${nonce}`, timeoutMs);
    this.sendControl({ kind: 'ping', sender: self.nodeId, recipient: nodeId, nonce }, timeoutMs).catch(() => undefined);
    return answered;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.resendTimer) clearInterval(this.resendTimer);
    for (const wake of this.wakers.values()) wake();
    const grace = new Promise<'late'>((r) => setTimeout(() => r('late'), CLOSE_GRACE_MS).unref());
    if ((await Promise.race([Promise.all(this.consumers), grace])) === 'late') this.abandoned = true;
    await this.flushAcks();
    for (const w of this.waiting.values()) w();
    this.options.server.unroute('POST', '/webhook');
    if (this.subscriptionId && this.connecting) {
      try {
        const res = await this.call('DELETE', `/messages/subscriptions/${encodeURIComponent(this.subscriptionId)}`);
        res.body.resume();
      } catch (e) {
        this.options.logger?.warn('could not remove the webhook subscription', { error: e });
      }
    }
  }

  // ——— sending ———

  private outStream(recipient: string): OutStream {
    let s = this.out.get(recipient);
    if (!s) {
      s = { stream: randomBytes(12).toString('hex'), nextSeq: 1, entries: new Map() };
      this.out.set(recipient, s);
    }
    return s;
  }

  /** The frame with the stream's current base: the lowest seq still kept. */
  private withBase(json: Record<string, unknown>, out: OutStream): Record<string, unknown> {
    let base = out.nextSeq;
    for (const seq of out.entries.keys()) base = Math.min(base, seq);
    return { ...json, flame_sdk: { ...(json.flame_sdk as object), base } };
  }

  private resendDue(): void {
    const now = Date.now();
    for (const [recipient, out] of this.out) {
      for (const [seq, entry] of [...out.entries].sort((a, b) => a[0] - b[0])) {
        if (entry.posting || !entry.accepted || entry.resendAt > now) continue;
        entry.posting = true;
        entry.resends += 1;
        this.post(recipient, this.withBase(entry.json, out), `resend ${seq} to ${recipient}`, { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 })
          .catch((e) => this.options.logger?.debug('resend failed', { to: recipient, error: e }))
          .finally(() => {
            entry.posting = false;
            entry.resendAt = Date.now() + Math.min(this.maxResendMs, this.ackTimeoutMs * 2 ** entry.resends);
          });
      }
    }
  }

  private async sendControl(frame: ControlFrame, timeoutMs = this.requestTimeoutMs): Promise<void> {
    const budget = Math.max(50, Math.min(this.requestTimeoutMs, timeoutMs));
    await this.post(frame.recipient, frameToJson(frame), `${frame.kind} to ${frame.recipient}`, { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 }, budget);
  }

  private async post(recipient: string, message: Record<string, unknown>, what: string, policy: RetryPolicy, timeoutMs = this.requestTimeoutMs): Promise<void> {
    const res = await requestWithRetries(
      this.http,
      () => ({
        method: 'POST',
        url: `${this.base}/messages`,
        headers: { ...this.options.token.authorization(), 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ recipients: [recipient], message }),
        timeoutMs,
      }),
      policy,
      (attempt, reason) => this.options.logger?.warn('message broker send failed, trying again', { what, attempt, reason }),
    );
    await expectStatus(res, [200, 201, 202, 204], `message broker send of ${what}`);
    res.body.resume();
  }

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, json?: unknown) {
    return requestWithRetries(
      this.http,
      () => ({
        method,
        url: `${this.base}${path}`,
        headers: {
          ...this.options.token.authorization(),
          accept: 'application/json',
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: json !== undefined ? JSON.stringify(json) : undefined,
        timeoutMs: this.requestTimeoutMs,
      }),
      this.retry,
    );
  }

  // ——— receiving ———

  private receive(body: Buffer): { status: number; json?: unknown } {
    if (this.closed || !this.selfInfo) return { status: 503, json: { detail: 'not accepting messages' } };
    const frame: Frame = parseFrame(parseJsonObject(body, 'webhook message'), this.limits);
    const self = this.selfInfo.nodeId;
    const recipient = frame.kind === 'data' ? frame.msg.recipient : frame.recipient;
    if (recipient !== self) {
      this.startOptions.onRefused?.({ sender: frame.kind === 'data' ? frame.msg.sender : frame.sender, reason: `addressed to ${recipient}, not ${self}` });
      return { status: 200, json: { ignored: true } };
    }
    switch (frame.kind) {
      case 'data':
        this.receiveData(frame);
        break;
      case 'ack':
        this.receiveAck(frame);
        break;
      case 'ping':
        if (this.handler) this.sendControl({ kind: 'pong', sender: self, recipient: frame.sender, nonce: frame.nonce }).catch(() => undefined);
        break;
      case 'object':
        // A node may only name objects below its own transfer folder.
        if (!frame.object.key.includes(`/transfers/${frame.sender}/`)) return { status: 400, json: { detail: 'object outside the sender\'s transfers' } };
        this.shared.set(frame.object.key, frame.object);
        if (this.shared.size > 100_000) this.shared.delete(this.shared.keys().next().value!);
        this.sendControl({ kind: 'object_ack', sender: self, recipient: frame.sender, nonce: frame.nonce }).catch(() => undefined);
        break;
      case 'pong':
      case 'announce_ack':
      case 'object_ack':
        this.waiting.get(`${frame.kind}:${frame.sender}:${frame.nonce}`)?.();
        break;
      case 'announce':
        this.table.set(frame.participant.nodeId, frame.participant);
        this.sendControl({ kind: 'announce_ack', sender: self, recipient: frame.sender, nonce: frame.nonce }).catch(() => undefined);
        break;
    }
    return { status: 200, json: { received: true } };
  }

  private receiveAck(frame: Extract<ControlFrame, { kind: 'ack' }>): void {
    const out = this.out.get(frame.sender);
    if (!out || out.stream !== frame.stream) return;
    for (const seq of frame.seqs) out.entries.delete(seq);
  }

  private receiveData(frame: DataFrame): void {
    const sender = frame.msg.sender;
    if (!this.handler) return; // not started: the sender sends it again
    const senders = this.startOptions.senders;
    if (senders && !senders.includes(sender)) return;
    const key = `${sender}\n${frame.stream}`;
    let s = this.inStreams.get(key);
    if (!s) {
      s = { sender, next: frame.base, buffer: new Map(), done: new Set(), taken: new Set(), lastActive: 0 };
      this.inStreams.set(key, s);
      this.forgetOldStreams();
    }
    s.lastActive = Date.now();
    if (frame.base > s.next) {
      s.next = frame.base;
      for (const seq of s.buffer.keys()) if (seq < frame.base) s.buffer.delete(seq);
      if (s.partial && s.partial.seqs[0] < frame.base) s.partial = undefined;
    }
    for (const seq of s.done) if (seq < frame.base) s.done.delete(seq);
    if (frame.seq < s.next) {
      if (s.done.has(frame.seq)) this.queueAck(sender, frame.stream, [frame.seq]);
      return;
    }
    if (s.buffer.size >= MAX_BUFFERED && !s.buffer.has(frame.seq)) return;
    s.buffer.set(frame.seq, frame);
    this.drain(s, frame.stream);
  }

  /** Moves the stream's in-order fragments into the sender's queue as whole messages. */
  private drain(s: InStream, stream: string): void {
    for (let f = s.buffer.get(s.next); f; f = s.buffer.get(s.next)) {
      s.buffer.delete(s.next);
      const seq = s.next++;
      if (f.parts === 1) {
        this.take(s, stream, f.msg, [seq]);
        continue;
      }
      if (f.part === 0) {
        s.partial = { id: f.msg.id, parts: f.parts, chunks: [f.msg.body], seqs: [seq], size: f.msg.body.byteLength };
      } else if (s.partial && s.partial.id === f.msg.id && s.partial.parts === f.parts && s.partial.chunks.length === f.part) {
        s.partial.chunks.push(f.msg.body);
        s.partial.seqs.push(seq);
        s.partial.size += f.msg.body.byteLength;
      } else {
        // A fragment out of place (a sender bug or a forgery): drop it, and let the sender forget it.
        this.startOptions.onRefused?.({ sender: s.sender, reason: `fragment ${f.part} of ${f.msg.id} out of place`, id: f.msg.id });
        s.done.add(seq);
        this.queueAck(s.sender, stream, [seq]);
        continue;
      }
      const p = s.partial;
      if (p.chunks.length === p.parts) {
        s.partial = undefined;
        this.take(s, stream, { ...f.msg, body: new Uint8Array(Buffer.concat(p.chunks)) }, p.seqs);
      }
    }
  }

  /** A whole message arrived: check it, drop duplicates, queue it for the handler. */
  private take(s: InStream, stream: string, msg: WireMessage, seqs: number[]): void {
    const finish = (): void => {
      for (const seq of seqs) s.done.add(seq);
      this.queueAck(s.sender, stream, seqs);
    };
    try {
      checkWireMessage(msg, this.maxPayload);
    } catch (e) {
      this.startOptions.onRefused?.({ sender: s.sender, reason: (e as Error).message, id: typeof msg.id === 'string' ? msg.id : undefined });
      finish();
      return;
    }
    if (this.recent.has(msg.id) || this.queuedIds.has(msg.id)) {
      finish();
      return;
    }
    for (const seq of seqs) s.taken.add(seq);
    this.queuedIds.add(msg.id);
    let q = this.queues.get(s.sender);
    if (!q) {
      q = [];
      this.queues.set(s.sender, q);
      this.consumers.push(this.consume(s.sender, q));
    }
    q.push({ msg, stream, seqs, attempts: 0, availableAt: 0, inFlight: false });
    this.wakers.get(s.sender)?.();
  }

  /** One sender's handler loop: in order, one at a time; a rejected message waits its delay aside. */
  private async consume(sender: string, q: InEntry[]): Promise<void> {
    await yieldToEventLoop();
    while (!this.closed) {
      const now = Date.now();
      const entry = q.find((e) => !e.inFlight && e.availableAt <= now);
      if (!entry) {
        const next = q.filter((e) => !e.inFlight).map((e) => e.availableAt);
        await new Promise<void>((resolve) => {
          const t = next.length > 0 ? setTimeout(resolve, Math.max(0, Math.min(...next) - now)) : undefined;
          this.wakers.set(sender, () => {
            if (t) clearTimeout(t);
            resolve();
          });
        });
        continue;
      }
      entry.inFlight = true;
      entry.attempts += 1;
      try {
        await this.handler!({ ...entry.msg, body: entry.msg.body.slice() }, { attempt: entry.attempts });
        if (this.abandoned) continue;
        q.splice(q.indexOf(entry), 1);
        this.queuedIds.delete(entry.msg.id);
        this.recent.add(entry.msg.id);
        const s = this.inStreams.get(`${sender}\n${entry.stream}`);
        for (const seq of entry.seqs) {
          s?.taken.delete(seq);
          s?.done.add(seq);
        }
        this.queueAck(sender, entry.stream, entry.seqs);
      } catch (e) {
        entry.availableAt = Date.now() + redeliveryDelayMs(entry.attempts, e);
      } finally {
        entry.inFlight = false;
      }
    }
  }

  private queueAck(sender: string, stream: string, seqs: number[]): void {
    const key = `${sender}\n${stream}`;
    const pending = this.pendingAcks.get(key) ?? { sender, stream, seqs: [] };
    pending.seqs.push(...seqs);
    this.pendingAcks.set(key, pending);
    this.ackTimer ??= setTimeout(() => void this.flushAcks(), 10);
  }

  /** Sends the gathered acknowledgements, one broker message per stream (lost ones are asked again by resends). */
  private async flushAcks(): Promise<void> {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const self = this.selfInfo?.nodeId;
    if (!self) return;
    const all = [...this.pendingAcks.values()];
    this.pendingAcks.clear();
    await Promise.all(
      all.flatMap((a) => {
        const sends: Promise<void>[] = [];
        for (let i = 0; i < a.seqs.length; i += this.limits.maxAckSeqs) {
          const seqs = a.seqs.slice(i, i + this.limits.maxAckSeqs);
          sends.push(this.sendControl({ kind: 'ack', sender: self, recipient: a.sender, stream: a.stream, seqs }).catch(() => undefined));
        }
        return sends;
      }),
    );
  }

  private forgetOldStreams(): void {
    if (this.inStreams.size <= MAX_IN_STREAMS) return;
    const oldest = [...this.inStreams].sort((a, b) => a[1].lastActive - b[1].lastActive);
    for (const [key, s] of oldest.slice(0, this.inStreams.size - MAX_IN_STREAMS)) {
      if (s.taken.size === 0) this.inStreams.delete(key);
    }
  }

  /** Resolves true when `key` is signalled within `ms`, else false. */
  private waitFor(key: string, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(key);
        resolve(false);
      }, Math.max(0, ms));
      this.waiting.set(key, () => {
        clearTimeout(t);
        this.waiting.delete(key);
        resolve(!this.closed);
      });
    });
  }

  private assertOpen(what: string): void {
    if (this.closed) throw new FlameError(`broker ${what}: the adapter is closed`);
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new BadRequestError(`flame-node broker ${name}: expected a whole number >= 1, got ${JSON.stringify(v)}`);
  return v;
}
