/**
 * The analysis pod's own HTTP server on a FLAME node: the node's nginx forwards `/analysis/…` to it.
 * The message broker pushes messages to its `/webhook`, the pod orchestrator polls `/healthz` and
 * calls `/token_refresh` and `/partner_status`. Each adapter registers its routes on the one server.
 * Requests come from the node's network, so bodies are read within a size and a time budget.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BadRequestError, FlameError } from '../errors.js';
import { isObject } from '../validation.js';

/** What a route answers. */
export interface RouteAnswer {
  /** Status code. */
  status: number;
  /** JSON body (omitted for an empty answer). */
  json?: unknown;
}

/** A route's handler: gets the request's body bytes (already bounded), answers JSON. */
export type RouteHandler = (body: Buffer, req: http.IncomingMessage) => Promise<RouteAnswer> | RouteAnswer;

/** Where {@link AnalysisServer} listens. */
export interface AnalysisServerOptions {
  /** Port; 8000 is where FLAME's nginx forwards `/analysis/`. 0 picks a free one. */
  port: number;
  /** Interface; default `0.0.0.0` (the pod's network). */
  host?: string;
  /** Time budget for receiving one request's body, in ms (default 30 s). */
  bodyTimeoutMs?: number;
}

interface Route {
  maxBody: number;
  handler: RouteHandler;
}

/** The pod's HTTP server: JSON routes keyed by method and path. */
export class AnalysisServer {
  private readonly routes = new Map<string, Route>();
  private server: http.Server | undefined;
  private readonly bodyTimeoutMs: number;

  /** @param options where to listen */
  constructor(private readonly options: AnalysisServerOptions) {
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  }

  /** Serves `method path` with `handler`; bodies over `maxBody` bytes get 413. Replaces an earlier route. */
  route(method: 'GET' | 'POST', path: string, maxBody: number, handler: RouteHandler): void {
    this.routes.set(`${method} ${path}`, { maxBody, handler });
  }

  /** Removes a route (its path answers 404 again). */
  unroute(method: 'GET' | 'POST', path: string): void {
    this.routes.delete(`${method} ${path}`);
  }

  /** The port listened on (after {@link listen}). */
  get port(): number {
    if (!this.server) throw new FlameError('analysis server: not listening');
    return (this.server.address() as AddressInfo).port;
  }

  /** Starts listening; resolves once bound. Calling it again is a no-op. */
  async listen(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => void this.serve(req, res));
    server.requestTimeout = this.bodyTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host ?? '0.0.0.0', () => resolve());
    });
    this.server = server;
  }

  /** Stops listening and drops open connections. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const route = this.routes.get(`${req.method} ${path}`);
    const answer = (a: RouteAnswer): void => {
      if (res.headersSent) return;
      const text = a.json === undefined ? '' : JSON.stringify(a.json);
      res.writeHead(a.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (!route) {
      req.resume();
      answer({ status: 404, json: { detail: `no route ${req.method} ${path}` } });
      return;
    }
    let body: Buffer;
    try {
      body = await readRequestBody(req, route.maxBody);
    } catch (e) {
      answer({ status: 413, json: { detail: (e as Error).message } });
      req.destroy();
      return;
    }
    try {
      answer(await route.handler(body, req));
    } catch (e) {
      const status = e instanceof BadRequestError ? 400 : 500;
      answer({ status, json: { detail: (e as Error).message } });
    }
  }
}

/** Reads a request body, refusing more than `max` bytes (by content-length first, then as it streams). */
function readRequestBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) return Promise.reject(new BadRequestError(`request body of ${declared} bytes exceeds ${max} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.byteLength;
      if (size > max) {
        reject(new BadRequestError(`request body exceeds ${max} bytes`));
        req.pause();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses a JSON request body into an object, naming `what` when it is not one. */
export function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequestError(`${what}: body is not JSON`);
  }
  if (!isObject(v)) throw new BadRequestError(`${what}: expected a JSON object`);
  return v;
}
