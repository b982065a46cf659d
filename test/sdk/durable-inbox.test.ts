/**
 * The durable inbox: a message is acknowledged to the broker once it is in the node's inbox journal,
 * so what a node had received but not yet taken is offered again after a restart (and what it had
 * taken still shows in getMessages), each exactly once; a journal cut short by a crash is read up to
 * its last whole record.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { embedded, production, stopSharedS3, type Backend } from './backends.js';

afterAll(() => stopSharedS3());

describe.each<[string, Backend]>([
  ['embedded', embedded],
  ['NATS + S3', production],
])('durable inbox on %s', (_name, backend) => {
  test('untaken messages come back after a restart, taken ones stay in the history, nothing twice', async () => {
    const cluster = await backend.cluster(['a', 'agg']);
    try {
      const [agg, a] = await Promise.all([cluster.connect('agg'), cluster.connect('a')]);
      for (let i = 0; i < 5; i++) await a.sendMessage('agg', { i });
      const big = Buffer.alloc(2 * 1024 * 1024, 3);
      await a.sendMessage('agg', big); // through hub storage
      const sealed = await a.sendIntermediateResult('agg', { secret: 42 });
      expect((await agg.awaitMessage('a', { timeoutMs: 10_000 })).data).toEqual({ i: 0 });
      expect((await agg.awaitMessage('a', { timeoutMs: 10_000 })).data).toEqual({ i: 1 });
      // wait until everything is in agg's inbox (and so acknowledged to the broker), then restart agg
      const deadline = Date.now() + 10_000;
      while (agg.getMessages().length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(agg.getMessages()).toHaveLength(7);
      await agg.close();

      const again = await cluster.connect('agg');
      expect(again.getMessages().map((m) => m.data && typeof m.data === 'object' && 'i' in (m.data as object) ? (m.data as { i: number }).i : 'other')).toEqual([0, 1, 2, 3, 4, 'other', 'other']);
      // the first two were taken before the restart: the next one is i = 2
      for (let i = 2; i < 5; i++) expect((await again.awaitMessage('a', { timeoutMs: 5000 })).data).toEqual({ i });
      expect(Buffer.compare((await again.awaitMessage('a', { timeoutMs: 5000 })).data as Buffer, big)).toBe(0);
      const r = await again.awaitMessage('a', { timeoutMs: 5000 });
      expect([r.result_id, r.data]).toEqual([sealed, { secret: 42 }]);
      await expect(again.awaitMessage('a', { timeoutMs: 500 })).rejects.toThrow(/no message/);
      expect(again.messageStats().duplicates).toBe(0);
    } finally {
      await cluster.cleanup();
    }
  }, 60_000);
});

test('a journal cut short in the middle of a record is read up to its last whole record', async () => {
  const { DurableInbox } = await import('../../src/messenger/inbox.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-journal-'));
  try {
    const wire = (n: number) => ({ id: `m${n}`, sender: 's', recipient: 'r', category: 'message', time: new Date().toISOString(), message_number: n, session: 'abc', body: Buffer.alloc(100, n) });
    const { inbox } = DurableInbox.open(dir);
    for (let n = 1; n <= 3; n++) inbox.add(wire(n), 'ok', 100);
    inbox.take('m1');
    inbox.close();
    const file = path.join(dir, 'inbox.journal');
    const size = (await fs.stat(file)).size;
    await fs.truncate(file, size - 7); // a crash in the middle of writing the last record (the take of m1)
    const { inbox: reopened, restored } = DurableInbox.open(dir);
    expect(restored.map((r) => [r.wire.id, r.taken, Buffer.from(r.wire.body).equals(wire(Number(r.wire.id.slice(1))).body)])).toEqual([
      ['m1', false, true],
      ['m2', false, true],
      ['m3', false, true],
    ]);
    expect(reopened.isDuplicate(wire(2))).toBe(true);
    expect(reopened.isDuplicate(wire(4))).toBe(false);
    // and it keeps appending after the cut
    reopened.add(wire(4), 'ok', 100);
    reopened.close();
    const last = DurableInbox.open(dir);
    expect(last.restored).toHaveLength(4);
    last.inbox.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
