/**
 * JetStream publishes that wait for the server's acknowledgement (PubAck) through one reply
 * subscription per connection, matched by a token, with one sweeping timer for their timeouts.
 * `js.publish` does the same through a request per message, which builds two error objects (with
 * stack traces) for its timer every time — most of a publish's CPU cost on the client. Errors here are
 * made only when something fails, with the codes `toFlameError` and `jsErrorCode` read.
 */
import { createInbox, ErrorCode, type MsgHdrs, type Msg, type NatsConnection, type Subscription } from 'nats';

interface Pending {
  subject: string;
  resolve: () => void;
  reject: (e: Error) => void;
  deadline: number;
}

/** An error shaped like the client's NatsError (code, and api_error for JetStream errors). */
function natsLikeError(message: string, code: string, apiError?: { code: number; err_code?: number; description: string }): Error {
  return Object.assign(new Error(message), { name: 'NatsError', code, ...(apiError ? { api_error: apiError } : {}) });
}

/** See the module comment. */
export class PubAckMux {
  private readonly prefix: string;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private readonly sweeper: NodeJS.Timeout;

  /** @param inboxPrefix the connection's reply-inbox prefix (per node, as its permissions allow) */
  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix?: string,
  ) {
    this.prefix = createInbox(inboxPrefix);
    this.sub = nc.subscribe(`${this.prefix}.*`, { callback: (err, m) => (err ? this.failAll(err) : this.onReply(m)) });
    this.sweeper = setInterval(() => this.sweep(), 200);
    this.sweeper.unref();
  }

  /** Publishes and resolves once the stream has stored the message; rejects with the server's error or on timeout. */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<void> {
    const token = (++this.seq).toString(36);
    return new Promise<void>((resolve, reject) => {
      this.pending.set(token, { subject, resolve, reject, deadline: Date.now() + timeoutMs });
      try {
        this.nc.publish(subject, payload, { reply: `${this.prefix}.${token}`, headers });
      } catch (e) {
        this.pending.delete(token);
        reject(e as Error);
      }
    });
  }

  private onReply(m: Msg): void {
    const token = m.subject.slice(this.prefix.length + 1);
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    if (m.data.length === 0) {
      // a status message: 503 is "no responders" (no stream takes the subject)
      const code = m.headers?.code;
      p.reject(natsLikeError(`no stream stored the message (status ${code ?? 'unknown'})`, code === 503 ? ErrorCode.NoResponders : String(code ?? 'unknown')));
      return;
    }
    let r: { error?: { code: number; err_code?: number; description: string } };
    try {
      r = JSON.parse(new TextDecoder().decode(m.data)) as typeof r;
    } catch {
      p.reject(natsLikeError('the server answered a publish with something that is not JSON', 'BAD_JSON'));
      return;
    }
    if (r.error) p.reject(natsLikeError(r.error.description, String(r.error.code), r.error));
    else p.resolve();
  }

  private sweep(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(token);
      p.reject(natsLikeError('timed out waiting for the stream to acknowledge the message', ErrorCode.Timeout));
    }
  }

  /** Fails the publishes to `subject` the server refused (a permissions violation arrives as a protocol error, not as a reply). */
  failSubject(subject: string, message: string): void {
    for (const [token, p] of this.pending) {
      if (p.subject !== subject) continue;
      this.pending.delete(token);
      p.reject(natsLikeError(message, ErrorCode.PermissionsViolation));
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Stops the reply subscription and fails what still waits. */
  close(): void {
    clearInterval(this.sweeper);
    try {
      this.sub.unsubscribe();
    } catch {
      // the connection may already be closed
    }
    this.failAll(natsLikeError('the connection is closing', ErrorCode.Disconnect));
  }
}
