/**
 * The connection under the NATS adapter: its options (servers, logins, TLS, the node's reply-inbox
 * prefix), the first connect, the payload size the server allows, and the watch on reconnects and
 * permission errors that ends publishes a connection loss left unanswered.
 */
import fs from 'node:fs';
import { ErrorCode, Events, connect, credsAuthenticator, type ConnectionOptions, type NatsConnection, type TlsOptions } from 'nats';
import { BadRequestError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { checkBrokerId } from '../delivery.js';
import { toFlameError } from './errors.js';
import { analysisNames, type AnalysisNames } from './names.js';
import type { ProvisionOptions } from './provision.js';
import type { PubAckMux } from './puback.js';

/** Bytes of max_payload kept free for the message's fields (ids, category, time, tag) and the dedup header. */
export const NATS_HEADER_MARGIN = 4096;

/** Options of {@link NatsBrokerAdapter.connect}. */
export interface NatsBrokerOptions {
  /** NATS server URLs (`nats://host:4222`, `tls://…`). */
  servers: string[];
  /** The analysis; names the JetStream streams this adapter uses. */
  analysisId: string;
  /**
   * The node this connection acts for. Sets the connection's reply-inbox prefix to the one that
   * `natsNodePermissions` allows; required when the server enforces those permissions.
   */
  nodeId?: string;
  /** Every node of the analysis (the senders a node consumes from, the records participants() reads). */
  participants?: string[];
  /**
   * `create`: create the streams where missing (the aggregator, an operator), then check them;
   * `verify` (default): wait for them to exist and check them; `none`: touch nothing (tools, tests).
   */
  provision?: 'create' | 'verify' | 'none';
  /** How long `verify` waits for the streams to appear (default 120 s). */
  provisionTimeoutMs?: number;
  /** Settings of the streams `create` makes. */
  provisionOptions?: ProvisionOptions;
  /** User name for user/password authentication. */
  user?: string;
  /** Password for user/password authentication. */
  pass?: string;
  /** Token for token authentication. */
  token?: string;
  /** Path to a NATS credentials (JWT + nkey seed) file. */
  credsFile?: string;
  /** Accept self-signed TLS certificates (for `tls://` servers). */
  insecure?: boolean;
  /** Connection name shown in the server's monitoring. */
  name?: string;
  /** Give up a publish or announce that cannot reach the server for this long; default 60 s. */
  publishTimeoutMs?: number;
  /** Where the adapter reports refused messages and waits. */
  log?: Logger;
}

function connectionOptions(opts: NatsBrokerOptions, names: AnalysisNames): ConnectionOptions {
  const co: ConnectionOptions = {
    servers: opts.servers,
    name: opts.name,
    user: opts.user,
    pass: opts.pass,
    token: opts.token,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    timeout: 5000,
    inboxPrefix: opts.nodeId !== undefined ? names.replyPrefix(opts.nodeId) : undefined,
  };
  if (opts.credsFile) {
    let creds: Uint8Array;
    try {
      creds = fs.readFileSync(opts.credsFile);
    } catch (e) {
      throw new BadRequestError(`broker credsFile: cannot read ${opts.credsFile} (${(e as Error).message})`, { cause: e });
    }
    co.authenticator = credsAuthenticator(creds);
  }
  if (opts.insecure && opts.servers.some((s) => s.startsWith('tls://'))) {
    // nats.js hands these options to node's tls.connect, which knows rejectUnauthorized.
    co.tls = Object.assign({} as TlsOptions, { rejectUnauthorized: false });
  }
  return co;
}

/** Checks the ids and servers of `opts` and connects; a first connection that fails throws. */
export async function openConnection(opts: NatsBrokerOptions): Promise<{ nc: NatsConnection; names: AnalysisNames; analysisId: string }> {
  const analysisId = checkBrokerId('analysisId', opts.analysisId);
  if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
    throw new BadRequestError('broker servers: expected at least one NATS URL');
  }
  if (opts.nodeId !== undefined) checkBrokerId('nodeId', opts.nodeId);
  const names = analysisNames(analysisId);
  try {
    return { nc: await connect(connectionOptions(opts, names)), names, analysisId };
  } catch (e) {
    throw toFlameError(`broker: cannot connect to NATS ${opts.servers.join(', ')}`, e);
  }
}

/** Largest body carried inline on `nc`: the server's max_payload minus `NATS_HEADER_MARGIN`. */
export function payloadOf(nc: NatsConnection): number {
  return Math.max(1, (nc.info?.max_payload ?? 1024 * 1024) - NATS_HEADER_MARGIN);
}

/**
 * A request sent just before a connection loss is never answered; instead of waiting for its
 * timeout, publishes retry as soon as the client has reconnected (the message id keeps it single).
 * `inFlight` holds the rejecters of the publishes in flight.
 */
export async function watchReconnects(nc: NatsConnection, inFlight: Set<() => void>, pubAcks: PubAckMux): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === Events.Reconnect) for (const cancel of [...inFlight]) cancel();
    const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
    if (s.type === Events.Error && s.data === ErrorCode.PermissionsViolation && ctx?.operation === 'publish') {
      pubAcks.failSubject(ctx.subject, `Permissions Violation for Publish to "${ctx.subject}"`);
    }
  }
}

/** Waits for `p` but at most `ms`; the timer is cleared so it never keeps the process alive. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
