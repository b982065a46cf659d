/**
 * Log lines to the pod orchestrator as well as to stderr: each JSON line the SDK's logger writes is
 * also posted to `POST /po/stream_logs` as `{log, log_type, analysis_id, status, progress}` (the
 * orchestrator's schema; it forwards them to the hub). Posting never holds up the analysis: lines
 * queue (at most `maxQueued`, the oldest dropped first and counted) and go one at a time, in order.
 */
import type { LogSink } from '../logger.js';
import { expectStatus, axiosHttpClient, requestWithRetries, type HttpClient } from './http.js';
import type { TokenHolder } from './token.js';

/** The orchestrator's log levels. */
type PoLogType = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug';

/** Options of {@link OrchestratorLogStream}. */
export interface OrchestratorLogOptions {
  /** Base URL of the orchestrator behind nginx, e.g. `http://nginx-<DEPLOYMENT_NAME>/po`. */
  poUrl: string;
  /** The analysis (`ANALYSIS_ID`). */
  analysisId: string;
  /** The Keycloak token. */
  token: TokenHolder;
  /** The status and progress (0-100) sent with each line. */
  state: () => { status: string; progress: number };
  /** Where lines also go (stderr by default). */
  local?: LogSink;
  /** HTTP transport. */
  http?: HttpClient;
  /** Most lines waiting to be posted (default 1000). */
  maxQueued?: number;
  /** Time budget per post in ms (default 5000). */
  timeoutMs?: number;
}

/** A log sink that writes locally and streams to the orchestrator; see the module comment. */
export class OrchestratorLogStream {
  /** Lines dropped because the queue was full or the orchestrator kept failing. */
  dropped = 0;
  private readonly queue: Array<Record<string, unknown>> = [];
  private sending: Promise<void> | undefined;
  private readonly http: HttpClient;
  private readonly local: LogSink;
  private readonly maxQueued: number;

  /** @param options where the orchestrator is and what to send with each line */
  constructor(private readonly options: OrchestratorLogOptions) {
    this.http = options.http ?? axiosHttpClient;
    this.local = options.local ?? ((line) => process.stderr.write(`${line}\n`));
    this.maxQueued = options.maxQueued ?? 1000;
  }

  /** The sink to give the SDK's logger. */
  readonly sink: LogSink = (line: string): void => {
    this.local(line);
    const { status, progress } = this.options.state();
    this.queue.push({ ...toPoLog(line), analysis_id: this.options.analysisId, status, progress: Math.max(0, Math.min(100, Math.round(progress))) });
    while (this.queue.length > this.maxQueued) {
      this.queue.shift();
      this.dropped += 1;
    }
    this.sending ??= this.drain();
  };

  /** Resolves once every queued line was posted (or given up on). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async drain(): Promise<void> {
    try {
      for (let entry = this.queue.shift(); entry; entry = this.queue.shift()) {
        const body = JSON.stringify(entry);
        try {
          const res = await requestWithRetries(
            this.http,
            () => ({
              method: 'POST',
              url: `${this.options.poUrl.replace(/\/+$/, '')}/stream_logs`,
              headers: { ...this.options.token.authorization(), 'content-type': 'application/json', accept: 'application/json' },
              body,
              timeoutMs: this.options.timeoutMs ?? 5000,
            }),
            { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 },
          );
          await expectStatus(res, [200, 201, 202, 204], 'orchestrator stream_logs');
          res.body.resume();
        } catch {
          this.dropped += 1;
        }
      }
    } finally {
      this.sending = undefined;
    }
  }
}

/** `{log, log_type}` of one of our JSON log lines: the message with its fields as `key=value`. */
function toPoLog(line: string): { log: string; log_type: PoLogType } {
  try {
    const { level, msg, time: _time, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const type: PoLogType = level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? level : 'info';
    const rest = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return { log: `${String(msg ?? '')}${rest ? ` ${rest}` : ''}`.slice(0, 16_384), log_type: type };
  } catch {
    return { log: line.slice(0, 16_384), log_type: 'info' };
  }
}
