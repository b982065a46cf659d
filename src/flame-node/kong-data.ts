/**
 * A FLAME node's data sources, reached through Kong behind the node's nginx: the project's sources
 * are listed by the hub adapter (`GET /hub-adapter/kong/datastore/{project}`, Keycloak token), and
 * each is read at `/kong/{name}/fhir/…` (a FHIR server) or `/kong/{name}/s3/…` (an S3 bucket), with
 * `DATA_SOURCE_TOKEN` as Kong's `apikey` header. Both clients implement the data port, so analyses
 * read them as they read configured sources. Everything the sources answer is read within bounds;
 * the apikey is only ever sent to Kong.
 */
import type { Readable } from 'node:stream';
import { BadRequestError, FlameError, NotFoundError } from '../errors.js';
import { assertSafeKey } from '../results/keys.js';
import type { DataEntry, FhirDataClient, FhirResource, FileDataClient } from '../data/port.js';
import { DEFAULT_RETRY, expectStatus, axiosHttpClient, readBounded, readJson, requestWithRetries, type HttpClient, type RetryPolicy } from './http.js';
import type { TokenHolder } from './token.js';

/** One data source of the project as the hub adapter lists it (a Kong service). */
export interface KongDataSource {
  /** Kong's id of it. */
  id: string;
  /** Its name: the path segment under `/kong/`. */
  name: string;
  /** Kong route paths. */
  paths: string[];
  /** `fhir` or `s3` when its paths say so, else undefined. */
  type?: 'fhir' | 's3';
}

/** Options of {@link FlameNodeDataApi}. */
export interface FlameNodeDataOptions {
  /** Base URL of the node's nginx, e.g. `http://nginx-<DEPLOYMENT_NAME>`. */
  nginxUrl: string;
  /** The project (`PROJECT_ID`). */
  projectId: string;
  /** The Keycloak token (for the hub adapter's listing). */
  token: TokenHolder;
  /** `DATA_SOURCE_TOKEN`: Kong's apikey. */
  dataSourceToken: string;
  /** HTTP transport. */
  http?: HttpClient;
  /** Time budget per request in ms (default 30000). */
  requestTimeoutMs?: number;
  /** Retries on 5xx and timeouts. */
  retry?: RetryPolicy;
  /** Largest JSON or XML answer read whole, in bytes (default 32 MiB). */
  maxDocumentBytes?: number;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{0,63}$/;
const RESOURCE_ID = /^[A-Za-z0-9.-]{1,64}$/;

/** The project's data sources through Kong. */
export class FlameNodeDataApi {
  private readonly http: HttpClient;
  private readonly nginx: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly maxDoc: number;

  /** @param options where nginx is, the project and the tokens */
  constructor(private readonly options: FlameNodeDataOptions) {
    this.http = options.http ?? axiosHttpClient;
    this.nginx = options.nginxUrl.replace(/\/+$/, '');
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.maxDoc = options.maxDocumentBytes ?? 32 * 1024 * 1024;
  }

  /** The project's sources (`GET /hub-adapter/kong/datastore/{project}` → `{data: [...]}`). */
  async sources(): Promise<KongDataSource[]> {
    const url = `${this.nginx}/hub-adapter/kong/datastore/${encodeURIComponent(this.options.projectId)}`;
    const res = await requestWithRetries(this.http, () => ({ method: 'GET', url, headers: { ...this.options.token.authorization(), accept: 'application/json' }, timeoutMs: this.timeoutMs }), this.retry);
    await expectStatus(res, [200], `hub adapter datastores of project ${this.options.projectId}`);
    const json = (await readJson(res, 4 * 1024 * 1024, 'hub adapter datastores')) as { data?: unknown };
    if (!Array.isArray(json?.data)) throw new FlameError('hub adapter datastores: expected {data: [...]}');
    return json.data.flatMap((s: Record<string, unknown>) => {
      if (typeof s?.name !== 'string' || !NAME_PATTERN.test(s.name)) return [];
      const paths = Array.isArray(s.paths) ? s.paths.filter((p): p is string => typeof p === 'string').slice(0, 32) : [];
      const type = paths.some((p) => /\/fhir\/?$/.test(p)) ? 'fhir' : paths.some((p) => /\/s3\/?$/.test(p)) ? 's3' : undefined;
      return [{ id: typeof s.id === 'string' ? s.id.slice(0, 128) : s.name, name: s.name, paths, ...(type ? { type } : {}) } as KongDataSource];
    });
  }

  /** The FHIR client of source `name` (`/kong/{name}/fhir`). */
  fhir(name: string): FhirDataClient {
    return new KongFhirClient(this.sourceBase(name, 'fhir'), this.request.bind(this), this.maxDoc);
  }

  /** The file client of source `name` (`/kong/{name}/s3`). */
  files(name: string): FileDataClient {
    return new KongS3Client(this.sourceBase(name, 's3'), this.request.bind(this), this.maxDoc);
  }

  private sourceBase(name: string, kind: 'fhir' | 's3'): string {
    if (!NAME_PATTERN.test(name)) throw new BadRequestError(`data source name ${JSON.stringify(name)}: expected letters, digits, '_', '.', '-'`);
    return `${this.nginx}/kong/${name}/${kind}`;
  }

  /** A GET to Kong with the apikey; the URL must be below nginx's `/kong/` (so the key never leaves). */
  private async request(url: string, what: string): Promise<Readable> {
    if (!url.startsWith(`${this.nginx}/kong/`)) throw new BadRequestError(`${what}: refusing to send the data source token to ${url}`);
    const res = await requestWithRetries(this.http, () => ({ method: 'GET', url, headers: { apikey: this.options.dataSourceToken, accept: 'application/json, application/fhir+json, application/xml, */*' }, timeoutMs: this.timeoutMs }), this.retry);
    if (res.status === 404 || res.status === 410) {
      res.body.resume();
      throw new NotFoundError(`${what}: not found (${res.status})`);
    }
    await expectStatus(res, [200], what);
    return res.body;
  }
}

type Get = (url: string, what: string) => Promise<Readable>;

/** FHIR through Kong: searches with paging, reads, attachments. */
class KongFhirClient implements FhirDataClient {
  readonly type = 'fhir' as const;

  constructor(
    private readonly base: string,
    private readonly get: Get,
    private readonly maxDoc: number,
  ) {}

  async search(resourceType: string, params: Record<string, string | number> = {}): Promise<FhirResource> {
    checkType(resourceType);
    const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
    return this.bundle(`${this.base}/${resourceType}${q ? `?${q}` : ''}`, `FHIR search ${resourceType}`);
  }

  async *searchAll(resourceType: string, params: Record<string, string | number> = {}): AsyncIterable<FhirResource> {
    let bundle = await this.search(resourceType, params);
    const seen = new Set<string>();
    while (true) {
      for (const e of (bundle.entry as Array<{ resource?: FhirResource; search?: { mode?: string } }> | undefined) ?? []) {
        if (e?.resource && e.search?.mode !== 'outcome') yield e.resource;
      }
      const next = ((bundle.link as Array<{ relation?: string; url?: string }> | undefined) ?? []).find((l) => l?.relation === 'next')?.url;
      if (typeof next !== 'string') return;
      const url = this.rebase(next);
      if (seen.has(url)) throw new FlameError(`FHIR search ${resourceType} through Kong: next link ${url} repeats (paging loop)`);
      seen.add(url);
      bundle = await this.bundle(url, `FHIR search ${resourceType} (next page)`);
    }
  }

  async read(resourceType: string, id: string): Promise<FhirResource> {
    checkType(resourceType);
    if (!RESOURCE_ID.test(id)) throw new BadRequestError(`FHIR id ${JSON.stringify(id)} is not a valid id`);
    const r = await this.json(`${this.base}/${resourceType}/${id}`, `FHIR read ${resourceType}/${id}`);
    return r;
  }

  async attachmentBytes(attachment: { data?: string; url?: string }): Promise<Uint8Array> {
    if (typeof attachment?.data === 'string') return new Uint8Array(Buffer.from(attachment.data, 'base64'));
    if (typeof attachment?.url !== 'string') throw new BadRequestError('FHIR attachment: neither data nor url');
    const url = /^https?:\/\//.test(attachment.url) ? this.rebase(attachment.url) : `${this.base}/${attachment.url.replace(/^\/+/, '')}`;
    return new Uint8Array(await readBounded(await this.get(url, `FHIR attachment ${attachment.url}`), this.maxDoc, `FHIR attachment ${attachment.url}`));
  }

  /**
   * A server link through Kong: the FHIR server writes links with its own base URL, which the pod
   * cannot reach; its path after `/fhir` and its query are put on Kong's base instead.
   */
  private rebase(link: string): string {
    let u: URL;
    try {
      u = new URL(link);
    } catch {
      throw new FlameError(`FHIR link ${JSON.stringify(link.slice(0, 100))} is not a URL`);
    }
    if (`${u.origin}${u.pathname}`.startsWith(this.base)) return u.toString();
    const at = u.pathname.lastIndexOf('/fhir');
    const rest = at >= 0 ? u.pathname.slice(at + '/fhir'.length) : '';
    if (rest.split('/').some((s) => s === '..')) throw new FlameError(`FHIR link ${link}: path climbs out of the server`);
    return `${this.base}${rest}${u.search}`;
  }

  private async json(url: string, what: string): Promise<FhirResource> {
    const text = (await readBounded(await this.get(url, what), this.maxDoc, what)).toString('utf8');
    let r: unknown;
    try {
      r = JSON.parse(text);
    } catch {
      throw new FlameError(`${what}: answer is not JSON`);
    }
    if (!r || typeof r !== 'object' || typeof (r as FhirResource).resourceType !== 'string') throw new FlameError(`${what}: answer is not a FHIR resource`);
    return r as FhirResource;
  }

  private async bundle(url: string, what: string): Promise<FhirResource> {
    const b = await this.json(url, what);
    if (b.resourceType !== 'Bundle') throw new FlameError(`${what}: expected a Bundle, got ${b.resourceType}`);
    return b;
  }
}

function checkType(t: string): void {
  if (!RESOURCE_TYPE.test(t)) throw new BadRequestError(`FHIR resource type ${JSON.stringify(t)} is not valid`);
}

/** An S3 bucket through Kong: ListObjects XML, objects by key. */
class KongS3Client implements FileDataClient {
  readonly type = 's3' as const;

  constructor(
    private readonly base: string,
    private readonly get: Get,
    private readonly maxDoc: number,
  ) {}

  async list(prefix = ''): Promise<DataEntry[]> {
    const out: DataEntry[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const q = new URLSearchParams({ 'list-type': '2', ...(prefix ? { prefix } : {}), ...(token ? { 'continuation-token': token } : {}) });
      const what = `S3 listing through Kong (${this.base})`;
      const xml = (await readBounded(await this.get(`${this.base}?${q}`, what), this.maxDoc, what)).toString('utf8');
      for (const block of xml.match(/<Contents>[\s\S]*?<\/Contents>/g) ?? []) {
        const key = unxml(/<Key>([\s\S]*?)<\/Key>/.exec(block)?.[1] ?? '');
        if (!key || key.endsWith('/') || !key.startsWith(prefix)) continue;
        out.push({ key, size: Number(/<Size>(\d+)<\/Size>/.exec(block)?.[1] ?? 0), lastModified: /<LastModified>([^<]+)<\/LastModified>/.exec(block)?.[1] ?? '' });
      }
      const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
      token = /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(xml)?.[1];
      if (!truncated || !token) break;
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async getBytes(key: string): Promise<Uint8Array> {
    return new Uint8Array(await readBounded(await this.getStream(key), this.maxDoc, `S3 object ${JSON.stringify(key)}`));
  }

  async getStream(key: string): Promise<Readable> {
    assertSafeKey(key, 'S3 key');
    return this.get(`${this.base}/${key.split('/').map(encodeURIComponent).join('/')}`, `S3 object ${JSON.stringify(key)}`);
  }
}

function unxml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
