/**
 * Lifecycle state of a node (status + progress) and the `/healthz` HTTP endpoint that reports it,
 * so an orchestrator or a container HEALTHCHECK can see whether the analysis is alive and how far it is.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BadRequestError } from './errors.js';

/**
 * Lifecycle of a node's run as `/healthz` shows it, in the names FLAME's pod orchestrator reads:
 * `starting` until the first progress or status, `executing`, `executed`, `failed` (HTTP 503), and
 * `stuck` — executing, but neither progress nor a message for `stuckAfterMs`.
 */
export type NodeRunStatus = 'starting' | 'executing' | 'executed' | 'failed' | 'stuck';

/** Status and progress of one node's run. Progress never decreases. */
export class RunState {
  private _status: NodeRunStatus = 'starting';
  private _progress = 0;
  private _error: string | undefined;
  private readonly startedAt = new Date().toISOString();
  private lastActivity = Date.now();

  /** @param stuckAfterMs executing without progress or messages this long reads as `stuck` */
  constructor(private readonly stuckAfterMs = 10 * 60_000) {}

  /** The status, `stuck` when executing without activity for too long. */
  get status(): NodeRunStatus {
    if (this._status === 'executing' && Date.now() - this.lastActivity > this.stuckAfterMs) return 'stuck';
    return this._status;
  }

  /** Something happened (a message came or went): the run is not stuck. */
  touch(): void {
    this.lastActivity = Date.now();
  }

  get progress(): number {
    return this._progress;
  }

  /** Set progress in [0, 1]. A lower value than the current one is ignored (progress never goes back). */
  setProgress(value: number): void {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new BadRequestError(`progress: expected a number from 0 to 1, got ${String(value)}`);
    }
    if (value > this._progress) this._progress = value;
    if (this._status === 'starting') this._status = 'executing';
    this.lastActivity = Date.now();
  }

  setStatus(status: NodeRunStatus, error?: unknown): void {
    this._status = status;
    this.lastActivity = Date.now();
    if (status === 'executed') this._progress = 1;
    if (error !== undefined) this._error = error instanceof Error ? error.message : String(error);
  }

  toJSON(): Record<string, unknown> {
    return { status: this.status, progress: this._progress, started_at: this.startedAt, ...(this._error ? { error: this._error } : {}) };
  }
}

/** A running /healthz server. */
export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Serve `GET /healthz` with the run state as JSON (HTTP 200, or 503 once the run failed). */
export async function startHealthServer(state: RunState, extra: () => Record<string, unknown>, port: number): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/healthz') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no route ${req.method} ${req.url}` }));
      return;
    }
    const body = JSON.stringify({ ...extra(), ...state.toJSON() });
    res.writeHead(state.status === 'failed' || state.status === 'stuck' ? 503 : 200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
