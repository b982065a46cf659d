/**
 * Names of the NATS resources of one analysis: subjects, stream, durable consumers, KV bucket and
 * reply-inbox prefixes. Shared by the NATS adapter and the permission generator so they always agree.
 *
 * Ids may contain '.', which NATS treats as a subject token separator and forbids in stream,
 * consumer and bucket names. Every id is therefore escaped injectively: '_' → '__', '.' → '_d'.
 */
import { checkBrokerId } from './delivery.js';

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
  /** Stream subjects: every node's inbox. */
  inboxWildcard: string;
  /** JetStream KV bucket with participant records (its stream is `KV_<bucket>`). */
  bucket: string;
  /** Subject of `nodeId`'s inbox. */
  inbox(nodeId: string): string;
  /** Durable consumer of `nodeId`'s inbox. */
  durable(nodeId: string): string;
  /** Core NATS subject on which a started node answers pings. */
  ping(nodeId: string): string;
  /** Wildcard over every node's ping subject. */
  pingWildcard: string;
  /** Reply-inbox prefix of `nodeId`'s connection, so no other node can read its replies. */
  replyPrefix(nodeId: string): string;
  /** KV key of `nodeId`'s participant record. */
  participantKey(nodeId: string): string;
}

/** The names of analysis `analysisId`'s NATS resources. */
export function analysisNames(analysisId: string): AnalysisNames {
  checkBrokerId('analysisId', analysisId);
  const a = natsToken(analysisId);
  const node = (nodeId: string): string => natsToken(checkBrokerId('nodeId', nodeId));
  return {
    stream: `FLAME_${a}`,
    inboxWildcard: `flame.${a}.inbox.*`,
    bucket: `FLAME_${a}`,
    inbox: (n) => `flame.${a}.inbox.${node(n)}`,
    durable: (n) => `inbox_${node(n)}`,
    ping: (n) => `flame.${a}.ping.${node(n)}`,
    pingWildcard: `flame.${a}.ping.*`,
    replyPrefix: (n) => `_FLAME_INBOX.${a}.${node(n)}`,
    participantKey: (n) => node(n),
  };
}
