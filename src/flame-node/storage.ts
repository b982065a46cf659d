/**
 * The client of a FLAME node's storage service (PrivateAIM/node-result-service), behind the node's
 * nginx at `/storage`: final results (`PUT /final/`, written to the hub for the analyst, with a
 * local-DP variant), intermediate results shared through the hub (`PUT /intermediate/`, encrypted
 * for one node when `remote_node_id` is given, read back with `GET /intermediate/{id}?node_id=`),
 * and this node's local results (`PUT /local/` with an optional tag, `GET /local/{id}`,
 * `GET /local/tags`, `GET /local/tags/{tag}`). Uploads are multipart forms streamed from the
 * caller's body, downloads are streams: nothing is held whole.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BadRequestError, FlameError } from '../errors.js';
import { progressCounter } from '../results/progress.js';
import { DEFAULT_RETRY, expectStatus, axiosHttpClient, readJson, requestWithRetries, type HttpClient, type HttpResponse, type RetryPolicy } from './http.js';
import type { TokenHolder } from './token.js';

import { LOCAL_TAG_PATTERN } from '../results/result-info.js';

export { LOCAL_TAG_PATTERN };
const OBJECT_ID_PATTERN = /^[0-9a-fA-F-]{32,36}$/;
const FILENAME_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;

/** Options of {@link FlameStorageClient}. */
export interface FlameStorageOptions {
  /** Base URL of the storage service, e.g. `http://nginx-<DEPLOYMENT_NAME>/storage`. */
  storageUrl: string;
  /** The Keycloak token. */
  token: TokenHolder;
  /** HTTP transport (axios by default). */
  http?: HttpClient;
  /** Time budget for an answer's headers, in ms (default 30000; uploads stream for as long as they take). */
  requestTimeoutMs?: number;
  /** Retries of reads and tag listings on 5xx and timeouts (uploads of streams are never retried). */
  retry?: RetryPolicy;
}

/** A stored result the service names by id and URL. */
export interface StoredObject {
  /** The object's id (a UUID). */
  objectId: string;
  /** The URL the service gave for it. */
  url: string;
}

/** One upload. */
export interface UploadOptions {
  /** File name recorded with it (letters, digits, `.`, `_`, `-`). */
  filename: string;
  /** Media type (default application/octet-stream). */
  contentType?: string;
  /** Called with bytes sent so far. */
  onProgress?: (bytes: number) => void;
}

/** The storage service's API; see the module comment. */
export class FlameStorageClient {
  private readonly http: HttpClient;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;

  /** @param options where the service is and the token */
  constructor(private readonly options: FlameStorageOptions) {
    this.http = options.http ?? axiosHttpClient;
    this.base = options.storageUrl.replace(/\/+$/, '');
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** Submits a final result to the hub for the analyst (`PUT /final/`, answered 204). */
  async putFinal(body: Uint8Array | Readable, options: UploadOptions): Promise<void> {
    const res = await this.upload('/final/', body, options, {});
    await expectStatus(res, [200, 204], `storage PUT final ${options.filename}`);
    res.body.resume();
  }

  /** Submits one number as a final result with local differential privacy added by the service (`PUT /final/localdp`). */
  async putFinalLocalDp(value: number, dp: { epsilon: number; sensitivity: number }, filename = 'result.txt'): Promise<void> {
    if (!Number.isFinite(value)) throw new BadRequestError(`storage final local-DP result: expected a finite number, got ${value}`);
    if (!(dp.epsilon > 0) || !(dp.sensitivity > 0)) throw new BadRequestError('storage final local-DP result: epsilon and sensitivity must be > 0');
    const res = await this.upload('/final/localdp', Buffer.from(String(value)), { filename, contentType: 'text/plain' }, {
      epsilon: String(dp.epsilon),
      sensitivity: String(dp.sensitivity),
    });
    await expectStatus(res, [200, 204], `storage PUT final/localdp ${filename}`);
    res.body.resume();
  }

  /** Stores an intermediate result at the hub; with `remoteNodeId` the service encrypts it for that node. */
  async putIntermediate(body: Uint8Array | Readable, options: UploadOptions & { remoteNodeId?: string }): Promise<StoredObject> {
    const fields: Record<string, string> = options.remoteNodeId !== undefined ? { remote_node_id: options.remoteNodeId } : {};
    const res = await this.upload('/intermediate/', body, options, fields);
    await expectStatus(res, [200, 201], `storage PUT intermediate ${options.filename}`);
    return this.stored(res, 'object_id', 'intermediate');
  }

  /** Streams an intermediate result; `senderNodeId` has the service decrypt what that node encrypted for us. */
  async getIntermediate(objectId: string, senderNodeId?: string): Promise<Readable> {
    checkObjectId(objectId);
    const q = senderNodeId !== undefined ? `?node_id=${encodeURIComponent(senderNodeId)}` : '';
    return this.download(`/intermediate/${objectId}${q}`, `intermediate result ${objectId}`);
  }

  /** Stores a local result on this node, grouped under `tag` when given. */
  async putLocal(body: Uint8Array | Readable, options: UploadOptions & { tag?: string }): Promise<StoredObject> {
    if (options.tag !== undefined && !LOCAL_TAG_PATTERN.test(options.tag)) {
      throw new BadRequestError(`storage local tag ${JSON.stringify(options.tag)}: expected 1-32 lower-case letters, digits or inner '-'`);
    }
    const res = await this.upload('/local/', body, options, options.tag !== undefined ? { tag: options.tag } : {});
    await expectStatus(res, [200, 201], `storage PUT local ${options.filename}`);
    return this.stored(res, undefined, 'local');
  }

  /** Streams a local result. NotFoundError when the service has no such object. */
  async getLocal(objectId: string): Promise<Readable> {
    checkObjectId(objectId);
    return this.download(`/local/${objectId}`, `local result ${objectId}`);
  }

  /** The project's local tags (`GET /local/tags`). */
  async localTags(): Promise<string[]> {
    const res = await this.get('/local/tags');
    await expectStatus(res, [200], 'storage GET local/tags');
    const json = (await readJson(res, 4 * 1024 * 1024, 'storage local/tags')) as { tags?: Array<{ name?: unknown }> };
    if (!Array.isArray(json?.tags)) throw new FlameError('storage local/tags: expected {tags: [...]}');
    return json.tags.map((t) => (typeof t?.name === 'string' ? t.name : '')).filter((n) => LOCAL_TAG_PATTERN.test(n));
  }

  /** The local results under `tag`, in the order the service lists them (`GET /local/tags/{tag}`). */
  async tagged(tag: string): Promise<Array<StoredObject & { filename: string }>> {
    if (!LOCAL_TAG_PATTERN.test(tag)) throw new BadRequestError(`storage local tag ${JSON.stringify(tag)}: malformed`);
    const res = await this.get(`/local/tags/${tag}`);
    await expectStatus(res, [200], `storage GET local/tags/${tag}`);
    const json = (await readJson(res, 16 * 1024 * 1024, `storage local/tags/${tag}`)) as { results?: Array<{ filename?: unknown; url?: unknown }> };
    if (!Array.isArray(json?.results)) throw new FlameError(`storage local/tags/${tag}: expected {results: [...]}`);
    return json.results.map((r) => {
      const url = typeof r?.url === 'string' ? r.url : '';
      return { filename: typeof r?.filename === 'string' ? r.filename.slice(0, 255) : '', url, objectId: objectIdOf(url, 'local') };
    });
  }

  private async stored(res: HttpResponse, idField: string | undefined, area: string): Promise<StoredObject> {
    const json = (await readJson(res, 64 * 1024, `storage ${area} upload`)) as Record<string, unknown>;
    const url = typeof json?.url === 'string' ? json.url : '';
    const objectId = idField && typeof json[idField] === 'string' ? (json[idField] as string) : objectIdOf(url, area);
    checkObjectId(objectId);
    return { objectId, url };
  }

  private get(path: string): Promise<HttpResponse> {
    return requestWithRetries(
      this.http,
      () => ({ method: 'GET', url: `${this.base}${path}`, headers: { ...this.options.token.authorization(), accept: 'application/json' }, timeoutMs: this.timeoutMs }),
      this.retry,
    );
  }

  private async download(path: string, what: string): Promise<Readable> {
    const res = await requestWithRetries(
      this.http,
      () => ({ method: 'GET', url: `${this.base}${path}`, headers: this.options.token.authorization(), timeoutMs: this.timeoutMs }),
      this.retry,
    );
    await expectStatus(res, [200], `storage GET ${what}`);
    return res.body;
  }

  /** One multipart PUT, streamed; a stream body cannot be replayed, so it is sent once. */
  private async upload(path: string, body: Uint8Array | Readable, options: UploadOptions, fields: Record<string, string>): Promise<HttpResponse> {
    if (!FILENAME_PATTERN.test(options.filename)) {
      throw new BadRequestError(`storage upload filename ${JSON.stringify(options.filename)}: expected 1-200 letters, digits, '.', '_' or '-'`);
    }
    const boundary = `flame-sdk-${randomBytes(16).toString('hex')}`;
    const make = () => ({
      method: 'PUT' as const,
      url: `${this.base}${path}`,
      headers: { ...this.options.token.authorization(), 'content-type': `multipart/form-data; boundary=${boundary}`, accept: 'application/json' },
      body: multipartStream(boundary, fields, options, body),
      timeoutMs: this.timeoutMs,
    });
    if (body instanceof Readable) return requestWithRetries(this.http, make, { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 });
    return requestWithRetries(this.http, make, this.retry);
  }
}

/** The multipart form: the text fields, then the file part streamed from `body`. */
function multipartStream(boundary: string, fields: Record<string, string>, options: UploadOptions, body: Uint8Array | Readable): Readable {
  const counter = progressCounter(options.onProgress);
  async function* parts(): AsyncGenerator<Buffer> {
    for (const [name, value] of Object.entries(fields)) {
      yield Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
    }
    yield Buffer.from(
      `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${options.filename}"\r\ncontent-type: ${options.contentType ?? 'application/octet-stream'}\r\n\r\n`,
    );
    const source = body instanceof Readable ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
    for await (const chunk of source.pipe(counter)) yield chunk as Buffer;
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const out = Readable.from(parts(), { objectMode: false });
  // An error of the caller's stream must fail the upload, not hang it.
  if (body instanceof Readable) body.once('error', (e) => out.destroy(e));
  return out;
}

function checkObjectId(id: string): void {
  if (typeof id !== 'string' || !OBJECT_ID_PATTERN.test(id)) throw new BadRequestError(`storage object id ${JSON.stringify(id)?.slice(0, 60)}: expected a UUID`);
}

/** The object id at the end of a service URL `…/{area}/{id}` (python SDK reads it the same way). */
function objectIdOf(url: string, area: string): string {
  const tail = url.split(`/${area}/`).pop() ?? '';
  return tail.split(/[?#]/)[0];
}
