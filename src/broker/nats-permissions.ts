/**
 * Per-node NATS permissions for one analysis: every node may send to every inbox, but only read
 * its own. Allow-lists only (anything not listed is denied), so JetStream API subjects that could
 * expose another node's messages (MSG.GET on the inbox stream, consumer creation without the filter
 * in the subject, another node's durable) are closed by default.
 *
 * Written for nats-server >= 2.9: there, consumer creation is
 * `$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>` and the server rejects a request whose body
 * filter differs from the filter in the subject, so permissions on the subject bind the filter.
 */
import { BadRequestError } from '../errors.js';
import { checkBrokerId } from './delivery.js';
import { analysisNames } from './nats-names.js';

/** The permissions block of one nats-server user. */
export interface NatsUserPermissions {
  /** Subjects the node may publish to (allow-list; everything else is denied). */
  publish: {
    /** Subject patterns. */
    allow: string[];
  };
  /** Subjects the node may subscribe to (allow-list; everything else is denied). */
  subscribe: {
    /** Subject patterns. */
    allow: string[];
  };
  /** Lets the node answer pings (one reply to each request it received). */
  allow_responses: boolean;
}

/** What node `nodeId` of analysis `analysisId` may publish and subscribe to. */
export function natsNodePermissions(analysisId: string, nodeId: string): NatsUserPermissions {
  checkBrokerId('nodeId', nodeId);
  const n = analysisNames(analysisId);
  const { stream } = n;
  const durable = n.durable(nodeId);
  const kvStream = `KV_${n.bucket}`;
  return {
    publish: {
      allow: [
        // Sending: any node's inbox, and pings to any node.
        n.inboxWildcard,
        n.pingWildcard,
        '$JS.API.INFO',
        // The analysis stream may be looked up and created (creation is idempotent for equal configs).
        `$JS.API.STREAM.INFO.${stream}`,
        `$JS.API.STREAM.CREATE.${stream}`,
        // Receiving: only through this node's durable, whose filter is bound to this node's inbox.
        `$JS.API.CONSUMER.CREATE.${stream}.${durable}.${n.inbox(nodeId)}`,
        `$JS.API.CONSUMER.INFO.${stream}.${durable}`,
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
        `$JS.ACK.${stream}.${durable}.>`,
        // Participants: read every record, write only this node's own.
        `$JS.API.STREAM.INFO.${kvStream}`,
        `$JS.API.STREAM.CREATE.${kvStream}`,
        `$KV.${n.bucket}.${n.participantKey(nodeId)}`,
        `$JS.API.DIRECT.GET.${kvStream}.>`,
        `$JS.API.STREAM.MSG.GET.${kvStream}`,
        // Listing keys uses a short-lived ordered consumer on the KV stream.
        `$JS.API.CONSUMER.CREATE.${kvStream}`,
        `$JS.API.CONSUMER.CREATE.${kvStream}.>`,
        `$JS.API.CONSUMER.DELETE.${kvStream}.>`,
        `$JS.FC.${kvStream}.>`,
      ],
    },
    subscribe: {
      // Replies (JetStream API answers, pulled messages, ping answers) come to a per-node inbox.
      allow: [`${n.replyPrefix(nodeId)}.>`, n.ping(nodeId)],
    },
    allow_responses: true,
  };
}

/** One node's login in {@link natsAuthorizationConfig}. */
export interface NatsNodeLogin {
  /** The node's id in the analysis. */
  nodeId: string;
  /** NATS user name; defaults to the node id. */
  user?: string;
  /** NATS password (at least 8 characters). */
  password: string;
}

/**
 * A nats-server `authorization { users = [...] }` block with one user per node, each limited to
 * {@link natsNodePermissions}. `admin`, if given, gets no restrictions (for operators: creating
 * and deleting the analysis' stream and bucket). Nodes must connect with `nodeId` set so their
 * reply inbox matches their permissions.
 */
export function natsAuthorizationConfig(opts: {
  analysisId: string;
  nodes: NatsNodeLogin[];
  admin?: { user: string; password: string };
}): string {
  if (!Array.isArray(opts.nodes) || opts.nodes.length === 0) {
    throw new BadRequestError('nats permissions nodes: expected at least one node login');
  }
  const users = new Set<string>();
  const entries = opts.nodes.map((login, i) => {
    checkBrokerId(`nodes[${i}].nodeId`, login.nodeId);
    const user = login.user ?? login.nodeId;
    if (typeof login.password !== 'string' || login.password.length < 8) {
      throw new BadRequestError(`nats permissions nodes[${i}].password of node ${login.nodeId}: expected at least 8 characters`);
    }
    if (users.has(user)) throw new BadRequestError(`nats permissions nodes[${i}].user: "${user}" is used twice`);
    users.add(user);
    const permissions = natsNodePermissions(opts.analysisId, login.nodeId);
    // nats-server config accepts JSON syntax; quoting keeps "$JS…" from being read as a variable.
    return `    { user: ${JSON.stringify(user)}, password: ${JSON.stringify(login.password)}, permissions: ${JSON.stringify(permissions)} }`;
  });
  if (opts.admin) {
    if (users.has(opts.admin.user)) throw new BadRequestError(`nats permissions admin.user: "${opts.admin.user}" is also a node user`);
    entries.push(`    { user: ${JSON.stringify(opts.admin.user)}, password: ${JSON.stringify(opts.admin.password)} }`);
  }
  return `authorization {\n  users = [\n${entries.join(',\n')}\n  ]\n}\n`;
}
