/**
 * Contract of the storage-service client with node-result-service, on the recording double: paths,
 * multipart fields, tokens, the encryption rule of intermediate results, status handling, retries,
 * and that uploads stream (a plain server proves the bytes leave before the source has ended).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../../src/errors.js';
import { FlameStorageClient } from '../../src/flame-node/storage.js';
import { TokenHolder } from '../../src/flame-node/token.js';
import { startFlameNodeDouble, type FlameNodeDouble } from '../helpers/flame-node-double.js';

let double: FlameNodeDouble;
const client = (nodeId: string): FlameStorageClient =>
  new FlameStorageClient({ storageUrl: `${double.nginxUrl(nodeId)}/storage`, token: new TokenHolder(double.token(nodeId)), retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });

beforeEach(async () => {
  double = await startFlameNodeDouble({ analysisId: 'an-storage', nodes: [{ nodeId: 'agg', nodeType: 'aggregator' }, { nodeId: 'n1', nodeType: 'default' }, { nodeId: 'n2', nodeType: 'default' }] });
});
afterEach(() => double.close());

async function text(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('FLAME storage client: contract with node-result-service', () => {
  it('submits a final result as a multipart PUT /final/ with the bearer token', async () => {
    await client('agg').putFinal(Buffer.from('mean=4.2'), { filename: 'mean.txt', contentType: 'text/plain' });
    const [req] = double.requestsTo('agg', /^\/storage\/final/, 'PUT');
    expect(req.path).toBe('/storage/final/');
    expect(req.status).toBe(204);
    expect(req.headers.authorization).toBe(`Bearer ${double.token('agg')}`);
    expect(req.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(double.finals.map((f) => [f.filename, f.contentType, f.bytes.toString()])).toEqual([['mean.txt', 'text/plain', 'mean=4.2']]);
  });

  it('sends a local-DP final result with epsilon and sensitivity as form fields', async () => {
    await client('agg').putFinalLocalDp(12.5, { epsilon: 1, sensitivity: 0.5 });
    expect(double.requestsTo('agg', /^\/storage\/final\/localdp$/, 'PUT')).toHaveLength(1);
    expect(double.finals[0].fields).toEqual({ epsilon: '1', sensitivity: '0.5' });
    expect(double.finals[0].bytes.toString()).toBe('12.5');
    await expect(client('agg').putFinalLocalDp(Number.NaN, { epsilon: 1, sensitivity: 1 })).rejects.toBeInstanceOf(BadRequestError);
  });

  it('intermediate results encrypted for one node are read by that node only, naming the sender', async () => {
    const stored = await client('n1').putIntermediate(Buffer.from('for agg'), { filename: 'part.bin', remoteNodeId: 'agg' });
    expect(stored.objectId).toMatch(/^[0-9a-f-]{36}$/);
    expect(double.intermediate.get(stored.objectId)?.fields).toEqual({ remote_node_id: 'agg' });
    expect(await text(await client('agg').getIntermediate(stored.objectId, 'n1'))).toBe('for agg');
    expect(double.requestsTo('agg', /^\/storage\/intermediate\//, 'GET')[0].path).toBe(`/storage/intermediate/${stored.objectId}`);
    await expect(client('n2').getIntermediate(stored.objectId, 'n1')).rejects.toThrow(/400.*cannot be decrypted/);
    const open = await client('n1').putIntermediate(Buffer.from('for all'), { filename: 'open.bin' });
    expect(await text(await client('n2').getIntermediate(open.objectId))).toBe('for all');
    await expect(client('n1').putIntermediate(Buffer.from('x'), { filename: 'x.bin', remoteNodeId: 'stranger' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('local results: tagged uploads are listed under their tag, in order; tags are checked before sending', async () => {
    const c = client('n1');
    const first = await c.putLocal(Buffer.from('one'), { filename: 'a.bin', tag: 'round-1' });
    await c.putLocal(Buffer.from('two'), { filename: 'b.bin', tag: 'round-1' });
    await c.putLocal(Buffer.from('untagged'), { filename: 'c.bin' });
    expect(await c.localTags()).toEqual(['round-1']);
    const tagged = await c.tagged('round-1');
    expect(tagged.map((t) => t.filename)).toEqual(['a.bin', 'b.bin']);
    expect(tagged[0].objectId).toBe(first.objectId);
    expect(await text(await c.getLocal(tagged[1].objectId))).toBe('two');
    const before = double.requests.length;
    await expect(c.putLocal(Buffer.from('x'), { filename: 'x.bin', tag: 'Bad_Tag' })).rejects.toThrow(/local tag "Bad_Tag"/);
    await expect(c.putLocal(Buffer.from('x'), { filename: '../x' })).rejects.toThrow(/filename/);
    expect(double.requests.length).toBe(before);
    // Another node's local results are its own.
    expect(await client('n2').localTags()).toEqual([]);
    await expect(client('n2').getLocal(first.objectId)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('retries reads on 503, but never resends a stream body', async () => {
    const c = client('n1');
    const stored = await c.putLocal(Buffer.from('kept'), { filename: 'k.bin' });
    double.inject({ node: 'n1', method: 'GET', path: /^\/storage\/local\//, status: 503, times: 2 });
    expect(await text(await c.getLocal(stored.objectId))).toBe('kept');
    expect(double.requestsTo('n1', /^\/storage\/local\//, 'GET').map((r) => r.status)).toEqual([503, 503, 200]);
    double.inject({ node: 'n1', method: 'PUT', path: /^\/storage\/local\/$/, status: 503, times: 1 });
    await expect(c.putLocal(Readable.from([Buffer.from('stream')]), { filename: 's.bin' })).rejects.toThrow(/503/);
    expect(double.requestsTo('n1', /^\/storage\/local\/$/, 'PUT').filter((r) => r.status === 503)).toHaveLength(1);
    // A byte body can be sent again.
    double.inject({ node: 'n1', method: 'PUT', path: /^\/storage\/local\/$/, status: 503, times: 1 });
    await expect(c.putLocal(Buffer.from('bytes'), { filename: 'b.bin' })).resolves.toMatchObject({ objectId: expect.any(String) });
  });

  it('streams an upload: the server has bytes before the source has ended', async () => {
    let received = 0;
    const server = http.createServer((req, res) => {
      req.on('data', (c: Buffer) => (received += c.byteLength));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: 'http://x/storage/local/0b6f2c84-5a3e-4b7a-9f0e-2d1c3b4a5e6f' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const c = new FlameStorageClient({ storageUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/storage`, token: new TokenHolder('t0k3n') });
      let seenBeforeEnd = 0;
      const source = Readable.from(
        (async function* () {
          yield Buffer.alloc(1024 * 1024, 1);
          // A client that buffered the body would never send this first MiB: wait for the server to see it.
          const deadline = Date.now() + 10_000;
          while (received < 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
          seenBeforeEnd = received;
          yield Buffer.alloc(1024, 2);
        })(),
      );
      const stored = await c.putLocal(source, { filename: 'big.bin' });
      expect(seenBeforeEnd).toBeGreaterThanOrEqual(1024 * 1024);
      expect(stored.objectId).toBe('0b6f2c84-5a3e-4b7a-9f0e-2d1c3b4a5e6f');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a revoked token is told as UnauthorizedError naming the request', async () => {
    const c = client('n1');
    double.revokeToken('n1', double.token('n1'));
    await expect(c.localTags()).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(c.localTags()).rejects.toThrow(/storage GET local\/tags: answered 401/);
  });
});
