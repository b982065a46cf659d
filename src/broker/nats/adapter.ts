/**
 * The Broker port on NATS JetStream. One stream per analysis holds every (recipient, sender) subject
 * until the recipient acknowledges; a node consumes its inbox through one durable pull consumer per
 * sender, so one sender's backlog never holds up another's (consumers.ts); participant records live
 * in a KV bucket without rollups; pings are core NATS request/reply. The connection, its options and
 * its reconnect watch are in connection.ts.
 *
 * Delivery guarantees match the in-memory adapter: the handler is awaited before the ack, a rejected
 * handler means a nak with backoff, and ids are de-duplicated by JetStream's duplicate window on
 * publish (`Nats-Msg-Id`) and by a recent-ids set on the consumer side.
 *
 * The adapter provisions nothing unless asked: the aggregator (`provision: 'create'`) or an operator
 * creates the streams, every node checks their config first (provision.ts).
 */
import { headers, Empty, ErrorCode, connect, type JetStreamClient, type JetStreamManager, type KV, type NatsConnection, type Subscription } from 'nats';
import { BadRequestError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { checkBrokerId, checkParticipant, checkWireMessage } from '../delivery.js';
import type { BrokerAdapter, MessageHandler, ParticipantInfo, StartOptions, WireMessage } from '../port.js';
import { NATS_HEADER_MARGIN, openConnection, payloadOf, waitAtMost, watchReconnects, type NatsBrokerOptions } from './connection.js';
import { InboxConsumers, type NatsAdapterStats } from './consumers.js';
import { isTransient, jsErrorCode, JS_STREAM_NOT_FOUND, toFlameError } from './errors.js';
import { analysisNames, type AnalysisNames } from './names.js';
import { awaitProvisioning, KV_MAX_VALUE_BYTES, provisionAnalysis, verifyAnalysis } from './provision.js';
import { encodeWire } from '../wire.js';
import { PubAckMux } from './puback.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A BrokerAdapter on a NATS server with JetStream. Create it with {@link NatsBrokerAdapter.connect}. */
export class NatsBrokerAdapter implements BrokerAdapter {
  /** Largest body carried inline: the server's max_payload minus 4096 bytes kept for headers (`NATS_HEADER_MARGIN`). */
  readonly maxPayload: number;
  /** Counts of refused messages. */
  readonly stats: NatsAdapterStats = { refused: 0 };
  private readonly names: AnalysisNames;
  private nodeId: string | undefined;
  private pingSub: Subscription | undefined;
  private readonly inbox: InboxConsumers;
  private closed = false;
  /** Rejecters of the publishes in flight, called when the client reconnects (see retrying). */
  private readonly inFlight = new Set<() => void>();
  private readonly pubAcks: PubAckMux;

  private constructor(
    private readonly nc: NatsConnection,
    js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly analysisId: string,
    private readonly participantIds: string[],
    private readonly publishTimeoutMs: number,
    private readonly log: Logger | undefined,
    inboxPrefix: string | undefined,
  ) {
    this.names = analysisNames(analysisId);
    this.maxPayload = payloadOf(nc);
    this.inbox = new InboxConsumers(js, jsm, this.names, this.stats, log);
    this.pubAcks = new PubAckMux(nc, inboxPrefix);
    void watchReconnects(nc, this.inFlight, this.pubAcks);
  }

  /**
   * Connects, provisions or checks the analysis' streams (see `provision`), and binds the
   * participants bucket. The connection reconnects forever after a loss; a first connection that fails throws.
   */
  static async connect(opts: NatsBrokerOptions): Promise<NatsBrokerAdapter> {
    const { nc, names, analysisId } = await openConnection(opts);
    (opts.participants ?? []).forEach((p, i) => checkBrokerId(`participants[${i}]`, p));
    try {
      const jsm = await nc.jetstreamManager();
      const need = payloadOf(nc) + NATS_HEADER_MARGIN;
      const mode = opts.provision ?? 'verify';
      if (mode === 'create') await provisionAnalysis(jsm, names, need, opts.provisionOptions);
      else if (mode === 'verify') {
        await awaitProvisioning(jsm, names, need, { timeoutMs: opts.provisionTimeoutMs ?? 120_000, log: opts.log });
      }
      const js = nc.jetstream();
      const kv = await js.views.kv(names.bucket, { bindOnly: true, allow_direct: true });
      const inboxPrefix = opts.nodeId !== undefined ? names.replyPrefix(opts.nodeId) : undefined;
      return new NatsBrokerAdapter(nc, js, jsm, kv, analysisId, opts.participants ?? [], opts.publishTimeoutMs ?? 60_000, opts.log, inboxPrefix);
    } catch (e) {
      await nc.close().catch(() => undefined);
      if (e instanceof Error && 'kind' in e) throw e;
      throw toFlameError(`broker: cannot set up JetStream for analysis ${analysisId} on ${opts.servers.join(', ')}`, e);
    }
  }

  /**
   * Creates the analysis' streams with the config every node checks (for operators, with an admin
   * login; `flame analysis provision`). Streams that exist are checked, not changed.
   */
  static async provision(opts: Omit<NatsBrokerOptions, 'provision'>): Promise<void> {
    const { nc, names } = await openConnection(opts);
    try {
      const jsm = await nc.jetstreamManager();
      await provisionAnalysis(jsm, names, payloadOf(nc) + NATS_HEADER_MARGIN, opts.provisionOptions);
    } catch (e) {
      if (e instanceof Error && 'kind' in e) throw e;
      throw toFlameError(`broker: cannot provision analysis ${opts.analysisId}`, e);
    } finally {
      await nc.close();
    }
  }

  /** Writes a roster document into the participants bucket (operators; nodes may only read it). */
  static async publishRoster(opts: Omit<NatsBrokerOptions, 'provision'>, rosterJson: string): Promise<void> {
    if (Buffer.byteLength(rosterJson) > KV_MAX_VALUE_BYTES) throw new BadRequestError(`roster: larger than ${KV_MAX_VALUE_BYTES} bytes`);
    const { nc, names } = await openConnection(opts);
    try {
      const kv = await nc.jetstream().views.kv(names.bucket, { bindOnly: true, allow_direct: true });
      await kv.put(names.rosterKey, Buffer.from(rosterJson, 'utf8'));
    } catch (e) {
      throw toFlameError(`broker: cannot publish the roster of analysis ${opts.analysisId}`, e);
    } finally {
      await nc.close();
    }
  }

  /**
   * Deletes the analysis' streams (all undelivered messages, all consumers, participant records).
   * For tests and for operators cleaning up after an analysis; missing resources are ignored.
   */
  static async purgeAnalysis(opts: Omit<NatsBrokerOptions, 'nodeId'>): Promise<void> {
    const names = analysisNames(checkBrokerId('analysisId', opts.analysisId));
    const nc = await connect({ servers: opts.servers, user: opts.user, pass: opts.pass, token: opts.token, timeout: 5000 });
    try {
      const jsm = await nc.jetstreamManager();
      for (const stream of [names.stream, names.kvStream]) {
        try {
          await jsm.streams.delete(stream);
        } catch (e) {
          if (jsErrorCode(e) !== JS_STREAM_NOT_FOUND) throw toFlameError(`broker: cannot delete stream ${stream}`, e);
        }
      }
    } finally {
      await nc.close();
    }
  }

  /** Checks the streams' config again (a node does it at connect; call it to re-check later). */
  async verifyProvisioning(): Promise<void> {
    await verifyAnalysis(this.jsm, this.names, this.maxPayload + NATS_HEADER_MARGIN);
  }

  async start(nodeId: string, handler: MessageHandler, options: StartOptions = {}): Promise<void> {
    this.assertOpen('start');
    checkBrokerId('nodeId', nodeId);
    if (this.nodeId !== undefined) {
      throw new BadRequestError(`broker start(${nodeId}): this adapter already consumes for node ${this.nodeId}`);
    }
    const senders = options.senders ?? this.participantIds;
    if (senders.length === 0) throw new BadRequestError(`broker start(${nodeId}): no senders known (pass participants to connect, or senders to start)`);
    senders.forEach((s, i) => checkBrokerId(`senders[${i}]`, s));
    this.nodeId = nodeId;
    try {
      await this.inbox.open(nodeId, senders);
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
      await this.inbox.discard();
      throw toFlameError(`broker start(${nodeId}): cannot consume the inbox of node ${nodeId} in analysis ${this.analysisId}`, e);
    }
    this.inbox.run(handler, options.onRefused);
  }

  async publish(msg: WireMessage): Promise<void> {
    this.assertOpen('publish');
    checkWireMessage(msg, this.maxPayload);
    const payload = encodeWire(msg);
    const subject = this.names.inbox(msg.recipient, msg.sender);
    await this.retrying(`broker publish of message ${msg.id} to ${msg.recipient}`, () => {
      // As js.publish sets them: the id de-duplicates a retried publish, the stream name guards the subject.
      const h = headers();
      h.set('Nats-Msg-Id', msg.id);
      h.set('Nats-Expected-Stream', this.names.stream);
      return this.pubAcks.publish(subject, payload, h, 5000);
    });
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
      const out: ParticipantInfo[] = [];
      for (const id of this.participantIds) {
        const e = await this.kv.get(this.names.participantKey(id));
        if (!e || e.operation !== 'PUT' || e.value.length === 0 || e.value.length > KV_MAX_VALUE_BYTES) continue;
        try {
          const info = JSON.parse(new TextDecoder().decode(e.value)) as ParticipantInfo;
          checkParticipant(info);
          if (info.nodeId !== id) continue; // a record under another node's key is not that node's
          out.push(info);
        } catch {
          this.log?.warn('skipped a malformed participant record', { peer: id });
        }
      }
      return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    });
  }

  /** The roster the operator published in the participants bucket, if any. */
  async roster(): Promise<string | undefined> {
    this.assertOpen('roster');
    const e = await this.retrying('broker roster', () => this.kv.get(this.names.rosterKey));
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return new TextDecoder().decode(e.value);
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
    try {
      this.pingSub?.unsubscribe();
    } catch {
      // the connection may already be gone
    }
    await this.inbox.stop();
    this.pubAcks.close();
    await this.inbox.release();
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
        if (!isTransient(e) || Date.now() >= deadline) throw toFlameError(what, e);
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
