/**
 * The Broker port: what FlameSDK needs from a message broker. Adapters move opaque bytes;
 * encoding, encryption and the large-payload detour through storage happen above them, in the SDK.
 */

/** One message on the wire. `body` is the codec-encoded (possibly encrypted) payload. */
export interface WireMessage {
  /** Unique id; adapters de-duplicate by it. */
  id: string;
  /** Node id of the sender. */
  sender: string;
  /** Node id of the receiver. */
  recipient: string;
  /** Free-form routing tag (`message`, `intermediate_result`, `response`, `star.round` …). */
  category: string;
  /** ISO-8601 time of sending. */
  time: string;
  /** Per-sender sequence number, starting at 1. */
  message_number: number;
  /** Id of the message this one answers, if any. */
  reply_to?: string;
  /** The sender's session: a random id per sender process run; numbers count up within it. */
  session?: string;
  /** The sender's authentication tag over every field and the body (see trust/message-auth.ts). */
  auth?: string;
  /** The payload, opaque to the adapter. */
  body: Uint8Array;
}

/** What a node announces about itself. */
export interface ParticipantInfo {
  /** The node's id. */
  nodeId: string;
  /** Its role in the analysis. */
  role: 'aggregator' | 'analyzer';
  /** The node's public keys as it announces them (trusted only under first-use trust; a roster rules otherwise). */
  keys?: {
    /** Key id of the set. */
    kid: string;
    /** X25519 public key, base64 SPKI DER. */
    box: string;
    /** Ed25519 public key, base64 SPKI DER. */
    sign: string;
  };
  /** ISO-8601 time of the last heartbeat. */
  lastSeen: string;
  /** True once the node has closed cleanly. */
  closed?: boolean;
}

/** What an adapter tells the handler about a delivery. */
export interface DeliveryInfo {
  /** 1 on the first delivery, counting up with each redelivery. */
  attempt: number;
}

/**
 * Called for each delivered message. The adapter acknowledges the message only after the promise
 * resolves; a rejected promise (or a crash before resolution) means the message is delivered again,
 * after the rejection's `retryAfterMs` when it has one (else a short backoff).
 */
export type MessageHandler = (msg: WireMessage, info: DeliveryInfo) => Promise<void>;

/** Options of {@link BrokerAdapter.start}. */
export interface StartOptions {
  /**
   * The nodes this node receives from. Each sender's messages are delivered in order, independently
   * of the others', so one sender's backlog never holds up another's. Default: every node.
   */
  senders?: string[];
  /**
   * Told of every message the adapter refuses before the handler (not ours, or headers naming another
   * sender than the one the broker proved); `sender` is the proven one.
   */
  onRefused?: (info: { sender: string; reason: string; id?: string }) => void;
}

/**
 * What FlameSDK needs from a message broker: durable per-node inboxes, participant records and pings.
 * Implemented by MemoryBrokerAdapter (in-process) and NatsBrokerAdapter (NATS JetStream).
 */
export interface BrokerAdapter {
  /** Largest body the adapter can carry inline, in bytes. */
  readonly maxPayload: number;
  /** Start consuming this node's inbox durably. Messages sent before this call are still delivered. */
  start(nodeId: string, handler: MessageHandler, options?: StartOptions): Promise<void>;
  /** Durably send one message; resolves when the broker has stored it. */
  publish(msg: WireMessage): Promise<void>;
  /** Write this node's participant record (also used as the heartbeat). */
  announce(info: ParticipantInfo): Promise<void>;
  /** All participant records of this analysis. */
  participants(): Promise<ParticipantInfo[]>;
  /** The roster the analysis' operator published on the broker, if the adapter has such a place. */
  roster?(): Promise<string | undefined>;
  /** Ask a node whether it is alive right now; true if it answered within `timeoutMs`. */
  ping(nodeId: string, timeoutMs: number): Promise<boolean>;
  /** Stop consuming and release connections. Unacknowledged messages stay for the next start. */
  close(): Promise<void>;
}
