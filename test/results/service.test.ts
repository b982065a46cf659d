import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { tableFromArrays, type Table } from 'apache-arrow';
import { decodeValue, Tensor } from '../../src/codec/index.js';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../../src/errors.js';
import { FsObjectStore } from '../../src/results/fs.js';
import type { ObjectStore } from '../../src/results/port.js';
import { S3ObjectStore } from '../../src/results/s3.js';
import { ResultService, type ResultServiceOptions } from '../../src/results/service.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { generatedStream } from './conformance.js';

interface Stores {
  hub: ObjectStore;
  local: ObjectStore;
  /** A second node's local storage. */
  otherLocal: ObjectStore;
  cleanup(): Promise<void>;
}

async function fsStores(): Promise<Stores> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-results-'));
  return {
    hub: new FsObjectStore(path.join(dir, 'hub')),
    local: new FsObjectStore(path.join(dir, 'local-a')),
    otherLocal: new FsObjectStore(path.join(dir, 'local-b')),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

async function s3Stores(): Promise<Stores> {
  const server: S3TestServer = await startS3Server(['hub', 'node-a', 'node-b']);
  const stores = [
    new S3ObjectStore({ ...server, bucket: 'hub', partSize: 5 * 1024 * 1024 }),
    new S3ObjectStore({ ...server, bucket: 'node-a', prefix: 'local' }),
    new S3ObjectStore({ ...server, bucket: 'node-b', prefix: 'local' }),
  ];
  return {
    hub: stores[0],
    local: stores[1],
    otherLocal: stores[2],
    cleanup: async () => {
      stores.forEach((s) => s.client.destroy());
      await server.close();
    },
  };
}

async function sha256(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

describe.each([
  ['filesystem', fsStores],
  ['S3 (s3rver)', s3Stores],
])('ResultService over %s stores', (_name, makeStores) => {
  let stores: Stores;
  let base: Omit<ResultServiceOptions, 'nodeId' | 'isAggregator' | 'local'>;
  let aggregator: ResultService;
  let analyzer: ResultService;

  beforeAll(async () => {
    stores = await makeStores();
  });
  afterAll(async () => {
    await stores.cleanup();
  });
  beforeEach(() => {
    // a fresh project per test keeps the listings independent
    base = { hub: stores.hub, projectId: `p-${randomUUID().slice(0, 8)}`, analysisId: 'analysis-1' };
    // the aggregator signs final results; both check them against the "roster" of signing keys
    const keys = { 'node-a': generateKeyPairSync('ed25519'), 'node-b': generateKeyPairSync('ed25519') };
    const spki = (k: KeyObject) => k.export({ format: 'der', type: 'spki' }).toString('base64');
    const trust = { aggregatorId: 'node-a', signKeysOf: (n: string) => (n in keys ? [spki(keys[n as 'node-a'].publicKey)] : undefined) };
    aggregator = new ResultService({ ...base, local: stores.local, nodeId: 'node-a', isAggregator: true, aggregatorId: 'node-a', signingKey: keys['node-a'].privateKey, trust });
    analyzer = new ResultService({ ...base, local: stores.otherLocal, nodeId: 'node-b', isAggregator: false, aggregatorId: 'node-a', trust });
  });

  it('lets only the aggregator submit a final result', async () => {
    await expect(analyzer.sendResult({ x: 1 })).rejects.toThrow(UnauthorizedError);
    await expect(analyzer.sendResult({ x: 1 })).rejects.toThrow('only the aggregator "node-a" may submit');
    await expect(analyzer.sendResultStream(Readable.from([Buffer.from('x')]))).rejects.toThrow(UnauthorizedError);
    expect(await aggregator.listResults()).toEqual([]);
  });

  it('round trips a final result and lists it with the hub fields', async () => {
    const before = Date.now();
    const id = await aggregator.sendResult({ accuracy: 0.93, classes: ['cat', 'dog'] }, { name: 'Endergebnis ✓', other: { rounds: 3 } });
    expect(await aggregator.getResult(id)).toEqual({ accuracy: 0.93, classes: ['cat', 'dog'] });
    // any node of the analysis (and the analyst) can read it
    expect(await analyzer.getResult(id)).toEqual({ accuracy: 0.93, classes: ['cat', 'dog'] });
    const [info, ...rest] = await analyzer.listResults();
    expect(rest).toEqual([]);
    expect(info).toEqual({
      result_id: id,
      result_name: 'Endergebnis ✓',
      node_id: 'node-a',
      result_size: expect.any(Number),
      result_time: expect.any(String),
      result_owner: 'node-a',
      other: { rounds: 3 },
      verified: true,
      signed_by: 'node-a',
      verification: 'signature and size verified',
      output_type: 'value',
    });
    expect(info.result_size).toBeGreaterThan(20);
    expect(Date.parse(info.result_time)).toBeGreaterThanOrEqual(before - 2000);
  });

  it('shares intermediate results of every node on the hub, keeping each value kind', async () => {
    const tensor = new Tensor('float64', [2, 2], new Float64Array([1, 2, 3, 4]));
    const idB = await analyzer.saveIntermediateResult(tensor, { name: 'stats-b' });
    const table = tableFromArrays({ n: Int32Array.from([7, 8]) });
    const idA = await aggregator.saveIntermediateResult({ table, note: 'mixed' });
    const fromB = (await aggregator.getIntermediateResult(idB)) as Tensor;
    expect(fromB.shape).toEqual([2, 2]);
    expect([...fromB.data]).toEqual([1, 2, 3, 4]);
    const fromA = (await analyzer.getIntermediateResult(idA)) as { table: Table; note: string };
    expect(fromA.note).toBe('mixed');
    expect([...fromA.table.getChild('n')!.toArray()]).toEqual([7, 8]);
    const listed = await aggregator.listIntermediateResults();
    expect(listed.map((r) => [r.result_id, r.node_id, r.result_owner]).sort()).toEqual(
      [
        [idA, 'node-a', 'node-a'],
        [idB, 'node-b', 'node-b'],
      ].sort(),
    );
    expect(listed.find((r) => r.result_id === idB)?.result_name).toBe('stats-b');
    expect(listed.find((r) => r.result_id === idA)?.result_name).toBe(idA);
    // final results are a separate listing
    expect(await aggregator.listResults()).toEqual([]);
  });

  it('keeps local results on the node, across analyses of the same project', async () => {
    const id = await analyzer.saveIntermediateResultLocal(Buffer.from('local only'), { name: 'cache', other: { epoch: 2 } });
    expect((await analyzer.getIntermediateResultLocal(id) as Buffer).toString()).toBe('local only');
    // not on the hub, not on the other node
    expect(await analyzer.listIntermediateResults()).toEqual([]);
    await expect(aggregator.getIntermediateResultLocal(id)).rejects.toThrow(NotFoundError);
    // a later analysis of the same project on the same node sees it
    const later = new ResultService({ ...base, analysisId: 'analysis-2', local: stores.otherLocal, nodeId: 'node-b', isAggregator: false });
    expect((await later.getIntermediateResultLocal(id) as Buffer).toString()).toBe('local only');
    const [info] = await later.listIntermediateResultsLocal();
    expect(info).toEqual({
      result_id: id,
      result_name: 'cache',
      analysis_id: 'analysis-1',
      result_size: expect.any(Number),
      result_time: expect.any(String),
      result_owner: 'node-b',
      other: { epoch: 2 },
    });
  });

  it('names the missing id in NotFoundError, and rejects unsafe ids with BadRequestError', async () => {
    const missing = randomUUID();
    await expect(aggregator.getResult(missing)).rejects.toThrow(NotFoundError);
    await expect(aggregator.getResult(missing)).rejects.toThrow(`"${missing}"`);
    await expect(aggregator.getIntermediateResult(missing)).rejects.toThrow(`intermediate result "${missing}"`);
    await expect(aggregator.getIntermediateResultLocal(missing)).rejects.toThrow(`local result "${missing}"`);
    await expect(aggregator.getResultStream(missing)).rejects.toThrow(NotFoundError);
    for (const bad of ['../final/x', 'a/b', '', '..', '/etc/passwd']) {
      await expect(aggregator.getIntermediateResult(bad)).rejects.toThrow(BadRequestError);
      await expect(aggregator.getResult(bad)).rejects.toThrow(JSON.stringify(bad));
    }
  });

  it('rejects bad options, naming them', async () => {
    await expect(aggregator.sendResult(1, { name: '' })).rejects.toThrow(/result name ""/);
    await expect(aggregator.sendResult(1, { name: 'x'.repeat(300) })).rejects.toThrow(BadRequestError);
    await expect(aggregator.saveIntermediateResult(1, { other: { blob: Buffer.from('x') } as never })).rejects.toThrow(/other/);
    expect(() => new ResultService({ ...base, local: stores.local, nodeId: '../evil', isAggregator: true })).toThrow(/node id "\.\.\/evil"/);
  });

  it('streams a big final result in and out with progress, never decoding it', async () => {
    const total = 12 * 1024 * 1024 + 5;
    const expected = await sha256(generatedStream(total));
    const up: number[] = [];
    const id = await aggregator.sendResultStream(generatedStream(total), { name: 'model.onnx', onProgress: (b) => up.push(b), contentType: 'application/onnx' });
    expect(Math.max(...up)).toBe(total);
    const down: number[] = [];
    expect(await sha256(await analyzer.getResultStream(id, { onProgress: (b) => down.push(b) }))).toBe(expected);
    expect(down[down.length - 1]).toBe(total);
    const [info] = await analyzer.listResults();
    expect(info).toMatchObject({ result_id: id, result_name: 'model.onnx', result_size: total });
    const asBytes = (await analyzer.getResult(id)) as Buffer;
    expect(createHash('sha256').update(asBytes).digest('hex')).toBe(expected);
  }, 60_000);

  it('streams a codec-encoded final result as its frame', async () => {
    const id = await aggregator.sendResult({ ok: true });
    const chunks: Buffer[] = [];
    for await (const c of await aggregator.getResultStream(id)) chunks.push(c as Buffer);
    expect(decodeValue(Buffer.concat(chunks), 'streamed frame')).toEqual({ ok: true });
  });

  it('reports a corrupted stored result as BadRequestError naming the result', async () => {
    const id = await aggregator.saveIntermediateResult({ fine: 1 });
    const key = `projects/${base.projectId}/analyses/analysis-1/intermediate/${id}`;
    const head = await stores.hub.head(key);
    const bytes = Buffer.from(await stores.hub.getBytes(key));
    bytes[bytes.length - 2] ^= 0xff;
    await stores.hub.put(key, bytes, { metadata: head!.metadata });
    await expect(aggregator.getIntermediateResult(id)).rejects.toThrow(BadRequestError);
    await expect(aggregator.getIntermediateResult(id)).rejects.toThrow(`intermediate result "${id}"`);
  });
});
