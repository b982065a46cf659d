/**
 * Attack (issue 8, item 7): b exhausts c's memory with unread messages. On the old main 600 unread 1 MB
 * messages all sat in c's in-memory inbox (and its seen ids were never pruned). Now each sender may
 * have at most `maxUnreadBytes` waiting unread: beyond that its messages are held back on the broker
 * (delivered once c reads), the other senders' messages keep arriving, and nothing is lost.
 */
import { jest } from '@jest/globals';
import { eventually, useStage } from './hostile-federation.js';

jest.setTimeout(120_000);

const stage = useStage();

test('a flood from b is held back at the unread limit, a still gets through, and every message arrives once c reads', async () => {
  const LIMIT = 8 * 1024 * 1024;
  const [c, a, b] = await Promise.all([stage.connect('c', { limits: { maxUnreadBytes: LIMIT } }), stage.connect('a'), stage.connect('b')]);
  const chunk = Buffer.alloc(512 * 1024, 7);
  const COUNT = 60; // 30 MiB: almost four times the limit
  const rssBefore = process.memoryUsage().rss;
  const flood = (async () => {
    for (let i = 0; i < COUNT; i++) await b.sendMessage('c', { i, chunk });
  })();
  await eventually(() => c.messageStats().heldBack > 0, 'c held b back', 60_000);
  // a's message is not stuck behind b's backlog.
  await a.sendMessage('c', { from: 'a' });
  expect((await c.awaitMessage('a', { timeoutMs: 10_000 })).data).toEqual({ from: 'a' });
  await flood;
  // What c holds unread from b stays near the limit (one message over it at most).
  const unread = c.getMessages().filter((m) => m.sender === 'b').length;
  expect(unread * chunk.length).toBeLessThanOrEqual(LIMIT + chunk.length);
  expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
  // Once c reads, the held-back rest arrives: every message, in order, exactly once.
  const got: number[] = [];
  for (let i = 0; i < COUNT; i++) got.push(((await c.awaitMessage('b', { timeoutMs: 30_000 })).data as { i: number }).i);
  expect(got).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  await expect(c.awaitMessage('b', { timeoutMs: 500 })).rejects.toThrow(/no message/);
  console.log(`inbox flood: ${COUNT} × 512 KiB from b, unread limit ${LIMIT / 1024 / 1024} MiB; held back ${c.messageStats().heldBack} times; at most ${unread} unread at once`);
});
