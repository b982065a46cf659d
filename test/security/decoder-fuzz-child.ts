/**
 * The decoder fuzz loop, run as its own process by decoder-fuzz.test.ts so its peak RSS can be
 * measured: FLAME_FUZZ_FRAMES mutated frames (seed FLAME_FUZZ_SEED) through decodeValue and
 * decodeUntrusted. Every frame must be refused with BadRequestError or decoded into a value
 * that can be read whole, within FRAME_MS. Prints one JSON report line on stdout; progress on stderr.
 */
import { Table } from 'apache-arrow';
import { BadRequestError } from '../../src/errors.js';
import { closeDecodePool, decodeUntrusted, decodeValue, Tensor, type FlameValue } from '../../src/codec/index.js';
import { MUTATIONS, mutate, prng, seedFrames, serialize, type Mutation } from './fuzz-frames.js';

const FRAME_MS = 1000;
const seed = Number(process.env.FLAME_FUZZ_SEED ?? 20240611);
const frames = Number(process.env.FLAME_FUZZ_FRAMES ?? 10_000);
const budget = { maxBytes: 16 * 1024 * 1024, timeoutMs: FRAME_MS, memoryBytes: 128 * 1024 * 1024 };

/** What reading decoded values added up to (reported, so the reads cannot be optimised away). */
let sink = 0;

/** Reads every part of a decoded value, as a receiving analysis would. */
function touch(value: FlameValue, depth = 0): void {
  if (depth > 600) throw new Error('decoded value nested too deep to read');
  if (value instanceof Table) {
    for (const row of value) sink += JSON.stringify(row?.toJSON(), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))?.length ?? 0;
  } else if (value instanceof Tensor) {
    for (let i = 0; i < value.size; i++) sink += Number(value.data[i]) ? 1 : 0;
  } else if (Array.isArray(value)) {
    for (const v of value) touch(v as FlameValue, depth + 1);
  } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const v of Object.values(value)) touch(v as FlameValue, depth + 1);
  }
}

type Tally = { refused: number; decoded: number };
const byKind: Record<string, Tally> = {};
const byMutation: Record<string, Tally> = {};
const failures: string[] = [];
const slowest = { value: { ms: 0, frame: '' }, untrusted: { ms: 0, frame: '' } };

async function attempt(path: 'value' | 'untrusted', bytes: Buffer, label: string): Promise<'refused' | 'decoded'> {
  const t0 = performance.now();
  let outcome: 'refused' | 'decoded' = 'decoded';
  try {
    const value = path === 'value' ? decodeValue(bytes, label) : await decodeUntrusted(bytes, label, budget);
    touch(value);
  } catch (err) {
    if (!(err instanceof BadRequestError)) failures.push(`${path} ${label}: ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
    else if (!err.message.includes(label)) failures.push(`${path} ${label}: error does not name the value: ${err.message}`);
    else if (/validator fault/.test(err.message)) failures.push(`${path} ${label}: ${err.message}`);
    outcome = 'refused';
  }
  const ms = performance.now() - t0;
  if (ms > slowest[path].ms) slowest[path] = { ms, frame: label };
  if (ms > FRAME_MS) failures.push(`${path} ${label}: took ${ms.toFixed(0)} ms`);
  return outcome;
}

const rnd = prng(seed);
const seeds = seedFrames();
const donors = seeds.map((s) => s.node);
// start the worker first: its start-up is not part of any frame's decode time
await decodeUntrusted(serialize(seeds.find((s) => s.kind === 'arrow')!.node), 'warm-up', budget);
/** What this thread's heap and buffers hold after a full collection (where --expose-gc is given). */
function heldBytes(): number {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
// What the process holds before the first frame (node, tsx, apache-arrow, the worker): decoding is what comes on top.
const baselineHeldBytes = heldBytes();
const baselineRssBytes = process.memoryUsage().rss;
const started = performance.now();
for (let i = 0; i < frames; i++) {
  const s = seeds[i % seeds.length];
  const op: Mutation = MUTATIONS[Math.floor(rnd() * MUTATIONS.length)];
  const bytes = mutate(s.node, donors, rnd, op);
  const label = `frame ${i} (${s.kind}, ${op})`;
  const a = await attempt('value', bytes, label);
  const b = await attempt('untrusted', bytes, label);
  if (a !== b) failures.push(`${label}: decodeValue ${a} but decodeUntrusted ${b}`);
  for (const t of [(byKind[s.kind] ??= { refused: 0, decoded: 0 }), (byMutation[op] ??= { refused: 0, decoded: 0 })]) t[a]++;
  if (i % 2000 === 1999) process.stderr.write(`fuzz: ${i + 1}/${frames} frames, ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  if (failures.length > 20) break;
  // Collect the garbage of the last frames now and then (the test starts this process with
  // --expose-gc): peak RSS then measures what decoding holds and what one frame allocates, not how
  // much garbage a loaded machine let pile up before V8 collected it.
  if (i % 100 === 99) globalThis.gc?.();
}
await closeDecodePool();
const finalHeldBytes = heldBytes();
const total = Object.values(byKind).reduce((n, t) => ({ refused: n.refused + t.refused, decoded: n.decoded + t.decoded }), { refused: 0, decoded: 0 });
console.log(
  JSON.stringify({
    seed,
    frames: total.refused + total.decoded,
    ...total,
    byKind,
    byMutation,
    slowestMs: { decodeValue: slowest.value, decodeUntrusted: slowest.untrusted },
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    baselineRssBytes,
    baselineHeldBytes,
    finalHeldBytes,
    seconds: (performance.now() - started) / 1000,
    sink,
    failures,
  }),
);
