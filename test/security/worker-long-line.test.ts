/**
 * Attack: one 100 MB line to the stdio worker. The line splitter searched the whole buffer again
 * for every chunk (quadratic): 68 s of CPU before the worker looked at anything else. Lines now
 * cost one scan of their bytes, and a line over `maxLineBytes` (16 MiB by default) is discarded up
 * to its LF without being kept, answered with the protocol's `field-out-of-range` error about the
 * whole `packet` (id -1: its id was never read), and the worker goes on serving.
 */
import { jest } from '@jest/globals';
import { spawnWorker } from '../protocol/worker-harness.js';
import type { WorkerClient } from '../../apps/protocol/client.js';
import { LineSplitter } from '../../apps/protocol/stdio.js';
import { MiB } from './measure.js';

jest.setTimeout(180_000);

const DEFAULT_MAX = 16 * MiB;

/** A ping whose message makes the line `bytes` long (without the LF). */
function pingLine(id: number, bytes: number): Buffer {
  const head = `{"type":"ping","id":${id},"data":{"message":"`;
  const tail = '"}}';
  const line = Buffer.alloc(bytes, 'a');
  line.write(head, 0);
  line.write(tail, bytes - tail.length);
  return line;
}

function isLineError(max: number) {
  return (p: { type: string; data: unknown }): boolean =>
    p.type === 'error' &&
    (p.data as { id: number }).id === -1 &&
    (p.data as { code: string }).code === 'field-out-of-range' &&
    (p.data as { etc: string }).etc === `Field packet is unexpectedly not in range [0, ${max}] bytes.`;
}

async function stillServes(worker: WorkerClient): Promise<void> {
  const pong = await worker.request('ping', { message: 'after' }, 30_000);
  expect(pong.packets.map((p) => p.type)).toEqual(['pong']);
}

describe('LineSplitter', () => {
  test('scans each byte once: 100 MB in 64 KiB chunks, no LF, in linear time; refused once, then lines resume', () => {
    const lines: string[] = [];
    let refusals = 0;
    const s = new LineSplitter((l) => lines.push(l), { onOverlong: () => refusals++ });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const started = performance.now();
    for (let sent = 0; sent < 100 * 1000 * 1000; sent += chunk.length) s.push(chunk);
    s.push('\nnext\n');
    const ms = performance.now() - started;
    process.stdout.write(`LineSplitter: 100 MB without LF in ${ms.toFixed(0)} ms\n`);
    expect(ms).toBeLessThan(5000);
    expect(refusals).toBe(1);
    expect(lines).toEqual(['next']);
  });

  test('keeps a long line under a raised cap in linear time too: 50 MB in 64 KiB chunks', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), { maxLineBytes: 64 * MiB });
    const chunk = Buffer.alloc(64 * 1024, 'b');
    const started = performance.now();
    for (let sent = 0; sent < 50 * 1000 * 1000; sent += chunk.length) s.push(chunk);
    s.push('\n');
    const ms = performance.now() - started;
    process.stdout.write(`LineSplitter: 50 MB line kept in ${ms.toFixed(0)} ms\n`);
    // The quadratic re-scan needed about 17 s for this.
    expect(ms).toBeLessThan(5000);
    expect(lines).toHaveLength(1);
    expect(lines[0].length).toBe(Math.ceil((50 * 1000 * 1000) / chunk.length) * chunk.length);
  });

  test('the cap counts bytes before the LF, a CR before it not included; byte by byte the same', () => {
    for (const piece of [Infinity, 1]) {
      const lines: string[] = [];
      let refusals = 0;
      const s = new LineSplitter((l) => lines.push(l), { maxLineBytes: 4, onOverlong: () => refusals++ });
      const input = Buffer.from('abcd\nabcd\r\nabcde\nab\u00e9\nabc\u00e9\nok\nlast-too-long');
      for (let at = 0; at < input.length; at += Math.min(piece, input.length)) s.push(input.subarray(at, at + Math.min(piece, input.length)));
      s.end();
      // 'abcde' is 5 bytes, 'abcé' is 5 bytes in UTF-8, the last line too is over the cap.
      expect(lines).toEqual(['abcd', 'abcd', 'ab\u00e9', 'ok']);
      expect(refusals).toBe(3);
    }
  });
});

test('a 100 MB line is answered with field-out-of-range quickly, and the worker still answers ping', async () => {
  const worker = spawnWorker(['--classes', 'a,b']);
  try {
    await stillServes(worker); // started
    const started = Date.now();
    const answered = worker.waitFor(isLineError(DEFAULT_MAX), 60_000);
    const line = pingLine(1, 100 * 1000 * 1000);
    for (let at = 0; at < line.length; at += MiB) worker.sendBytes(line.subarray(at, Math.min(line.length, at + MiB)));
    worker.sendBytes(Buffer.from('\n'));
    await answered;
    await stillServes(worker);
    const ms = Date.now() - started;
    process.stdout.write(`100 MB line: refused and ping answered ${ms} ms after the first byte\n`);
    // Linear work on 100 MB takes well under a second; 68 s was the quadratic scan.
    expect(ms).toBeLessThan(20_000);
    expect(worker.stderr).toMatch(/line of more than 16777216 bytes.*maxLineBytes.*--max-line-bytes.*FLAME_MAX_LINE_BYTES/);
    // The discarded line was never answered as a ping.
    expect(worker.received.filter((p) => p.type === 'pong')).toHaveLength(2);
    expect(await worker.close()).toBe(0);
  } finally {
    worker.kill();
  }
});

test('the cap is a setting: --max-line-bytes and FLAME_MAX_LINE_BYTES; lines up to it are served', async () => {
  for (const [args, env] of [
    [['--max-line-bytes', '4096'], {}],
    [[], { ...process.env, FLAME_MAX_LINE_BYTES: '4096' }],
  ] as const) {
    const worker = spawnWorker(['--classes', 'a,b', ...args], { env });
    try {
      worker.sendBytes(Buffer.concat([pingLine(1, 4096), Buffer.from('\n')]));
      // A CR before the LF is not part of the line.
      worker.sendBytes(Buffer.concat([pingLine(2, 4096), Buffer.from('\r\n')]));
      const pong = await worker.waitFor((p) => p.type === 'pong' && p.data.id === 2);
      expect(pong.type).toBe('pong');
      const refused = worker.waitFor(isLineError(4096));
      worker.sendBytes(Buffer.concat([pingLine(3, 4097), Buffer.from('\n')]));
      await refused;
      await stillServes(worker);
      expect(worker.received.filter((p) => p.type === 'pong').map((p) => p.data.id)).toEqual([1, 2, expect.any(Number)]);
      expect(await worker.close()).toBe(0);
    } finally {
      worker.kill();
    }
  }
});
