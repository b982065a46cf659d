/**
 * Names of the NATS resources of one analysis: subjects, streams, durable consumers, KV keys and
 * reply-inbox prefixes. Shared by the adapter, the provisioning and the permission generator so they
 * always agree.
 *
 * A message's subject carries its recipient and its sender (`flame.<a>.inbox.<to>.<from>`), and a node
 * may publish only on subjects that end in its own id: the broker itself binds the sender to the login.
 *
 * Ids may contain '.', which NATS treats as a subject token separator and forbids in stream,
 * consumer and bucket names. Every id is therefore escaped injectively: '_' → '__', '.' → '_d'.
 */
import { checkBrokerId } from '../delivery.js';

/** Escapes an id into a single subject token that is also a valid stream/consumer/bucket name part. */
export function natsToken(id: string): string {
  return id.replace(/_/g, '__').replace(/\./g, '_d');
}

/** Inverse of {@link natsToken}. */
export function fromNatsToken(token: string): string {
  return token.replace(/_(.)/g, (_m, c: string) => (c === 'd' ? '.' : c));
}

/** Every NATS name used for one analysis. */
export interface AnalysisNames {
  /** JetStream stream holding every node's inbox. */
  stream: string;
  /** Stream subjects: every (recipient, sender) pair. */
  inboxWildcard: string;
  /** JetStream KV bucket with participant records (its stream is `KV_<bucket>`). */
  bucket: string;
  /** The KV bucket's stream. */
  kvStream: string;
  /** Subject of messages from `sender` to `recipient`. */
  inbox(recipient: string, sender: string): string;
  /** Every subject `sender` may publish messages on. */
  outbox(sender: string): string;
  /** Durable consumer of `recipient`'s messages from `sender`. */
  durable(recipient: string, sender: string): string;
  /** Core NATS subject on which a started node answers pings. */
  ping(nodeId: string): string;
  /** Wildcard over every node's ping subject. */
  pingWildcard: string;
  /** Reply-inbox prefix of `nodeId`'s connection, so no other node can read its replies. */
  replyPrefix(nodeId: string): string;
  /** KV key of `nodeId`'s participant record. */
  participantKey(nodeId: string): string;
  /** KV key of the roster the operator publishes (no node id can take it: ids start with a letter or digit). */
  rosterKey: string;
}

/** The names of analysis `analysisId`'s NATS resources. */
export function analysisNames(analysisId: string): AnalysisNames {
  checkBrokerId('analysisId', analysisId);
  const a = natsToken(analysisId);
  const node = (nodeId: string): string => natsToken(checkBrokerId('nodeId', nodeId));
  return {
    stream: `FLAME_${a}`,
    inboxWildcard: `flame.${a}.inbox.*.*`,
    bucket: `FLAME_${a}`,
    kvStream: `KV_FLAME_${a}`,
    inbox: (to, from) => `flame.${a}.inbox.${node(to)}.${node(from)}`,
    outbox: (from) => `flame.${a}.inbox.*.${node(from)}`,
    // '_' is escaped to '__' in tokens, so a single '_' between the two ids is unambiguous.
    durable: (to, from) => `in_${node(to)}_${node(from)}`,
    ping: (n) => `flame.${a}.ping.${node(n)}`,
    pingWildcard: `flame.${a}.ping.*`,
    replyPrefix: (n) => `_FLAME_INBOX.${a}.${node(n)}`,
    participantKey: (n) => node(n),
    rosterKey: '_roster',
  };
}
