/**
 * FhirClient against a real FHIR server (Medplum's in-memory repository over HTTP), plus small
 * misbehaving HTTP servers for the paging guards.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { FhirClient } from '../../src/data/fhir.js';
import type { FhirResource } from '../../src/data/port.js';
import { BadRequestError, InternalError, NotFoundError, UnauthorizedError } from '../../src/errors.js';
import { startFhirServer, type FhirTestServer } from '../helpers/fhir-server.js';

const TLS_DIR = path.join(process.cwd(), 'test', 'fixtures', 'tls');

async function collect(it: AsyncIterable<FhirResource>): Promise<FhirResource[]> {
  const out: FhirResource[] = [];
  for await (const r of it) out.push(r);
  return out;
}

/**
 * A plain HTTP server answering every request with `answer(url, origin)` as FHIR JSON, with
 * `status(url)` as the HTTP status (default 200).
 */
async function startRawServer(
  answer: (url: URL, origin: string) => unknown,
  status: (url: URL) => number = () => 200,
): Promise<{ origin: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  let origin = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    hits.push(url.pathname + url.search);
    res.writeHead(status(url), { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(answer(url, origin)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    hits,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

describe('FhirClient on a FHIR server', () => {
  let server: FhirTestServer;
  let png: Buffer;
  let client: FhirClient;

  beforeAll(async () => {
    server = await startFhirServer();
    client = new FhirClient({ baseUrl: server.baseUrl });
    const patients = Array.from({ length: 25 }, (_, i) => ({
      resourceType: 'Patient',
      id: `p${String(i).padStart(2, '0')}`,
      gender: i % 2 ? 'male' : 'female',
    }));
    const observations = Array.from({ length: 60 }, (_, i) => ({
      resourceType: 'Observation',
      id: `o${String(i).padStart(2, '0')}`,
      status: 'final',
      code: { text: 'heart rate' },
      subject: { reference: `Patient/p${String(i % 25).padStart(2, '0')}` },
      valueQuantity: { value: 60 + i, unit: '/min' },
    }));
    png = await sharp({ create: { width: 5, height: 3, channels: 3, background: { r: 200, g: 10, b: 30 } } }).png().toBuffer();
    await server.seed([
      ...patients,
      ...observations,
      { resourceType: 'Media', id: 'img1', status: 'completed', content: { contentType: 'image/png', data: png.toString('base64') } },
      { resourceType: 'Binary', id: 'bin1', contentType: 'image/png', data: png.toString('base64') },
    ]);
  });

  afterAll(async () => {
    await server?.close();
  });

  test('searchAll follows next links page by page and yields every resource once', async () => {
    const before = server.requests.length;
    const patients = await collect(client.searchAll('Patient', { _count: 10 }));
    expect(patients.map((p) => p.id)).toEqual(Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`));
    // 25 patients at 10 per page: exactly three GETs, the later two with the server's _offset.
    const pages = server.requests.slice(before);
    expect(pages).toHaveLength(3);
    expect(pages[1]).toContain('_offset=10');
    expect(pages[2]).toContain('_offset=20');

    const observations = await collect(client.searchAll('Observation', { _count: 7 }));
    expect(observations).toHaveLength(60);
    expect(new Set(observations.map((o) => o.id)).size).toBe(60);
    expect(observations.every((o) => o.resourceType === 'Observation')).toBe(true);
  });

  test('searchAll passes search parameters through to every page', async () => {
    const male = await collect(client.searchAll('Patient', { gender: 'male', _count: 4 }));
    expect(male).toHaveLength(12);
    expect(male.every((p) => p.gender === 'male')).toBe(true);
  });

  test('searchAll reads the next page only when the consumer asks for it', async () => {
    const before = server.requests.length;
    const it = client.searchAll('Observation', { _count: 5 })[Symbol.asyncIterator]();
    for (let i = 0; i < 5; i++) await it.next();
    expect(server.requests.length - before).toBe(1);
    await it.next();
    expect(server.requests.length - before).toBe(2);
    await it.return?.();
  });

  test('search returns one page as a Bundle with the total', async () => {
    const bundle = await client.search('Observation', { _count: 10 });
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.total).toBe(60);
    expect((bundle.entry as unknown[]).length).toBe(10);
  });

  test('read returns one resource; an unknown id is a NotFoundError naming it', async () => {
    const p = await client.read('Patient', 'p07');
    expect(p).toMatchObject({ resourceType: 'Patient', id: 'p07', gender: 'male' });
    const err = await client.read('Patient', 'nobody').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('Patient/nobody');
    expect((err as Error).message).toContain('404');
  });

  test('malformed resource types and ids are refused before any request', async () => {
    await expect(client.read('Patient', '../Observation/o1')).rejects.toThrow(BadRequestError);
    await expect(client.read('patient;drop', 'p1')).rejects.toThrow(/patient;drop/);
  });

  test('an inline PNG attachment is returned byte-exact', async () => {
    const media = await client.read('Media', 'img1');
    const bytes = await client.attachmentBytes(media.content as { data?: string });
    expect(Buffer.from(bytes).equals(png)).toBe(true);
    const meta = await sharp(bytes).metadata();
    expect([meta.width, meta.height]).toEqual([5, 3]);
  });

  test('an attachment url is fetched from the server (relative and same-origin absolute)', async () => {
    const rel = await client.attachmentBytes({ url: 'Binary/bin1' });
    expect(Buffer.from(rel).equals(png)).toBe(true);
    const abs = await client.attachmentBytes({ url: `${server.baseUrl}/Binary/bin1` });
    expect(Buffer.from(abs).equals(png)).toBe(true);
    await expect(client.attachmentBytes({ url: 'Binary/missing' })).rejects.toThrow(NotFoundError);
  });

  test('attachment urls on another origin and bad attachments are refused', async () => {
    await expect(client.attachmentBytes({ url: 'http://example.org/fhir/Binary/bin1' })).rejects.toThrow(/example\.org/);
    await expect(client.attachmentBytes({})).rejects.toThrow(BadRequestError);
    await expect(client.attachmentBytes({ data: 'not base64!' })).rejects.toThrow(/base64/);
  });
});

describe('FhirClient auth, TLS and failures', () => {
  test('the bearer token is sent; a wrong one is an UnauthorizedError', async () => {
    const server = await startFhirServer({ token: 's3cret' });
    try {
      await server.seed([{ resourceType: 'Patient', id: 'a' }]);
      const good = new FhirClient({ baseUrl: server.baseUrl, token: 's3cret' });
      expect((await good.read('Patient', 'a')).id).toBe('a');
      expect(await good.attachmentBytes({ data: 'AQID' })).toEqual(new Uint8Array([1, 2, 3]));
      const bad = new FhirClient({ baseUrl: server.baseUrl, token: 'wrong' });
      const err = await bad.read('Patient', 'a').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnauthorizedError);
      expect((err as Error).message).toContain('401');
    } finally {
      await server.close();
    }
  });

  test('self-signed TLS fails by default and works with insecure (with a warning)', async () => {
    const tls = {
      key: fs.readFileSync(path.join(TLS_DIR, 'localhost.key')),
      cert: fs.readFileSync(path.join(TLS_DIR, 'localhost.crt')),
    };
    const server = await startFhirServer({ tls });
    try {
      await server.seed([{ resourceType: 'Patient', id: 'tls1' }]);
      expect(server.baseUrl.startsWith('https://')).toBe(true);
      const strict = new FhirClient({ baseUrl: server.baseUrl });
      const err = await strict.read('Patient', 'tls1').catch((e: unknown) => e);
      expect((err as Error).message).toContain(server.baseUrl);
      expect((err as Error).message).toContain('insecure');
      const warnings: string[] = [];
      const insecure = new FhirClient({ baseUrl: server.baseUrl, insecure: true, onWarning: (m) => warnings.push(m) });
      expect((await insecure.read('Patient', 'tls1')).id).toBe('tls1');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(server.baseUrl);
      await insecure.close();
    } finally {
      await server.close();
    }
  });

  test('an unreachable server is an error naming the base URL', async () => {
    const server = await startFhirServer();
    const baseUrl = server.baseUrl;
    await server.close();
    const client = new FhirClient({ baseUrl });
    const err = await client.read('Patient', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as Error).message).toContain(baseUrl);
  });

  test('a next link seen twice stops the search as a paging loop', async () => {
    const raw = await startRawServer((_url, origin) => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: { resourceType: 'Patient', id: 'loop' } }],
      link: [{ relation: 'next', url: `${origin}/fhir/Patient?page=2` }],
    }));
    try {
      const client = new FhirClient({ baseUrl: `${raw.origin}/fhir` });
      const seen: string[] = [];
      const err = await (async () => {
        for await (const p of client.searchAll('Patient')) seen.push(p.id ?? '');
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InternalError);
      expect((err as Error).message).toContain('page=2');
      expect(seen).toEqual(['loop', 'loop']);
      expect(raw.hits).toHaveLength(2);
    } finally {
      await raw.close();
    }
  });

  test('a next link to another host is refused and never requested', async () => {
    const raw = await startRawServer(() => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: { resourceType: 'Patient', id: 'first' } }],
      link: [{ relation: 'next', url: 'http://attacker.invalid/steal?page=2' }],
    }));
    try {
      const client = new FhirClient({ baseUrl: `${raw.origin}/fhir`, token: 'tok' });
      const err = await (async () => {
        for await (const _ of client.searchAll('Patient')) void _;
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InternalError);
      expect((err as Error).message).toContain('attacker.invalid');
      expect(raw.hits).toHaveLength(1);
    } finally {
      await raw.close();
    }
  });

  test('a relative next link is resolved against the base URL', async () => {
    const raw = await startRawServer((url) => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: { resourceType: 'Patient', id: url.searchParams.get('page') ?? '1' } }],
      link: url.searchParams.get('page') ? [] : [{ relation: 'next', url: 'Patient?page=2' }],
    }));
    try {
      const client = new FhirClient({ baseUrl: `${raw.origin}/fhir` });
      const ids = (await collect(client.searchAll('Patient'))).map((p) => p.id);
      expect(ids).toEqual(['1', '2']);
      expect(raw.hits[1]).toBe('/fhir/Patient?page=2');
    } finally {
      await raw.close();
    }
  });

  test('a 400 with an OperationOutcome is a BadRequestError carrying its text', async () => {
    const server = await startFhirServer();
    try {
      const client = new FhirClient({ baseUrl: server.baseUrl });
      const err = await client.search('Patient', { birthdate: 'notadate' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as Error).message).toMatch(/search Patient.*HTTP 400.*notadate/);
    } finally {
      await server.close();
    }
  });

  test('a 500 is an InternalError; a JSON Binary answer to an attachment url is decoded', async () => {
    const raw = await startRawServer(
      (url) =>
        url.pathname.includes('Binary')
          ? { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('hello').toString('base64') }
          : { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: 'db down' }] },
      (url) => (url.pathname.includes('Binary') ? 200 : 500),
    );
    try {
      const client = new FhirClient({ baseUrl: `${raw.origin}/fhir` });
      const err = await client.read('Observation', 'o1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InternalError);
      expect((err as Error).message).toMatch(/Observation\/o1.*HTTP 500.*db down/);
      const bytes = await client.attachmentBytes({ url: 'Binary/b1' });
      expect(Buffer.from(bytes).toString()).toBe('hello');
    } finally {
      await raw.close();
    }
  });

  test('a base URL that is not http(s) is refused naming it', () => {
    expect(() => new FhirClient({ baseUrl: 'ftp://x/fhir' })).toThrow(/ftp:\/\/x\/fhir/);
    expect(() => new FhirClient({ baseUrl: 'nope' })).toThrow(BadRequestError);
  });
});
