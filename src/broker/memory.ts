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
import type { BrokerAdapter, MessageHandler, ParticipantInfo, WireMessage } from './port.js';

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
  readonly queues = new Map<string, RecipientQueue>();
  readonly participants = new Map<string, ParticipantInfo>();
  /** Publish-side de-duplication, like JetStream's duplicate window. */
  readonly published = new RecentIds();
  /** Nodes whose adapter is started (they answer pings). */
  readonly started = new Set<string>();

  queue(nodeId: string): RecipientQueue {
    let q = this.queues.get(nodeId);
    if (!q) {
      q = new RecipientQueue();
      this.queues.set(nodeId, q);
    }
    return q;
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
    return hubStates.get(this)?.get(analysisId)?.queues.get(nodeId)?.entries.length ?? 0;
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
  private consumer: Promise<void> | undefined;
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

  async start(nodeId: string, handler: MessageHandler): Promise<void> {
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
    this.consumer = this.consume(this.state.queue(nodeId), handler);
  }

  private async consume(queue: RecipientQueue, handler: MessageHandler): Promise<void> {
    // Delivery is asynchronous: never call the handler inside start() or publish().
    await new Promise((r) => setImmediate(r));
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
        await handler({ ...entry.msg, body: entry.msg.body.slice() });
        if (!this.abandoned) queue.remove(entry);
      } catch {
        entry.availableAt = Date.now() + redeliveryDelayMs(entry.attempts);
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
    this.state.queue(msg.recipient).push({ ...msg, body: msg.body.slice() });
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

  async ping(nodeId: string, timeoutMs: number): Promise<boolean> {
    this.assertOpen('ping');
    checkBrokerId('ping nodeId', nodeId);
    if (!(timeoutMs > 0)) throw new BadRequestError(`broker ping(${nodeId}) timeoutMs: expected > 0, got ${timeoutMs}`);
    // Answer asynchronously, as a network round trip would.
    await new Promise((r) => setImmediate(r));
    return this.state.started.has(nodeId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    if (this.nodeId !== undefined) {
      this.state.started.delete(this.nodeId);
      this.state.queue(this.nodeId).wake();
    }
    if (this.consumer) {
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        this.consumer.then(() => true),
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
