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
  /** The payload, opaque to the adapter. */
  body: Uint8Array;
}

/** What a node announces about itself. */
export interface ParticipantInfo {
  /** The node's id. */
  nodeId: string;
  /** Its role in the analysis. */
  role: 'aggregator' | 'analyzer';
  /** Base64 X25519 public key (SPKI DER) used to encrypt intermediate results for this node. */
  publicKey: string;
  /** ISO-8601 time of the last heartbeat. */
  lastSeen: string;
  /** True once the node has closed cleanly. */
  closed?: boolean;
}

/**
 * Called for each delivered message. The adapter acknowledges the message only after the promise
 * resolves; a rejected promise (or a crash before resolution) means the message is delivered again.
 */
export type MessageHandler = (msg: WireMessage) => Promise<void>;

/**
 * What FlameSDK needs from a message broker: durable per-node inboxes, participant records and pings.
 * Implemented by MemoryBrokerAdapter (in-process) and NatsBrokerAdapter (NATS JetStream).
 */
export interface BrokerAdapter {
  /** Largest body the adapter can carry inline, in bytes. */
  readonly maxPayload: number;
  /** Start consuming this node's inbox durably. Messages sent before this call are still delivered. */
  start(nodeId: string, handler: MessageHandler): Promise<void>;
  /** Durably send one message; resolves when the broker has stored it. */
  publish(msg: WireMessage): Promise<void>;
  /** Write this node's participant record (also used as the heartbeat). */
  announce(info: ParticipantInfo): Promise<void>;
  /** All participant records of this analysis. */
  participants(): Promise<ParticipantInfo[]>;
  /** Ask a node whether it is alive right now; true if it answered within `timeoutMs`. */
  ping(nodeId: string, timeoutMs: number): Promise<boolean>;
  /** Stop consuming and release connections. Unacknowledged messages stay for the next start. */
  close(): Promise<void>;
}
