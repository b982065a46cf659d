/**
 * Attack: a line of more than 512 MB to the stdio worker. Before the cap the worker kept the line in
 * one string, which V8 cannot make that long: the worker threw and exited, dropping every request
 * it held. Now the line is discarded as it streams in (never held), refused with the protocol's
 * error, and the worker keeps running and answering. The test streams the line in 1 MiB chunks with
 * backpressure, so it never holds it either.
 */
import { jest } from '@jest/globals';
import { measuredWorker, mib, MiB } from './measure.js';

jest.setTimeout(300_000);

const LINE = 600 * MiB;

test('a 600 MiB line leaves the worker running and answering, and is never held', async () => {
  const measured = measuredWorker(['--classes', 'a,b'], { timeoutMs: 270_000 });
  const worker = measured.client;
  try {
    const first = await worker.request('ping', { message: 'before' }, 30_000);
    expect(first.packets.map((p) => p.type)).toEqual(['pong']);
    const started = Date.now();
    const refused = worker.waitFor((p) => p.type === 'error' && p.data.id === -1 && p.data.code === 'field-out-of-range', 240_000);
    const chunk = Buffer.alloc(MiB, 'a');
    await worker.write(Buffer.from('{"type":"ping","id":1,"data":{"message":"'));
    for (let sent = 0; sent < LINE; sent += MiB) await worker.write(chunk);
    await worker.write(Buffer.from('"}}\n'));
    await refused;
    const after = await worker.request('ping', { message: 'after' }, 60_000);
    const ms = Date.now() - started;
    process.stdout.write(`600 MiB line: streamed, refused and ping answered in ${ms} ms\n`);
    expect(after.packets.map((p) => p.type)).toEqual(['pong']);
    expect(worker.alive).toBe(true);
    expect(ms).toBeLessThan(240_000);
  } finally {
    const end = await measured.finish();
    process.stdout.write(`worker: exit ${end.code}, peak RSS ${mib(end.peakRss)}${end.killed ? ` (killed: ${end.killed})` : ''}\n`);
    expect(end.killed).toBeUndefined();
    expect(end.code).toBe(0);
    // The line is 600 MiB; the worker holds at most a chunk of it (about 220 MiB measured, most of it
    // onnxruntime and sharp, against about 190 MiB for a worker that only answered pings).
    expect(end.peakRss).toBeLessThan(400 * MiB);
  }
});
