/**
 * decodeUntrusted: the size cap comes first and names its setting; Arrow values are probed in a
 * real worker thread whose time and memory overruns (and crashes) are refused without harming this
 * process, after which the next decode still works; JSON, bytes and tensors stay in this thread.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Table, tableFromArrays, tableToIPC } from 'apache-arrow';
import { BadRequestError, InternalError } from '../../src/errors.js';
import { DEFAULT_LIMITS, resolveLimits } from '../../src/limits.js';
import { closeDecodePool, decodeBudgetOf, decodeUntrusted, decodeValue, encodeValue, Tensor, type DecodeBudget, type FlameValue } from '../../src/codec/index.js';
import { decodePool, setProbeHookForTests } from '../../src/codec/decode-pool.js';
import { arrowFrame, lengthFields, withLength } from '../security/arrow-frames.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUDGET: DecodeBudget = { maxBytes: 1 << 20, timeoutMs: 5000, memoryBytes: 128 * 1024 * 1024 };
const table = (): Table => tableFromArrays({ id: Int32Array.from([1, 2, 3]), name: ['a', 'b', 'a'] });
const rows = (t: FlameValue): unknown => (t as Table).toArray().map((r) => r.toJSON());

afterEach(() => setProbeHookForTests(undefined));
afterAll(() => closeDecodePool());

describe('decodeUntrusted decodes what decodeValue decodes', () => {
  it('json, bytes, tensors, tables and composites with nested tables', async () => {
    const values: FlameValue[] = [
      { a: 1, b: ['x', null] },
      Buffer.from('raw'),
      new Tensor('float32', [2], new Float32Array([1, 2])),
      table(),
      { round: 1, part: table(), w: new Tensor('int32', [1], new Int32Array([7])) },
    ];
    for (const value of values) {
      const bytes = encodeValue(value);
      const out = await decodeUntrusted(bytes, 'value', BUDGET);
      const expected = decodeValue(bytes, 'value');
      if (value instanceof Table) expect(rows(out)).toEqual(rows(expected));
      else if (value !== null && typeof value === 'object' && 'part' in value) {
        expect(rows((out as Record<string, FlameValue>).part)).toEqual(rows((expected as Record<string, FlameValue>).part));
        expect([...((out as Record<string, Tensor>).w.data as Int32Array)]).toEqual([7]);
      } else expect(out).toEqual(expected);
    }
  });

  it('refuses a malformed Arrow frame with the same message as decodeValue', async () => {
    const frame = encodeValue(table());
    const ipc = tableToIPC(table(), 'stream');
    const nodes = lengthFields(ipc).find((f) => /RecordBatch\.nodes$/.test(f.name))!;
    const bomb = arrowFrame(frame, withLength(ipc, nodes, 0x7fffffffn));
    const sync = (() => {
      try {
        decodeValue(bomb, 'message "m1"');
      } catch (err) {
        return err as Error;
      }
    })();
    await expect(decodeUntrusted(bomb, 'message "m1"', BUDGET)).rejects.toThrow(BadRequestError);
    await expect(decodeUntrusted(bomb, 'message "m1"', BUDGET)).rejects.toThrow(sync!.message);
  });

  it('hands back tables that do not alias the caller\'s bytes', async () => {
    const bytes = Buffer.from(encodeValue(tableFromArrays({ x: Int32Array.from([7, 8, 9]) })));
    const out = (await decodeUntrusted(bytes, 'value', BUDGET)) as Table;
    bytes.fill(0);
    expect([...out.getChild('x')!]).toEqual([7, 8, 9]);
  });

  it('decodes many concurrent values, queued through one worker', async () => {
    const bytes = encodeValue(table());
    const out = await Promise.all(Array.from({ length: 20 }, (_, i) => decodeUntrusted(bytes, `value ${i}`, BUDGET)));
    for (const t of out) expect((t as Table).numRows).toBe(3);
  });
});

describe('the size cap comes first', () => {
  it('names the value, the size, the cap and the setting that raises it', async () => {
    const big = encodeValue('x'.repeat(2000));
    await expect(decodeUntrusted(big, 'message "m2" from node B', { ...BUDGET, maxBytes: 1000 })).rejects.toThrow(
      new RegExp(`message "m2" from node B: ${big.length} bytes is over the limit of 1000 \\(maxMessageBytes; raise it with FLAME_MAX_MESSAGE_BYTES\\)`),
    );
    const budget = decodeBudgetOf(resolveLimits({ maxReferenceBytes: 1000 }), 'maxReferenceBytes');
    await expect(decodeUntrusted(big, 'stored result "r"', budget)).rejects.toThrow(/maxReferenceBytes; raise it with FLAME_MAX_REFERENCE_BYTES/);
  });

  it('before looking at the bytes: oversized garbage gets the size error', async () => {
    await expect(decodeUntrusted(Buffer.alloc(5000, 7), 'blob', { ...BUDGET, maxBytes: 4096 })).rejects.toThrow(/over the limit of 4096/);
  });

  it('refuses a budget that is not whole numbers >= 1', async () => {
    await expect(decodeUntrusted(encodeValue(1), 'v', { ...BUDGET, timeoutMs: 0 })).rejects.toThrow(/timeoutMs/);
  });

  it('builds budgets from the node limits', () => {
    expect(decodeBudgetOf(DEFAULT_LIMITS)).toEqual({
      maxBytes: DEFAULT_LIMITS.maxMessageBytes,
      timeoutMs: DEFAULT_LIMITS.decodeTimeoutMs,
      memoryBytes: DEFAULT_LIMITS.decodeMemoryBytes,
      sizeSetting: 'maxMessageBytes',
    });
  });
});

describe('the Arrow probe runs within a time and memory budget', () => {
  const bytes = encodeValue(table());

  it('refuses a decode that overruns the time budget, then replaces the worker', async () => {
    await decodeUntrusted(bytes, 'warm-up', BUDGET);
    const started = decodePool.started;
    setProbeHookForTests('spin');
    const t0 = performance.now();
    await expect(decodeUntrusted(bytes, 'message "slow"', { ...BUDGET, timeoutMs: 300 })).rejects.toThrow(
      /message "slow": decoding ran past the time budget of 300 ms \(decodeTimeoutMs; raise it with FLAME_DECODE_TIMEOUT_MS\)/,
    );
    const ms = performance.now() - t0;
    console.log(`spinning decode refused after ${ms.toFixed(0)} ms (budget 300 ms)`);
    expect(ms).toBeLessThan(10_000);
    setProbeHookForTests(undefined);
    expect((await decodeUntrusted(bytes, 'next', BUDGET)) as Table).toBeInstanceOf(Table);
    expect(decodePool.started).toBe(started + 1);
  });

  it('refuses a valid but costly frame (100,000 tiny arrays) that overruns the time budget', async () => {
    const one = tableFromArrays(Object.fromEntries(Array.from({ length: 10 }, (_, c) => [`c${c}`, Int32Array.of(c)])));
    const costly = encodeValue(new Table(Array.from({ length: 10_000 }, () => one.batches[0])));
    const t0 = performance.now();
    decodeValue(costly, 'in this thread');
    console.log(`10,000 batches × 10 columns (${(costly.length / 2 ** 20).toFixed(1)} MiB): decodeValue takes ${(performance.now() - t0).toFixed(0)} ms`);
    await decodeUntrusted(bytes, 'warm-up', BUDGET);
    const started = decodePool.started;
    await expect(decodeUntrusted(costly, 'message "costly"', { ...BUDGET, maxBytes: 1 << 26, timeoutMs: 20 })).rejects.toThrow(
      /message "costly": decoding ran past the time budget of 20 ms/,
    );
    expect(((await decodeUntrusted(bytes, 'next', BUDGET)) as Table).numRows).toBe(3);
    expect(decodePool.started).toBe(started + 1);
  });

  it('refuses a decode that crashes the worker, and the next decode gets a new one', async () => {
    await decodeUntrusted(bytes, 'warm-up', BUDGET);
    const started = decodePool.started;
    setProbeHookForTests('exit');
    await expect(decodeUntrusted(bytes, 'message "crash"', BUDGET)).rejects.toThrow(/message "crash": the decoder crashed/);
    setProbeHookForTests(undefined);
    expect(((await decodeUntrusted(bytes, 'next', BUDGET)) as Table).numRows).toBe(3);
    expect(decodePool.started).toBe(started + 1);
  });

  it('refuses a decode that exhausts the memory budget, naming FLAME_DECODE_MEMORY_BYTES', async () => {
    const budget = { ...BUDGET, memoryBytes: 96 * 1024 * 1024, timeoutMs: 60_000 };
    await decodeUntrusted(bytes, 'warm-up', budget);
    const rss = process.memoryUsage().rss;
    setProbeHookForTests('oom');
    await expect(decodeUntrusted(bytes, 'message "hog"', budget)).rejects.toThrow(
      /message "hog": decoding ran out of the memory budget of 100663296 bytes \(decodeMemoryBytes; raise it with FLAME_DECODE_MEMORY_BYTES\)/,
    );
    setProbeHookForTests(undefined);
    expect(((await decodeUntrusted(bytes, 'next', budget)) as Table).numRows).toBe(3);
    console.log(`after the heap-exhausting probe: this process grew by ${((process.memoryUsage().rss - rss) / 2 ** 20).toFixed(0)} MiB`);
  });

  it('closing the pool mid-decode fails that decode as internal, not as a bad value, and the pool restarts', async () => {
    await decodeUntrusted(bytes, 'warm-up', BUDGET);
    setProbeHookForTests('spin');
    const pending = decodeUntrusted(bytes, 'message "in flight"', BUDGET);
    await new Promise((r) => setTimeout(r, 200));
    await closeDecodePool();
    await expect(pending).rejects.toThrow(/decode pool closed while decoding message "in flight"/);
    await expect(pending).rejects.toBeInstanceOf(InternalError);
    setProbeHookForTests(undefined);
    expect(((await decodeUntrusted(bytes, 'next', BUDGET)) as Table).numRows).toBe(3);
  });

  it('keeps JSON, bytes and tensors out of the worker', async () => {
    const started = decodePool.started;
    setProbeHookForTests('spin');
    for (const value of [{ a: 1 }, Buffer.from('b'), new Tensor('uint8', [1], new Uint8Array([1]))] as FlameValue[]) {
      await decodeUntrusted(encodeValue(value), 'v', { ...BUDGET, timeoutMs: 50 });
    }
    expect(decodePool.started).toBe(started);
  });

  it('JSON costs within a few microseconds of decodeValue', async () => {
    const bytes = encodeValue({ kind: 'progress', round: 3, loss: 0.25, ok: true });
    const time = async (f: () => unknown): Promise<number> => {
      const n = 20_000;
      for (let i = 0; i < 2000; i++) await f();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await f();
      return ((performance.now() - t0) * 1000) / n;
    };
    const sync = await time(() => decodeValue(bytes, 'v'));
    const untrusted = await time(() => decodeUntrusted(bytes, 'v', BUDGET));
    console.log(`small JSON: decodeValue ${sync.toFixed(2)} µs, decodeUntrusted ${untrusted.toFixed(2)} µs (+${(untrusted - sync).toFixed(2)} µs)`);
    // measured ~1 µs on an idle machine; wide margin for a loaded CI runner
    expect(untrusted - sync).toBeLessThan(50);
  });

  it('an idle worker does not keep the process alive', () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'untrusted-exit-child.ts')], { encoding: 'utf8', timeout: 60_000 });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('decoded 3 rows');
    expect(child.status).toBe(0);
  });
});
