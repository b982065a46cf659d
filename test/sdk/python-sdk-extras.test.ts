/**
 * What FLAME's python-sdk (FlameCoreSDK) offers beyond seed 003, on every profile: read/unread
 * messages, deleting and clearing them durably (across a restart), acknowledged sends, awaiting several
 * senders at once, tagged local results, several named final results with output types, and local
 * differential privacy on a final result.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../../src/errors.js';
import { applyLocalDp } from '../../src/star/noise.js';
import { embedded, flameNode, production, stopSharedS3, type Backend, type Cluster } from './backends.js';

afterAll(() => stopSharedS3());

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each<Backend>([embedded, production, flameNode])('python-sdk extras on $name', (backend) => {
  let cluster: Cluster;
  afterEach(() => cluster.cleanup());

  test('messages are read or unread; deleted and cleared ones stay gone after a restart', async () => {
    cluster = await backend.cluster(['a', 'agg']);
    const [agg, a] = [await cluster.connect('agg'), await cluster.connect('a')];
    for (let i = 0; i < 4; i++) await a.sendMessage('agg', { i });
    await until(() => agg.getMessages().length === 4, 'four messages at agg');
    const first = await agg.awaitMessage('a', { timeoutMs: 10_000 });
    expect(first.data).toEqual({ i: 0 });
    expect(agg.getMessages({ status: 'read' }).map((m) => m.data)).toEqual([{ i: 0 }]);
    expect(agg.getMessages({ status: 'unread' }).map((m) => m.data)).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
    const [second, third] = agg.getMessages({ status: 'unread' });
    expect(agg.deleteMessages([first.id, second.id, 'no-such-id'])).toBe(2);
    expect(agg.deleteMessages([first.id])).toBe(0);
    // none is an hour old yet
    expect(agg.clearMessages({ minAgeMs: 3_600_000 })).toBe(0);
    expect(agg.clearMessages({ status: 'read' })).toBe(0);
    expect(() => agg.clearMessages({ status: 'seen' as 'read' })).toThrow(BadRequestError);
    expect(() => agg.clearMessages({ minAgeMs: -1 })).toThrow(BadRequestError);
    expect(agg.getMessages().map((m) => m.data)).toEqual([{ i: 2 }, { i: 3 }]);
    expect(third.data).toEqual({ i: 2 });
    await agg.close();

    const again = await cluster.connect('agg');
    expect(again.getMessages().map((m) => m.data)).toEqual([{ i: 2 }, { i: 3 }]);
    // the deleted unread message is not offered again: the next one is i = 2
    expect((await again.awaitMessage('a', { timeoutMs: 5000 })).id).toBe(third.id);
    expect(again.getMessages({ status: 'read' }).map((m) => m.data)).toEqual([{ i: 2 }]);
    expect(again.clearMessages({ status: 'unread' })).toBe(1);
    expect(again.getMessages().map((m) => m.data)).toEqual([{ i: 2 }]);
    expect(again.clearMessages()).toBe(1);
    await again.close();

    const third2 = await cluster.connect('agg');
    expect(third2.getMessages()).toEqual([]);
    // new messages still arrive after everything was cleared
    await a.sendMessage('agg', { i: 4 });
    expect((await third2.awaitMessage('a', { timeoutMs: 10_000 })).data).toEqual({ i: 4 });
  }, 90_000);

  test('acknowledged sends and awaiting several senders: silent nodes are listed, never thrown for', async () => {
    cluster = await backend.cluster(['a', 'b', 'agg']);
    const [agg, a] = [await cluster.connect('agg'), await cluster.connect('a')];
    const started = Date.now();
    const sent = await agg.sendMessageAcknowledged(['a', 'b'], { x: 1 }, { category: 'cfg', timeoutMs: 3000 });
    expect(sent).toEqual({ acknowledged: ['a'], notAcknowledged: ['b'] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    expect(Date.now() - started).toBeLessThan(20_000);
    // acknowledged means stored: it is in a's inbox already, under the category the sender gave
    expect(a.getMessages({ category: 'cfg' }).map((m) => [m.sender, m.data])).toEqual([['agg', { x: 1 }]]);
    await expect(agg.sendMessageAcknowledged([], 1)).rejects.toThrow(BadRequestError);
    await expect(agg.sendMessageAcknowledged(['nobody'], 1)).rejects.toThrow(NotFoundError);

    await a.sendMessage('agg', { from: 'a' }, { category: 'round' });
    await a.sendMessage('agg', 'not this one', { category: 'other' });
    const awaited = await agg.awaitMessages(['a', 'b'], { category: 'round', timeoutMs: 2000 });
    expect(awaited.messages.a.data).toEqual({ from: 'a' });
    expect(Object.keys(awaited.messages)).toEqual(['a']);
    expect(awaited.missing).toEqual(['b']);
    expect(awaited.unreadable).toEqual({});
    await expect(agg.awaitMessages(['a', 'nobody'])).rejects.toThrow(NotFoundError);

    const b = await cluster.connect('b');
    await b.sendMessage('agg', { from: 'b' }, { category: 'round' });
    await a.sendMessage('agg', { from: 'a', n: 2 }, { category: 'round' });
    const both = await agg.awaitMessages(['a', 'b'], { category: 'round', timeoutMs: 15_000 });
    expect([both.messages.a?.data, both.messages.b?.data, both.missing]).toEqual([{ from: 'a', n: 2 }, { from: 'b' }, []]);
    // now both answer
    expect(await agg.sendMessageAcknowledged(['b', 'a'], [1, 2, 3], { timeoutMs: 15_000 })).toEqual({ acknowledged: ['b', 'a'], notAcknowledged: [] });
    const got = await b.awaitMessage('agg', { category: 'message', timeoutMs: 5000 });
    expect(got.data).toEqual([1, 2, 3]);
    // receipts are the messenger's business: never in the analysis' inbox
    expect(agg.getMessages().some((m) => m.category.startsWith('flame.receipt'))).toBe(false);
  }, 90_000);

  test('local results under tags: list tags, read all, first or last', async () => {
    cluster = await backend.cluster(['a', 'agg']);
    // on NATS the aggregator provisions the analysis' streams, which a waits for
    const [, a] = await Promise.all([cluster.connect('agg'), cluster.connect('a')]);
    await a.saveIntermediateResultLocal({ v: 0 });
    await a.saveIntermediateResultLocal({ v: 1 }, { tag: 'round-x' });
    await a.saveIntermediateResultLocal({ v: 2 }, { tag: 'round-x', name: 'second' });
    await a.saveIntermediateResultLocal({ v: 3 }, { tag: 'other' });
    expect(await a.getLocalTags()).toEqual(['other', 'round-x']);
    expect(await a.getLocalTags('round')).toEqual(['round-x']);
    expect(await a.getLocalResultsByTag('round-x')).toEqual([{ v: 1 }, { v: 2 }]);
    expect(await a.getLocalResultsByTag('round-x', 'first')).toEqual({ v: 1 });
    expect(await a.getLocalResultsByTag('round-x', 'last')).toEqual({ v: 2 });
    expect((await a.listLocalResultsByTag('round-x')).map((r) => [r.result_name, r.tag])).toEqual([
      [expect.any(String), 'round-x'],
      ['second', 'round-x'],
    ]);
    expect((await a.listIntermediateResultsLocal()).filter((r) => r.tag === undefined)).toHaveLength(1);
    await expect(a.getLocalResultsByTag('none')).rejects.toThrow(NotFoundError);
    await expect(a.saveIntermediateResultLocal(1, { tag: 'Not A Tag' })).rejects.toThrow(BadRequestError);
    await expect(a.getLocalResultsByTag('round-x', 'middle' as 'first')).rejects.toThrow(BadRequestError);
  }, 60_000);

  test('several named final results with output types, and local differential privacy', async () => {
    cluster = await backend.cluster(['a', 'agg']);
    const [agg, a] = [await cluster.connect('agg'), await cluster.connect('a')];
    await agg.sendResult({ mean: 4.5 }, { name: 'mean', outputType: 'json' });
    await agg.sendResult('all fine', { name: 'report', outputType: 'text' });
    await agg.sendResult(Buffer.from([1, 2, 3]), { name: 'blob', outputType: 'bytes' });
    await agg.sendResult('second report', { name: 'report', outputType: 'text' });
    await expect(agg.sendResult(5, { name: 'bad', outputType: 'text' })).rejects.toThrow(/outputType "text" but the value is JSON/);
    await expect(agg.sendResult('x', { outputType: 'pickle' as 'json' })).rejects.toThrow(BadRequestError);
    await expect(a.sendResult({ mean: 1 }, { name: 'not mine' })).rejects.toThrow(UnauthorizedError);
    const listed = await agg.listResults();
    expect(listed.map((r) => [r.result_name, r.output_type, r.verified])).toEqual([
      ['mean', 'json', true],
      ['report', 'text', true],
      ['blob', 'bytes', true],
      ['report', 'text', true],
    ]);
    expect(await agg.getResultByName('mean')).toEqual({ mean: 4.5 });
    expect(await agg.getResultByName('report')).toBe('second report');
    expect(Buffer.from((await agg.getResultByName('blob')) as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
    await expect(agg.getResultByName('absent')).rejects.toThrow(NotFoundError);

    const exact = { mean: 10, counts: [100, 200] };
    const id = await agg.sendResult(exact, { name: 'dp', outputType: 'json', localDp: { epsilon: 1, sensitivity: 1 } });
    const noised = (await agg.getResult(id)) as typeof exact;
    expect(Object.keys(noised)).toEqual(['mean', 'counts']);
    expect(noised.counts).toHaveLength(2);
    // each number moved (Laplace noise is continuous), by a plausible amount for scale 1
    for (const [got, was] of [[noised.mean, 10], [noised.counts[0], 100], [noised.counts[1], 200]]) {
      expect(got).not.toBe(was);
      expect(Math.abs(got - was)).toBeLessThan(40);
    }
    const before = (await agg.listResults()).length;
    await expect(agg.sendResult('text', { localDp: { epsilon: 1, sensitivity: 1 } })).rejects.toThrow(/localDp needs a numeric value/);
    await expect(agg.sendResult({ n: 1, label: 'x' }, { localDp: { epsilon: 1, sensitivity: 1 } })).rejects.toThrow(/value.label is not/);
    await expect(agg.sendResult(1, { localDp: { epsilon: 0, sensitivity: 1 } })).rejects.toThrow(/epsilon must be a finite number > 0/);
    await expect(agg.sendResult(1, { localDp: { epsilon: 1, sensitivity: Number.NaN } })).rejects.toThrow(/sensitivity must be a finite number > 0/);
    expect(await agg.listResults()).toHaveLength(before);
  }, 60_000);
});

test('local DP noise has scale sensitivity / epsilon', () => {
  const n = 4000;
  const { value, noised } = applyLocalDp(new Array<number>(n).fill(0), { epsilon: 0.5, sensitivity: 2 }, 'test');
  expect(noised).toBe(n);
  // E|Laplace(0, b)| = b = 4; the mean of 4000 draws has a standard error of 4 / sqrt(4000) ≈ 0.063
  const meanAbs = value.reduce((s, x) => s + Math.abs(x), 0) / n;
  expect(meanAbs).toBeGreaterThan(3.6);
  expect(meanAbs).toBeLessThan(4.4);
  expect(Math.abs(value.reduce((s, x) => s + x, 0) / n)).toBeLessThan(0.5);
});

test('a deleted message stays deleted in the journal, also after compaction', async () => {
  const { DurableInbox } = await import('../../src/messenger/inbox.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-journal-del-'));
  try {
    const wire = (n: number) => ({ id: `m${n}`, sender: 's', recipient: 'r', category: 'message', time: new Date().toISOString(), message_number: n, session: 'abc', body: Buffer.alloc(10, n) });
    const { inbox } = DurableInbox.open(dir);
    for (let n = 1; n <= 4; n++) inbox.add(wire(n), 'ok', 10);
    inbox.take('m1');
    expect(inbox.delete(['m1', 'm3', 'm9'])).toEqual(['m1', 'm3']);
    inbox.close();
    const reopened = DurableInbox.open(dir);
    expect(reopened.restored.map((r) => r.wire.id)).toEqual(['m2', 'm4']);
    // a redelivery of a deleted message is still a duplicate
    expect(reopened.inbox.isDuplicate(wire(3))).toBe(true);
    reopened.inbox.delete(['m2']);
    reopened.inbox.compact();
    reopened.inbox.close();
    const compacted = DurableInbox.open(dir);
    expect(compacted.restored.map((r) => r.wire.id)).toEqual(['m4']);
    expect(compacted.inbox.isDuplicate(wire(1))).toBe(true);
    compacted.inbox.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
