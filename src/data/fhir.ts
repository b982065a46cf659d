/**
 * The FHIR data source: a FHIR R4 REST server read through `fhir-kit-client`.
 * Searches are paged by following the Bundle's `next` links one page at a time; attachments are
 * decoded inline or fetched from the server's own origin only, so the token never leaves it.
 */
import { Client } from 'fhir-kit-client';
import { Agent, type Dispatcher } from 'undici';
import { BadRequestError, FlameError, InternalError, NotFoundError, TimeoutError, UnauthorizedError } from '../errors.js';
import type { FhirDataClient, FhirResource } from './port.js';

/** How to reach a FHIR server. */
export interface FhirClientOptions {
  /** The server's base URL, e.g. `https://fhir.example.org/fhir`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Accept self-signed TLS certificates (for test and on-premise servers); warns once. */
  insecure?: boolean;
  /** Where the insecure-TLS warning goes; default `console.warn`. */
  onWarning?: (message: string) => void;
}

/** What fhir-kit-client attaches to HTTP errors. */
interface HttpError {
  response?: { status?: number; data?: unknown };
}

interface BundleLink {
  relation?: string;
  url?: string;
}

interface BundleEntry {
  resource?: FhirResource;
  search?: { mode?: string };
}

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
// FHIR R4 id: letters, digits, '-' and '.', 1 to 64 characters.
const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** The diagnostics text of an OperationOutcome body, if the server sent one. */
function outcomeText(data: unknown): string {
  if (!data || typeof data !== 'object') return '';
  const issues = (data as { issue?: Array<{ diagnostics?: string; details?: { text?: string } }> }).issue;
  if (!Array.isArray(issues)) return '';
  const texts = issues.map((i) => i.diagnostics ?? i.details?.text).filter((t): t is string => Boolean(t));
  return texts.length ? `: ${texts.join('; ')}` : '';
}

/** A network error's code (ECONNREFUSED, ENOTFOUND, CERT_...), looking through `cause`. */
function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A FHIR data source client over `fhir-kit-client`. */
export class FhirClient implements FhirDataClient {
  readonly type = 'fhir' as const;
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly client: Client;
  private readonly token?: string;
  private readonly dispatcher?: Dispatcher;

  constructor(options: FhirClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new BadRequestError(`FHIR baseUrl ${JSON.stringify(options.baseUrl)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BadRequestError(`FHIR baseUrl ${JSON.stringify(options.baseUrl)} must be http(s)`);
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.origin = url.origin;
    this.token = options.token;
    if (options.insecure) {
      const warn = options.onWarning ?? ((m: string) => console.warn(m));
      warn(`FHIR source ${this.baseUrl}: TLS certificate verification is OFF (insecure); use only with trusted test servers`);
      this.dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    }
    this.client = new Client({
      baseUrl: this.baseUrl,
      bearerToken: options.token,
      // fhir-kit-client passes requestOptions into the fetch Request; undici reads `dispatcher`.
      requestOptions: this.dispatcher ? { dispatcher: this.dispatcher } : {},
    });
  }

  /** One page of a search, as the server returns it (a Bundle). */
  async search(resourceType: string, params: Record<string, string | number> = {}): Promise<FhirResource> {
    checkResourceType(resourceType);
    const bundle = await this.call(`search ${resourceType}`, () =>
      this.client.search({ resourceType, searchParams: params }),
    );
    return asBundle(bundle, `search ${resourceType}`);
  }

  /**
   * Every resource of the search, following `next` links one page at a time. Entries with
   * `search.mode = "outcome"` (server warnings) are skipped. Refuses a `next` link to another
   * origin (the token would leak) and a `next` link seen before (a paging loop).
   */
  async *searchAll(resourceType: string, params: Record<string, string | number> = {}): AsyncIterable<FhirResource> {
    let bundle = await this.search(resourceType, params);
    const seen = new Set<string>();
    while (true) {
      for (const entry of (bundle.entry as BundleEntry[] | undefined) ?? []) {
        if (entry.resource && entry.search?.mode !== 'outcome') yield entry.resource;
      }
      const next = ((bundle.link as BundleLink[] | undefined) ?? []).find((l) => l.relation === 'next')?.url;
      if (!next) return;
      const nextUrl = this.pageUrl(next, resourceType);
      if (seen.has(nextUrl)) {
        throw new InternalError(`FHIR search ${resourceType} at ${this.baseUrl}: next link ${nextUrl} repeats (paging loop)`);
      }
      seen.add(nextUrl);
      const page = await this.call(`search ${resourceType} (page ${nextUrl})`, () =>
        this.client.nextPage({ bundle: { resourceType: 'Bundle', link: [{ relation: 'next', url: nextUrl }] } }) ??
          Promise.reject(new InternalError('no next page')),
      );
      bundle = asBundle(page, `search ${resourceType}`);
    }
  }

  /** One resource by type and id; NotFoundError names both when the server answers 404/410. */
  async read(resourceType: string, id: string): Promise<FhirResource> {
    checkResourceType(resourceType);
    if (typeof id !== 'string' || !RESOURCE_ID.test(id)) {
      throw new BadRequestError(`FHIR id ${JSON.stringify(id)} is not a valid id (letters, digits, '-', '.'; 1-64 chars)`);
    }
    const resource = await this.call(`read ${resourceType}/${id}`, () => this.client.read({ resourceType, id }));
    return resource as FhirResource;
  }

  /**
   * The raw bytes of an attachment: inline base64 `data`, else `url` fetched with the token.
   * Relative URLs resolve against the base URL; absolute ones must be on the base URL's origin.
   * A FHIR JSON `Binary` answer is decoded to its content.
   */
  async attachmentBytes(attachment: { data?: string; url?: string }): Promise<Uint8Array> {
    if (typeof attachment.data === 'string') {
      if (!BASE64.test(attachment.data)) throw new BadRequestError('attachment.data is not base64');
      return new Uint8Array(Buffer.from(attachment.data, 'base64'));
    }
    if (typeof attachment.url !== 'string' || attachment.url === '') {
      throw new BadRequestError('attachment has neither data nor url');
    }
    const url = this.sameOriginUrl(attachment.url, `attachment.url ${JSON.stringify(attachment.url)}`);
    const what = `attachment ${url}`;
    const headers: Record<string, string> = { accept: '*/*' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const init = { headers, dispatcher: this.dispatcher } as RequestInit;
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (err) {
      throw this.mapError(what, err);
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (!res.ok) {
      let data: unknown;
      try {
        data = JSON.parse(body.toString('utf8'));
      } catch {
        data = undefined;
      }
      throw this.mapError(what, { response: { status: res.status, data } } satisfies HttpError);
    }
    const contentType = res.headers.get('content-type') ?? '';
    if (/json/.test(contentType)) {
      const json = JSON.parse(body.toString('utf8')) as { resourceType?: string; data?: string };
      if (json.resourceType === 'Binary') return this.attachmentBytes({ data: json.data ?? '' });
    }
    return new Uint8Array(body);
  }

  /** Release the insecure-TLS connection pool, if any. */
  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** Resolve `raw` against the base URL and refuse another origin. */
  private sameOriginUrl(raw: string, what: string): string {
    let url: URL;
    try {
      url = new URL(raw, `${this.baseUrl}/`);
    } catch {
      throw new BadRequestError(`${what} is not a URL`);
    }
    if (url.origin !== this.origin) {
      throw new BadRequestError(`${what} is on ${url.origin}, not on the FHIR server's origin ${this.origin}`);
    }
    return url.toString();
  }

  private pageUrl(next: string, resourceType: string): string {
    try {
      return this.sameOriginUrl(next, `next link of search ${resourceType}`);
    } catch (err) {
      // A foreign next link is the server's fault, not the caller's.
      throw new InternalError((err as Error).message);
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(what, err);
    }
  }

  /** HTTP status → error class; no status → the server is unreachable. */
  private mapError(what: string, err: unknown): FlameError {
    if (err instanceof FlameError) return err;
    const status = (err as HttpError)?.response?.status;
    if (typeof status !== 'number') {
      const code = networkCode(err) ?? (err as Error)?.message ?? String(err);
      const hint = /CERT|SELF_SIGNED|TLS|SSL/i.test(code) ? '; for a self-signed certificate set insecure: true' : '';
      return new InternalError(`FHIR server ${this.baseUrl}: connection failed for ${what} (${code})${hint}`, { cause: err });
    }
    const msg = `FHIR ${what} at ${this.baseUrl}: HTTP ${status}${outcomeText((err as HttpError).response?.data)}`;
    if (status === 404 || status === 410) return new NotFoundError(msg, { cause: err });
    if (status === 401 || status === 403) return new UnauthorizedError(msg, { cause: err });
    if (status === 408 || status === 504) return new TimeoutError(msg, { cause: err });
    if (status >= 400 && status < 500) return new BadRequestError(msg, { cause: err });
    return new InternalError(msg, { cause: err });
  }
}

function checkResourceType(resourceType: string): void {
  if (typeof resourceType !== 'string' || !RESOURCE_TYPE.test(resourceType)) {
    throw new BadRequestError(`FHIR resource type ${JSON.stringify(resourceType)} is not a resource type name`);
  }
}

function asBundle(value: unknown, what: string): FhirResource {
  const v = value as FhirResource | undefined;
  if (!v || v.resourceType !== 'Bundle') {
    throw new InternalError(`FHIR ${what}: expected a Bundle, got ${JSON.stringify(v?.resourceType ?? typeof v)}`);
  }
  return v;
}
