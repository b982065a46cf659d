/**
 * `tsx bench/codec-decode.ts`: what bounded decoding costs. Small JSON through decodeValue vs
 * decodeUntrusted (the messenger's hot path, which must stay within a few µs), and Arrow tables:
 * apache-arrow's own tableFromIPC vs decodeValue (structural validation added) vs decodeUntrusted
 * (the worker probe added).
 */
import { tableFromArrays, tableFromIPC, type Table } from 'apache-arrow';
import { closeDecodePool, decodeUntrusted, decodeValue, encodeValue, HEADER_BYTES, type DecodeBudget } from '../src/codec/index.js';
import { fmt, percentile, printTable } from './stats.js';

const budget: DecodeBudget = { maxBytes: 1 << 30, timeoutMs: 10_000, memoryBytes: 256 * 1024 * 1024 };

/** Per-call times (µs) of `f`, after a warm-up. */
async function time(f: () => unknown, n: number): Promise<number[]> {
  for (let i = 0; i < Math.max(10, n / 10); i++) await f();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    out.push((performance.now() - t0) * 1000);
  }
  return out;
}

function row(name: string, us: number[], base?: number[]): Record<string, string> {
  const p50 = percentile(us, 0.5);
  return {
    case: name,
    'p50 µs': fmt(p50, 2),
    'p99 µs': fmt(percentile(us, 0.99), 2),
    'mean µs': fmt(us.reduce((a, b) => a + b, 0) / us.length, 2),
    'vs base': base === undefined ? '' : `${fmt(p50 / percentile(base, 0.5), 2)}× (+${fmt(p50 - percentile(base, 0.5), 2)} µs)`,
  };
}

function table(rows: number): Table {
  return tableFromArrays({
    id: Int32Array.from({ length: rows }, (_, i) => i),
    score: Float64Array.from({ length: rows }, (_, i) => i / 7),
    label: Array.from({ length: rows }, (_, i) => `class-${i % 10}`),
  });
}

const json = encodeValue({ kind: 'progress', round: 3, loss: 0.25, ok: true, node: 'hospital-a' });
const jsonValue = await time(() => decodeValue(json, 'v'), 50_000);
const jsonUntrusted = await time(() => decodeUntrusted(json, 'v', budget), 50_000);
console.log(`small JSON (${json.length} bytes)`);
printTable([row('decodeValue', jsonValue), row('decodeUntrusted', jsonUntrusted, jsonValue)]);

for (const rows of [100, 100_000, 1_000_000]) {
  const frame = encodeValue(table(rows));
  const ipc = frame.subarray(HEADER_BYTES);
  const n = rows >= 1_000_000 ? 10 : rows >= 100_000 ? 50 : 2000;
  const bare = await time(() => tableFromIPC(ipc), n);
  const value = await time(() => decodeValue(frame, 'v'), n);
  const untrusted = await time(() => decodeUntrusted(frame, 'v', budget), n);
  console.log(`\nArrow table, ${rows} rows (int32, float64, dictionary utf8): ${(frame.length / 1024).toFixed(0)} KiB`);
  printTable([row('tableFromIPC (no checks)', bare), row('decodeValue', value, bare), row('decodeUntrusted', untrusted, bare)]);
}
await closeDecodePool();
