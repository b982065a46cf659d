/**
 * Per-node NATS permissions for one analysis. Allow-lists only (anything not listed is denied):
 *
 * - a node publishes messages only on subjects that name it as the sender, so it cannot speak as another;
 * - it reads only its own inbox, through its own durables, whose filter is bound in the subject of the
 *   consumer-creation request (nats-server >= 2.9 rejects a body filter that differs from the subject's);
 * - it writes only its own participant record, and KV rollups are refused by the bucket's config;
 * - only the aggregator may create the analysis' stream and bucket (no node may update or delete them);
 *   an operator's admin login provisions them for everyone with `flame analysis provision` instead.
 */
import { BadRequestError } from '../../errors.js';
import { checkBrokerId } from '../delivery.js';
import { analysisNames } from './names.js';

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

/** Who a node is in the analysis, for {@link natsNodePermissions}. */
export interface NatsNodeRole {
  /** Every node of the analysis (its durables are one per sender). */
  participants: string[];
  /** True for the aggregator: it may create (not change) the stream and the bucket. */
  aggregator?: boolean;
}

/** What node `nodeId` of analysis `analysisId` may publish and subscribe to. */
export function natsNodePermissions(analysisId: string, nodeId: string, role: NatsNodeRole): NatsUserPermissions {
  checkBrokerId('nodeId', nodeId);
  if (!role || !Array.isArray(role.participants) || !role.participants.includes(nodeId)) {
    throw new BadRequestError(`nats permissions of node ${nodeId}: participants must list every node of the analysis, this one included`);
  }
  role.participants.forEach((p, i) => checkBrokerId(`participants[${i}]`, p));
  const n = analysisNames(analysisId);
  const { stream, kvStream } = n;
  const receive = role.participants.flatMap((sender) => {
    const durable = n.durable(nodeId, sender);
    return [
      `$JS.API.CONSUMER.CREATE.${stream}.${durable}.${n.inbox(nodeId, sender)}`,
      `$JS.API.CONSUMER.INFO.${stream}.${durable}`,
      // A restarted node makes its durable anew to get back at once what its killed run held.
      `$JS.API.CONSUMER.DELETE.${stream}.${durable}`,
      `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
      `$JS.ACK.${stream}.${durable}.>`,
    ];
  });
  return {
    publish: {
      allow: [
        // Sending: to any node, always as this node; pings to any node.
        n.outbox(nodeId),
        n.pingWildcard,
        '$JS.API.INFO',
        // Every node checks the stream's and the bucket's config before it sends anything.
        `$JS.API.STREAM.INFO.${stream}`,
        `$JS.API.STREAM.INFO.${kvStream}`,
        ...(role.aggregator ? [`$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.CREATE.${kvStream}`] : []),
        // Receiving: only through this node's durables, one per sender, each bound to this node's inbox.
        ...receive,
        // Participants: read every record (and the roster), write only this node's own.
        `$KV.${n.bucket}.${n.participantKey(nodeId)}`,
        `$JS.API.DIRECT.GET.${kvStream}.>`,
        `$JS.API.DIRECT.GET.${kvStream}`,
        `$JS.API.STREAM.MSG.GET.${kvStream}`,
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
 * {@link natsNodePermissions}. `aggregatorId` names the node that may create the stream and bucket;
 * `admin`, if given, gets no restrictions (for operators: provisioning, publishing the roster, deleting
 * the analysis' stream and bucket). Nodes must connect with `nodeId` set so their reply inbox matches
 * their permissions.
 */
export function natsAuthorizationConfig(opts: {
  analysisId: string;
  nodes: NatsNodeLogin[];
  aggregatorId?: string;
  admin?: { user: string; password: string };
}): string {
  if (!Array.isArray(opts.nodes) || opts.nodes.length === 0) {
    throw new BadRequestError('nats permissions nodes: expected at least one node login');
  }
  const participants = opts.nodes.map((login, i) => checkBrokerId(`nodes[${i}].nodeId`, login.nodeId));
  if (new Set(participants).size !== participants.length) throw new BadRequestError('nats permissions nodes: a node is listed twice');
  if (opts.aggregatorId !== undefined && !participants.includes(opts.aggregatorId)) {
    throw new BadRequestError(`nats permissions aggregatorId: "${opts.aggregatorId}" is not one of the nodes`);
  }
  const users = new Set<string>();
  const entries = opts.nodes.map((login, i) => {
    const user = login.user ?? login.nodeId;
    if (typeof login.password !== 'string' || login.password.length < 8) {
      throw new BadRequestError(`nats permissions nodes[${i}].password of node ${login.nodeId}: expected at least 8 characters`);
    }
    if (users.has(user)) throw new BadRequestError(`nats permissions nodes[${i}].user: "${user}" is used twice`);
    users.add(user);
    const permissions = natsNodePermissions(opts.analysisId, login.nodeId, { participants, aggregator: login.nodeId === opts.aggregatorId });
    // nats-server config accepts JSON syntax; quoting keeps "$JS…" from being read as a variable.
    return `    { user: ${JSON.stringify(user)}, password: ${JSON.stringify(login.password)}, permissions: ${JSON.stringify(permissions)} }`;
  });
  if (opts.admin) {
    if (users.has(opts.admin.user)) throw new BadRequestError(`nats permissions admin.user: "${opts.admin.user}" is also a node user`);
    entries.push(`    { user: ${JSON.stringify(opts.admin.user)}, password: ${JSON.stringify(opts.admin.password)} }`);
  }
  return `authorization {\n  users = [\n${entries.join(',\n')}\n  ]\n}\n`;
}
