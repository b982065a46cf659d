/**
 * The one HTTP client the FLAME node adapters use, axios behind a tiny interface (tests wrap it to
 * inject failures), and the retry rule they share: 5xx answers, timeouts and refused connections are
 * tried again with backoff, every other answer is final.
 */
import { Readable } from 'node:stream';
import axios, { type AxiosResponse } from 'axios';
import { BadRequestError, FlameError, NotFoundError, TimeoutError, UnauthorizedError } from '../errors.js';

/** One request. A `Readable` body is streamed, never buffered whole. */
export interface HttpRequest {
  /** HTTP method. */
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Absolute URL. */
  url: string;
  /** Request headers (lower- or mixed-case names). */
  headers?: Record<string, string>;
  /** Body: bytes, text or a stream. */
  body?: Uint8Array | string | Readable;
  /** Time budget for the answer's status and headers, in ms. */
  timeoutMs: number;
}

/** An answer whose body has not been read yet. */
export interface HttpResponse {
  /** Status code. */
  status: number;
  /** Response headers, names lower-case. */
  headers: Record<string, string>;
  /** The body as a stream; read it with {@link readBounded} or pipe it. */
  body: Readable;
}

/** What the adapters need from an HTTP library: one request at a time. */
export interface HttpClient {
  /** Sends `req`; rejects on transport failures (refused, reset, timeout), resolves on any status. */
  request(req: HttpRequest): Promise<HttpResponse>;
}

/** A transport failure (connection refused or reset, DNS) or a timeout, named by method and URL. */
export class HttpTransportError extends FlameError {
  /** True when the time budget ran out. */
  readonly timedOut: boolean;
  /** @param message what failed; @param timedOut whether it was the time budget; @param cause the underlying error */
  constructor(message: string, timedOut: boolean, cause?: unknown) {
    super(message, { cause });
    this.timedOut = timedOut;
  }
}

/**
 * The HttpClient on axios. Bodies are streamed both ways (`responseType: 'stream'`, no size caps
 * inside axios: the adapters bound what they read with {@link readBounded}); every status resolves,
 * redirects are not followed (a node service never redirects, and following one would carry the
 * token elsewhere). The time budget covers the status and headers only, so a long download is not
 * cut off; axios' own `timeout` would also fire on a slow body.
 */
export const axiosHttpClient: HttpClient = {
  async request(req: HttpRequest): Promise<HttpResponse> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), req.timeoutMs);
    try {
      const res: AxiosResponse<Readable> = await axios.request<Readable>({
        method: req.method,
        url: req.url,
        headers: req.headers,
        data: req.body,
        signal: controller.signal,
        responseType: 'stream',
        validateStatus: () => true,
        maxRedirects: 0,
        maxContentLength: -1,
        maxBodyLength: Infinity,
        // Bytes as sent: a stored result is handed on unchanged, never turned into text or JSON.
        transformResponse: (data: unknown) => data,
      });
      clearTimeout(timer);
      return { status: res.status, headers: plainHeaders(res.headers), body: res.data };
    } catch (e) {
      clearTimeout(timer);
      const timedOut = controller.signal.aborted;
      const why = timedOut ? `no answer within ${req.timeoutMs} ms` : transportReason(e);
      throw new HttpTransportError(`${req.method} ${req.url}: ${why}`, timedOut, e);
    }
  },
};

/** axios' header object as plain lower-case names to strings (repeated headers joined by ", "). */
function plainHeaders(headers: AxiosResponse['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** The system error code (ECONNREFUSED, ENOTFOUND, …) and message of a failed request. */
function transportReason(e: unknown): string {
  if (axios.isAxiosError(e)) return e.code ? `${e.code}: ${e.message}` : e.message;
  return String(e);
}

/** Reads a response body whole, refusing more than `maxBytes` (the message names `what`). */
export async function readBounded(body: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += b.byteLength;
    if (size > maxBytes) {
      body.destroy();
      throw new FlameError(`${what}: answer larger than ${maxBytes} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Reads and parses a JSON answer of at most `maxBytes`. */
export async function readJson(res: HttpResponse, maxBytes: number, what: string): Promise<unknown> {
  const text = (await readBounded(res.body, maxBytes, what)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new FlameError(`${what}: answer is not JSON (${JSON.stringify(text.slice(0, 80))})`);
  }
}

/** How often and how long {@link requestWithRetries} tries. */
export interface RetryPolicy {
  /** Most attempts in all (1 = no retry). */
  attempts: number;
  /** Delay before the second attempt in ms; doubles per attempt. */
  baseDelayMs: number;
  /** Longest delay between attempts in ms. */
  maxDelayMs: number;
}

/** FLAME's python SDK tries a send 10 times; we do the same, with backoff. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 5000 };

/** True for answers worth trying again: 5xx (and 429, the service asking to slow down). */
export function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429;
}

/**
 * Sends the request built by `make` (called once per attempt, so a token swapped meanwhile is used
 * and bodies are fresh), trying again on 5xx, 429 and transport failures. Resolves with the first
 * final answer (2xx-4xx); rejects with the last failure once attempts run out. A retried answer's
 * body is discarded.
 */
export async function requestWithRetries(
  client: HttpClient,
  make: () => HttpRequest,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (attempt: number, reason: string) => void,
): Promise<HttpResponse> {
  let last: unknown;
  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    const req = make();
    try {
      const res = await client.request(req);
      if (!retryableStatus(res.status)) return res;
      res.body.resume();
      last = new FlameError(`${req.method} ${req.url}: answered ${res.status} after ${attempt} attempt(s)`);
    } catch (e) {
      if (!(e instanceof HttpTransportError)) throw e;
      last = e.timedOut ? new TimeoutError(`${e.message} (after ${attempt} attempt(s))`, { cause: e }) : e;
    }
    if (attempt < policy.attempts) {
      onRetry?.(attempt, (last as Error).message);
      const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  throw last;
}

/**
 * Throws naming the request unless the answer's status is in `ok` (401/403 UnauthorizedError, 404
 * NotFoundError, 400/413/422 BadRequestError, else FlameError); the body's start is quoted.
 */
export async function expectStatus(res: HttpResponse, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) return;
  let text: string;
  try {
    text = (await readBounded(res.body, 4096, what)).toString('utf8');
  } catch {
    text = '(body over 4096 bytes)';
  }
  const message = `${what}: answered ${res.status}${text ? ` ${JSON.stringify(text.slice(0, 200))}` : ''}`;
  if (res.status === 401 || res.status === 403) throw new UnauthorizedError(message);
  if (res.status === 404) throw new NotFoundError(message);
  if (res.status === 400 || res.status === 413 || res.status === 422) throw new BadRequestError(message);
  throw new FlameError(message);
}
