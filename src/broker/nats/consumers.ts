/**
 * A node's inbox on NATS JetStream: one durable pull consumer per sender, so one sender's backlog
 * never holds up another's, and one receive loop per sender that hands its messages to the handler
 * in order. The handler is awaited before the ack, a rejected handler means a nak with backoff, and
 * ids seen recently are acknowledged without calling it again.
 */
import { AckPolicy, DeliverPolicy, nanos, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from 'nats';
import type { Logger } from '../../logger.js';
import { CLOSE_GRACE_MS, RecentIds, redeliveryDelayMs } from '../delivery.js';
import type { MessageHandler, StartOptions } from '../port.js';
import { waitAtMost } from './connection.js';
import { jsErrorCode, JS_CONSUMER_EXISTS, JS_CONSUMER_NAME_IN_USE, JS_CONSUMER_NOT_FOUND } from './errors.js';
import type { AnalysisNames } from './names.js';
import { decodeMessage } from './wire.js';

/** Unacknowledged messages are redelivered after this long; long handlers extend it. */
const ACK_WAIT_MS = 30_000;

/** Message counts of an adapter, for diagnostics and tests. */
export interface NatsAdapterStats {
  /** Messages refused before the handler: malformed, or headers naming another sender than the subject. */
  refused: number;
}

/** One sender's flow into this node: its consumer and the messages fetched but not yet handled. */
interface SenderFlow {
  sender: string;
  messages: ConsumerMessages;
  queue: JsMsg[];
  /** The message its handler is working on. */
  handling?: JsMsg;
  wake?: () => void;
  loop?: Promise<void>;
}

/** The per-sender consumers of one node's inbox and their receive loops. */
export class InboxConsumers {
  private readonly flows: SenderFlow[] = [];
  private readonly seen = new RecentIds();
  private stopping = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: AnalysisNames,
    private readonly stats: NatsAdapterStats,
    private readonly log: Logger | undefined,
  ) {}

  /** Makes (or takes over) the durable of every sender and starts fetching; nothing is handled yet. */
  async open(nodeId: string, senders: string[]): Promise<void> {
    for (const sender of senders) {
      await this.ensureConsumer(nodeId, sender);
      const consumer = await this.js.consumers.get(this.names.stream, this.names.durable(nodeId, sender));
      const flow: SenderFlow = { sender, queue: [], messages: undefined as unknown as ConsumerMessages };
      // Callback mode fills our own queue, so close() can nak whatever was fetched but not handled.
      flow.messages = await consumer.consume({
        // Bounded prefetch: a held-back sender's messages wait on the server, not in this process.
        max_messages: 64,
        callback: (m) => {
          flow.queue.push(m);
          const w = flow.wake;
          flow.wake = undefined;
          w?.();
        },
      });
      this.flows.push(flow);
    }
  }

  /** Stops fetching for the senders opened so far (a start that failed, so it may be tried again). */
  async discard(): Promise<void> {
    for (const f of this.flows.splice(0)) await f.messages.close().catch(() => undefined);
  }

  /** Starts the receive loops, and the timer that keeps long-handled messages from being redelivered. */
  run(handler: MessageHandler, onRefused: StartOptions['onRefused']): void {
    for (const f of this.flows) f.loop = this.handleLoop(f, handler, onRefused);
    this.keepAlive = setInterval(() => {
      for (const f of this.flows) if (f.handling) settle(() => f.handling!.working());
    }, ACK_WAIT_MS / 3);
    this.keepAlive.unref();
  }

  /** Ends the receive loops, waiting up to the close grace for the handlers at work. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    for (const f of this.flows) {
      const w = f.wake;
      f.wake = undefined;
      w?.();
    }
    await waitAtMost(Promise.all(this.flows.map((f) => f.loop)), CLOSE_GRACE_MS);
  }

  /** Stops fetching and gives back what was fetched but not handled. */
  async release(): Promise<void> {
    for (const f of this.flows) {
      try {
        await f.messages.close();
      } catch {
        // already stopped
      }
      // Fetched but unhandled messages go back to the server at once, not after ack_wait.
      for (const m of f.queue.splice(0)) settle(() => m.nak());
    }
  }

  private async ensureConsumer(nodeId: string, sender: string): Promise<void> {
    const config = {
      durable_name: this.names.durable(nodeId, sender),
      filter_subject: this.names.inbox(nodeId, sender),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: 1000,
    };
    // An existing durable means this node ran before. Messages it had been handed but not acknowledged
    // (it was killed) would come back only after ack_wait; made anew, the durable hands them over at
    // once (work-queue retention keeps every unacknowledged message in the stream). Adding a consumer
    // whose config is unchanged succeeds, so look first.
    const info = await this.jsm.consumers.info(this.names.stream, config.durable_name).catch((e: unknown) => {
      if (jsErrorCode(e) === JS_CONSUMER_NOT_FOUND) return undefined;
      throw e;
    });
    if (info && info.num_ack_pending > 0) {
      await this.jsm.consumers.delete(this.names.stream, config.durable_name);
    }
    try {
      await this.jsm.consumers.add(this.names.stream, config);
    } catch (e) {
      // Another start of this node made it in between: use it as it is.
      const code = jsErrorCode(e);
      if (code !== JS_CONSUMER_EXISTS && code !== JS_CONSUMER_NAME_IN_USE) throw e;
    }
    if (info && info.num_ack_pending > 0) {
      this.log?.info('took over messages an earlier run of this node had not acknowledged', { sender, pending: info.num_ack_pending });
    }
  }

  /** Handles one sender's messages one at a time in order; acks after the handler resolves, naks on rejection. */
  private async handleLoop(flow: SenderFlow, handler: MessageHandler, onRefused: StartOptions['onRefused']): Promise<void> {
    while (!this.stopping) {
      const m = flow.queue.shift();
      if (!m) {
        await new Promise<void>((r) => (flow.wake = r));
        continue;
      }
      const msg = decodeMessage(m);
      if (typeof msg === 'string') {
        // Not a message of ours, or headers naming another sender than the login that published it.
        this.stats.refused++;
        onRefused?.({ sender: flow.sender, reason: msg });
        settle(() => m.term());
        continue;
      }
      if (this.seen.has(msg.id)) {
        settle(() => m.ack());
        continue;
      }
      // Long handlers keep the message theirs instead of letting ack_wait redeliver it meanwhile
      // (one timer for all flows: see run).
      flow.handling = m;
      try {
        await handler(msg, { attempt: m.info.redeliveryCount });
        this.seen.add(msg.id);
        settle(() => m.ack());
      } catch (e) {
        settle(() => m.nak(redeliveryDelayMs(m.info.redeliveryCount, e)));
      } finally {
        flow.handling = undefined;
      }
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
