/**
 * The embedded broker: an in-process stand-in for NATS JetStream, used by the simulator and by
 * default when no NATS server is configured. It keeps the same guarantees as the NATS adapter
 * (durable per-recipient queues until acknowledged, de-duplication by message id, redelivery after
 * a rejected handler, a 1 MiB default payload limit) so that code tested here behaves the same on NATS.
 */
import { BadRequestError, ConflictError } from '../errors.js';
import {
  CLOSE_GRACE_MS,
  RecentIds,
  checkBrokerId,
  checkParticipant,
  checkWireMessage,
  redeliveryDelayMs,
} from './delivery.js';
import type { BrokerAdapter, MessageHandler, ParticipantInfo, StartOptions, WireMessage } from './port.js';
import { yieldToEventLoop } from '../liveness.js';

/** Same default as a NATS server's max_payload, so the SDK's large-payload path runs in simulations too. */
export const MEMORY_DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** A stored message waiting for its recipient's acknowledgement. */
interface QueueEntry {
  msg: WireMessage;
  attempts: number;
  /** Epoch ms before which the entry is not offered (backoff after a rejection). */
  availableAt: number;
  inFlight: boolean;
}

/** One recipient's durable queue; the running consumer sleeps on `wake`. */
class RecipientQueue {
  readonly entries: QueueEntry[] = [];
  private waiter: (() => void) | undefined;

  push(msg: WireMessage): void {
    this.entries.push({ msg, attempts: 0, availableAt: 0, inFlight: false });
    this.wake();
  }

  /** First entry, in publish order, that may be offered now. */
  next(now: number): QueueEntry | undefined {
    return this.entries.find((e) => !e.inFlight && e.availableAt <= now);
  }

  remove(entry: QueueEntry): void {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
  }

  /** Resolves on the next push or wake(), or when the earliest backed-off entry becomes available. */
  wait(now: number): Promise<void> {
    const pending = this.entries.filter((e) => !e.inFlight).map((e) => e.availableAt);
    const delay = pending.length > 0 ? Math.max(0, Math.min(...pending) - now) : undefined;
    return new Promise((resolve) => {
      const timer = delay === undefined ? undefined : setTimeout(() => this.wake(), delay);
      this.waiter = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/** Everything the hub keeps for one analysis. */
class AnalysisState {
  /** recipient → sender → that sender's queue of messages to the recipient. */
  readonly queues = new Map<string, Map<string, RecipientQueue>>();
  readonly participants = new Map<string, ParticipantInfo>();
  /** Publish-side de-duplication, like JetStream's duplicate window. */
  readonly published = new RecentIds();
  /** Nodes whose adapter is started (they answer pings). */
  readonly started = new Set<string>();
  /** Started consumers, told when a queue for their node appears. */
  readonly listeners = new Map<string, (sender: string, q: RecipientQueue) => void>();
  /** What an operator published on the broker (the roster). */
  roster: string | undefined;

  queue(recipient: string, sender: string): RecipientQueue {
    let bySender = this.queues.get(recipient);
    if (!bySender) {
      bySender = new Map();
      this.queues.set(recipient, bySender);
    }
    let q = bySender.get(sender);
    if (!q) {
      q = new RecipientQueue();
      bySender.set(sender, q);
      this.listeners.get(recipient)?.(sender, q);
    }
    return q;
  }

  pending(recipient: string): number {
    let n = 0;
    for (const q of this.queues.get(recipient)?.values() ?? []) n += q.entries.length;
    return n;
  }
}

/**
 * The in-process "server" shared by all simulated nodes of one process. Create one and hand it to
 * every node's {@link MemoryBrokerAdapter}; state is kept per analysis id.
 */
export class MemoryBrokerHub {
  constructor() {
    hubStates.set(this, new Map());
  }

  /** Number of messages stored for `nodeId` and not yet acknowledged (for tests and diagnostics). */
  pendingCount(analysisId: string, nodeId: string): number {
    return hubStates.get(this)?.get(analysisId)?.pending(nodeId) ?? 0;
  }

  /** Publishes a roster for `analysisId` as an operator would (nodes read it with an operator key configured). */
  publishRoster(analysisId: string, rosterJson: string): void {
    analysisState(this, analysisId).roster = rosterJson;
  }

  /** Forgets everything kept for `analysisId` (messages, participants); started adapters keep running. */
  purgeAnalysis(analysisId: string): void {
    hubStates.get(this)?.delete(analysisId);
  }
}

/** Hub internals, kept out of the hub's public (documented) surface. */
const hubStates = new WeakMap<MemoryBrokerHub, Map<string, AnalysisState>>();

/** State of one analysis in `hub`, created on first use. */
function analysisState(hub: MemoryBrokerHub, analysisId: string): AnalysisState {
  const analyses = hubStates.get(hub);
  if (!analyses) throw new BadRequestError('broker hub: expected a MemoryBrokerHub instance');
  let a = analyses.get(analysisId);
  if (!a) {
    a = new AnalysisState();
    analyses.set(analysisId, a);
  }
  return a;
}

/** Options of {@link MemoryBrokerAdapter}. */
export interface MemoryBrokerOptions {
  /** Largest inline body in bytes; default 1 MiB (`MEMORY_DEFAULT_MAX_PAYLOAD`, a NATS server's default max_payload). */
  maxPayload?: number;
}

/**
 * One node's connection to a {@link MemoryBrokerHub}. Messages are delivered asynchronously, one at
 * a time, in publish order; the handler is awaited before the message is acknowledged.
 */
export class MemoryBrokerAdapter implements BrokerAdapter {
  /** Largest body carried inline, in bytes. */
  readonly maxPayload: number;
  private readonly state: AnalysisState;
  private nodeId: string | undefined;
  private readonly consumers: Promise<void>[] = [];
  private stopping = false;
  /** Set when close() gave up waiting: a late handler result must not acknowledge its message. */
  private abandoned = false;
  private closed = false;

  /**
   * @param hub the shared in-process hub
   * @param analysisId the analysis whose queues and participants this adapter uses
   */
  constructor(
    hub: MemoryBrokerHub,
    private readonly analysisId: string,
    options: MemoryBrokerOptions = {},
  ) {
    checkBrokerId('analysisId', analysisId);
    const max = options.maxPayload ?? MEMORY_DEFAULT_MAX_PAYLOAD;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new BadRequestError(`broker maxPayload: expected a whole number of bytes >= 1, got ${JSON.stringify(max)}`);
    }
    this.maxPayload = max;
    this.state = analysisState(hub, analysisId);
  }

  async start(nodeId: string, handler: MessageHandler, options: StartOptions = {}): Promise<void> {
    this.assertOpen('start');
    checkBrokerId('nodeId', nodeId);
    if (this.nodeId !== undefined) {
      throw new BadRequestError(`broker start(${nodeId}): this adapter already consumes for node ${this.nodeId}`);
    }
    if (this.state.started.has(nodeId)) {
      throw new ConflictError(`broker start(${nodeId}): node ${nodeId} of analysis ${this.analysisId} is already consuming in this process`);
    }
    this.nodeId = nodeId;
    this.state.started.add(nodeId);
    const senders = options.senders === undefined ? undefined : new Set(options.senders);
    // One consumer per sender, as on NATS: one sender's backlog never holds up another's.
    const follow = (sender: string, q: RecipientQueue): void => {
      if (senders && !senders.has(sender)) return;
      this.consumers.push(this.consume(q, handler));
    };
    this.state.listeners.set(nodeId, follow);
    for (const [sender, q] of this.state.queues.get(nodeId) ?? []) follow(sender, q);
  }

  private async consume(queue: RecipientQueue, handler: MessageHandler): Promise<void> {
    // Delivery is asynchronous: never call the handler inside start() or publish().
    await yieldToEventLoop();
    while (!this.stopping) {
      const now = Date.now();
      const entry = queue.next(now);
      if (!entry) {
        await queue.wait(now);
        continue;
      }
      entry.inFlight = true;
      entry.attempts += 1;
      try {
        // A copy, so a handler that mutates the message cannot alter a later redelivery.
        await handler({ ...entry.msg, body: entry.msg.body.slice() }, { attempt: entry.attempts });
        if (!this.abandoned) queue.remove(entry);
      } catch (e) {
        entry.availableAt = Date.now() + redeliveryDelayMs(entry.attempts, e);
      } finally {
        entry.inFlight = false;
        // A consumer started after an abandoned close() may be waiting for this entry.
        if (this.abandoned) queue.wake();
      }
    }
  }

  async publish(msg: WireMessage): Promise<void> {
    this.assertOpen('publish');
    checkWireMessage(msg, this.maxPayload);
    if (this.state.published.has(msg.id)) return;
    this.state.published.add(msg.id);
    // Store a copy: the sender may reuse its buffer after publish resolves.
    this.state.queue(msg.recipient, msg.sender).push({ ...msg, body: msg.body.slice() });
  }

  async announce(info: ParticipantInfo): Promise<void> {
    this.assertOpen('announce');
    checkParticipant(info);
    this.state.participants.set(info.nodeId, { ...info });
  }

  async participants(): Promise<ParticipantInfo[]> {
    this.assertOpen('participants');
    return [...this.state.participants.values()]
      .map((p) => ({ ...p }))
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** The roster an operator published with {@link MemoryBrokerHub.publishRoster}, if any. */
  async roster(): Promise<string | undefined> {
    this.assertOpen('roster');
    return this.state.roster;
  }

  async ping(nodeId: string, timeoutMs: number): Promise<boolean> {
    this.assertOpen('ping');
    checkBrokerId('ping nodeId', nodeId);
    if (!(timeoutMs > 0)) throw new BadRequestError(`broker ping(${nodeId}) timeoutMs: expected > 0, got ${timeoutMs}`);
    // Answer asynchronously, as a network round trip would.
    await yieldToEventLoop();
    return this.state.started.has(nodeId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    if (this.nodeId !== undefined) {
      this.state.started.delete(this.nodeId);
      this.state.listeners.delete(this.nodeId);
      for (const q of this.state.queues.get(this.nodeId)?.values() ?? []) q.wake();
    }
    if (this.consumers.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.all(this.consumers).then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (!finished) this.abandoned = true;
    }
  }

  private assertOpen(op: string): void {
    if (this.closed) {
      throw new BadRequestError(`broker ${op}: the adapter of analysis ${this.analysisId}${this.nodeId ? ` (node ${this.nodeId})` : ''} is closed`);
    }
  }
}
