/**
 * FlameSDK end to end, on both wirings: the embedded default and NATS JetStream + a real S3 API.
 * Every behaviour of the public API is checked the same way on both.
 */
import http from 'node:http';
import { tableFromArrays, type Table } from 'apache-arrow';
import { Tensor } from '../../src/codec/tensor.js';
import { BadRequestError, NotFoundError, TimeoutError, UnauthorizedError } from '../../src/errors.js';
import type { FlameSDK } from '../../src/sdk.js';
import { embedded, production, stopSharedS3, type Backend, type Cluster } from './backends.js';

afterAll(() => stopSharedS3());

function getJson(port: number, p: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

describe.each<Backend>([embedded, production])('FlameSDK on $name', (backend) => {
  let cluster: Cluster;
  let a: FlameSDK;
  let b: FlameSDK;
  let agg: FlameSDK;

  beforeEach(async () => {
    // node-c is a participant that never connects.
    cluster = await backend.cluster(['node-a', 'node-b', 'node-c', 'agg']);
    [a, b, agg] = await Promise.all([cluster.connect('node-a'), cluster.connect('node-b'), cluster.connect('agg')]);
  });
  afterEach(() => cluster.cleanup());

  test('identity and roles', () => {
    expect([a.nodeId, a.analysisId, a.role, a.getRole()]).toEqual(['node-a', cluster.analysisId, 'analyzer', false]);
    expect([agg.role, agg.getRole()]).toEqual(['aggregator', true]);
    expect(a.otherNodes).toEqual(['node-b', 'node-c', 'agg']);
  });

  test('messages arrive with seed-003 fields, numbered per sender', async () => {
    await a.sendMessage('node-b', { hello: 'b', n: [1, 2, 3] });
    await a.sendMessage(['node-b', 'agg'], 'second', { category: 'greeting' });
    const m1 = await b.awaitMessage('node-a', { timeoutMs: 5000 });
    const m2 = await b.awaitMessage('node-a', { timeoutMs: 5000, category: 'greeting' });
    expect(m1).toMatchObject({ sender: 'node-a', recipient: 'node-b', category: 'message', message_number: 1, data: { hello: 'b', n: [1, 2, 3] } });
    expect(new Date(m1.time).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(m2).toMatchObject({ sender: 'node-a', category: 'greeting', message_number: 2, data: 'second' });
    expect((await agg.awaitMessage('node-a', { timeoutMs: 5000 })).message_number).toBe(3);
    expect(b.getMessages().map((m) => m.id)).toEqual([m1.id, m2.id]);
  });

  test('typed values round-trip: bytes, Arrow tables, tensors', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const table = tableFromArrays({ id: Int32Array.from([1, 2, 3]), score: Float64Array.from([0.5, 1.5, 2.5]) });
    const tensor = new Tensor('float32', [2, 3], Float32Array.from([1, 2, 3, 4, 5, 6]));
    await a.sendMessage('agg', bytes);
    await a.sendMessage('agg', table);
    await a.sendMessage('agg', tensor);
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await agg.awaitMessage('node-a', { timeoutMs: 5000 })).data);
    expect(Buffer.isBuffer(got[0])).toBe(true);
    expect(Buffer.compare(got[0] as Buffer, bytes)).toBe(0);
    const t = got[1] as Table;
    expect(t.numRows).toBe(3);
    expect(Array.from(t.getChild('score')!.toArray() as Float64Array)).toEqual([0.5, 1.5, 2.5]);
    const tt = got[2] as Tensor;
    expect(tt).toBeInstanceOf(Tensor);
    expect(tt.shape).toEqual([2, 3]);
    expect(Array.from(tt.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('request and response', async () => {
    const answering = (async () => {
      const q = await b.awaitMessage('node-a', { timeoutMs: 5000, category: 'question' });
      await b.respond(q, { answer: (q.data as { x: number }).x * 2 });
    })();
    const reply = await a.sendMessageAndWaitForResponse('node-b', { x: 21 }, { timeoutMs: 5000, category: 'question' });
    await answering;
    expect(reply).toMatchObject({ sender: 'node-b', category: 'response', data: { answer: 42 } });
  });

  test('a timeout names the silent node; an unknown receiver is refused', async () => {
    await expect(a.awaitMessage('node-c', { timeoutMs: 150 })).rejects.toThrow(TimeoutError);
    await expect(a.awaitMessage('node-c', { timeoutMs: 150 })).rejects.toThrow(/no message from "node-c" within 150 ms/);
    await expect(a.sendMessageAndWaitForResponse('node-b', 1, { timeoutMs: 150 })).rejects.toThrow(/from "node-b"/);
    await expect(a.sendMessage('hospital-x', 1)).rejects.toThrow(NotFoundError);
    await expect(a.sendMessage('hospital-x', 1)).rejects.toThrow(/unknown receiver "hospital-x": participants are node-a, node-b, node-c, agg/);
  });

  test('a payload over the broker limit travels through hub storage and arrives whole', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await a.sendMessage('node-b', big);
    const m = await b.awaitMessage('node-a', { timeoutMs: 15000 });
    expect(Buffer.compare(m.data as Buffer, big)).toBe(0);

  });

  test('intermediate results are sealed for their receiver', async () => {
    const marker = 'PLAINTEXT-MARKER-1234567890';
    await agg.close(); // so the sealed object can be inspected before it is read
    const id = await a.sendIntermediateResult('agg', { marker, counts: [1, 2, 3] });
    const transfers = `projects/${a.projectId}/analyses/${a.analysisId}/transfers/`;
    const stored = (await a.results.hub.list(transfers)).filter((o) => o.key.endsWith(id));
    expect(stored).toHaveLength(1);
    // What lies in hub storage is ciphertext: the marker is not in it.
    const bytes = Buffer.from(await a.results.hub.getBytes(stored[0].key));
    expect(bytes.includes(Buffer.from(marker))).toBe(false);
    const again = await cluster.connect('agg');
    const m = await again.awaitMessage('node-a', { timeoutMs: 10000, category: 'intermediate_result' });
    expect(m.result_id).toBe(id);
    expect(m.data).toEqual({ marker, counts: [1, 2, 3] });
  });


  test('a node that restarts still opens what was sealed for it while it was away', async () => {
    await agg.close();
    const id = await a.sendIntermediateResult('agg', { sums: [1, 2] });
    const again = await cluster.connect('agg');
    const m = await again.awaitMessage('node-a', { timeoutMs: 10000, category: 'intermediate_result' });
    expect([m.result_id, m.data]).toEqual([id, { sums: [1, 2] }]);
  });

  test('a tampered sealed result is refused, naming it and its sender', async () => {
    await agg.close();
    const id = await a.sendIntermediateResult('agg', { sums: [1, 2] });
    const [obj] = (await a.results.hub.list(`projects/${a.projectId}/analyses/${a.analysisId}/transfers/`)).filter((o) => o.key.endsWith(id));
    const bytes = Buffer.from(await a.results.hub.getBytes(obj.key));
    bytes[bytes.length - 5] ^= 0x01;
    await a.results.hub.put(obj.key, bytes);
    const again = await cluster.connect('agg');
    const got = again.awaitMessage('node-a', { timeoutMs: 10000, category: 'intermediate_result' }).catch((e: Error) => e);
    expect(await got).toBeInstanceOf(UnauthorizedError);
    expect(String(await got)).toMatch(new RegExp(`cannot decrypt intermediate result ${id} from "node-a"`));
    await expect(again.awaitMessage('node-a', { timeoutMs: 100 })).rejects.toThrow(TimeoutError); // consumed, not redelivered forever
    expect(again.getMessages()).toHaveLength(1);
    expect(again.getMessages()[0]).toMatchObject({ sender: 'node-a', category: 'intermediate_result', data: null });
  });

  test('a large message whose stored body vanished is reported by name, not redelivered forever', async () => {
    await b.close();
    const big = Buffer.alloc(2 * 1024 * 1024, 7);
    const [id] = await a.sendMessage('node-b', big);
    const [obj] = (await a.results.hub.list(`projects/${a.projectId}/analyses/${a.analysisId}/transfers/`)).filter((o) => o.key.endsWith(id));
    await a.results.hub.delete(obj.key);
    const again = await cluster.connect('node-b');
    const err = await again.awaitMessage('node-a', { timeoutMs: 10000 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(String(err)).toContain(obj.key);
    await expect(again.awaitMessage('node-a', { timeoutMs: 300 })).rejects.toThrow(TimeoutError);
    expect(again.getMessages()).toHaveLength(1);
  });

  test('only the aggregator submits final results; results are listed with seed-003 fields', async () => {
    await expect(a.sendResult({ x: 1 })).rejects.toThrow(UnauthorizedError);
    await expect(a.sendResult({ x: 1 })).rejects.toThrow(/only the aggregator "agg"/);
    const id = await agg.sendResult({ mean: 4.2 }, { name: 'final-mean' });
    expect(await agg.results.getResult(id)).toEqual({ mean: 4.2 });
    const listed = await agg.results.listResults();
    expect(listed.find((r) => r.result_id === id)).toMatchObject({ result_name: 'final-mean', node_id: 'agg' });
  });

  test('intermediate results on the hub and locally: save, list, get, errors', async () => {
    const hubId = await a.saveIntermediateResult({ step: 1 }, { name: 'sums' });
    const localId = await a.saveIntermediateResultLocal(Buffer.from('local bytes'), { name: 'cache' });
    expect(await b.getIntermediateResult(hubId)).toEqual({ step: 1 }); // other nodes can read hub results
    expect(Buffer.from((await a.getIntermediateResultLocal(localId)) as Buffer).toString()).toBe('local bytes');
    const hubList = await b.listIntermediateResults();
    const row = hubList.find((r) => r.result_id === hubId)!;
    expect(row).toMatchObject({ result_name: 'sums', node_id: 'node-a', result_owner: 'node-a' });
    expect(row.result_size).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(row.result_time))).toBe(false);
    const localList = await a.listIntermediateResultsLocal();
    expect(localList.find((r) => r.result_id === localId)).toMatchObject({ result_name: 'cache', analysis_id: cluster.analysisId });
    await expect(b.getIntermediateResultLocal(localId)).rejects.toThrow(NotFoundError); // b's local storage is its own
    await expect(a.getIntermediateResult('no-such-result')).rejects.toThrow(/no-such-result/);
    await expect(a.getIntermediateResult('../../etc/passwd')).rejects.toThrow(BadRequestError);
    await expect(a.getIntermediateResultLocal('a/../../b')).rejects.toThrow(BadRequestError);
  });

  test('node status: online, offline after close, not_connected when never seen', async () => {
    expect(await a.askNodeStatus({ timeoutMs: 1000 })).toEqual({ 'node-a': 'online', 'node-b': 'online', 'node-c': 'not_connected', agg: 'online' });
    await b.close();
    const after = await a.askNodeStatus({ timeoutMs: 300 });
    expect(after['node-b']).toBe('offline');
    const parts = await a.getParticipants();
    expect(parts.map((p) => [p.nodeId, p.role, p.announced])).toEqual([
      ['node-a', 'analyzer', true],
      ['node-b', 'analyzer', true],
      ['node-c', 'analyzer', false],
      ['agg', 'aggregator', true],
    ]);
  });

  test('progress never decreases and /healthz reports it', async () => {
    const h = await cluster.connect('node-c', { healthPort: 0 });
    const port = h.healthPort!;
    expect((await getJson(port, '/healthz')).body).toMatchObject({ status: 'starting', progress: 0, node_id: 'node-c' });
    h.setProgress(0.5);
    h.setProgress(0.2);
    expect(h.progress).toBe(0.5);
    expect(() => h.setProgress(1.5)).toThrow(/progress: expected a number from 0 to 1, got 1.5/);
    expect((await getJson(port, '/healthz')).body).toMatchObject({ status: 'executing', progress: 0.5 });
    h.setStatus('failed', new Error('disk full'));
    const res = await getJson(port, '/healthz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'failed', error: 'disk full' });
  });
});
