/**
 * The decoders of peer bytes outside the codec, fuzzed with a seeded generator (decoder-fuzz.test.ts
 * covers the value codec): the message layout every adapter carries (broker/wire.ts), the body frames
 * and storage references (messenger/frames.ts), the authentication tag (trust/message-auth.ts), and the
 * durable inbox journal read back after a crash (messenger/inbox.ts). Every mutated input must be
 * refused — `undefined`, a BadRequestError, a refused tag, a skipped record — or read, quickly; no
 * other exception may escape.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WireMessage } from '../../src/broker/port.js';
import { decodeWire, encodeWire } from '../../src/broker/wire.js';
import { encodeValue } from '../../src/codec/index.js';
import { BadRequestError } from '../../src/errors.js';
import { DurableInbox } from '../../src/messenger/inbox.js';
import { frame, FRAME_INLINE, FRAME_SEALED, FRAME_STORED, parseFrame, referenceFrame } from '../../src/messenger/frames.js';
import { generateKeySet } from '../../src/trust/identity.js';
import { MessageAuthenticator } from '../../src/trust/message-auth.js';
import { prng } from './fuzz-frames.js';

const SEED = Number(process.env.FLAME_FUZZ_SEED ?? 424242);
const PER_DECODER = 10_000;

function sample(n: number): WireMessage {
  return {
    id: `msg-${n}`,
    sender: 'a',
    recipient: 'b',
    category: n % 2 ? 'message' : 'intermediate_result',
    time: new Date(1_700_000_000_000 + n).toISOString(),
    message_number: n + 1,
    reply_to: n % 3 === 0 ? `msg-${n - 1}` : undefined,
    session: 'abcdef0123456789',
    auth: undefined,
    body:
      n % 3 === 0
        ? frame(FRAME_INLINE, encodeValue({ n, values: [1, 2, 3] }))
        : referenceFrame(n % 3 === 1 ? FRAME_STORED : FRAME_SEALED, { key: `projects/p/analyses/x/transfers/a/r${n}`, size: 100 + n, sha256: 'ab'.repeat(32), ...(n % 3 === 2 ? { result_id: `r${n}` } : {}) }),
  };
}

/** A random mutation of a copy of `bytes`: bit flips, overwritten bytes, a changed length field, truncation, extension or a splice with a donor. */
function mutated(bytes: Buffer, donors: Buffer[], rnd: () => number): Buffer {
  const int = (n: number): number => Math.floor(rnd() * n);
  const out = Buffer.from(bytes);
  switch (int(6)) {
    case 0:
      for (let i = 1 + int(8); i > 0 && out.length > 0; i--) out[int(out.length)] ^= 1 << int(8);
      return out;
    case 1:
      for (let i = 1 + int(4); i > 0 && out.length > 0; i--) out[int(out.length)] = [0, 0xff, 0x7f, 0x80, 0x22, 0x7b, int(256)][int(7)];
      return out;
    case 2: {
      // a 16- or 32-bit length-looking field anywhere (the wire head length is at offset 1)
      if (out.length < 5) return out;
      const at = rnd() < 0.3 ? 1 : int(out.length - 4);
      const v = [0, 1, 0xffff, 0xffffffff, out.length, out.length + 1, 0x7fffffff][int(7)];
      if (rnd() < 0.5) out.writeUInt16LE(v & 0xffff, at);
      else out.writeUInt32LE(v >>> 0, at);
      return out;
    }
    case 3:
      return out.subarray(0, int(out.length + 1));
    case 4:
      return Buffer.concat([out, Buffer.alloc(1 + int(64), int(256))]);
    default: {
      const d = donors.length > 0 ? donors[int(donors.length)] : out;
      return Buffer.concat([out.subarray(0, int(out.length + 1)), d.subarray(int(d.length + 1))]);
    }
  }
}

function timed<T>(fn: () => T): { ms: number; value?: T; error?: unknown } {
  const t0 = performance.now();
  try {
    return { value: fn(), ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

test(`wire layout, frames and tags: ${PER_DECODER} mutations each are refused or read within 1 s (seed ${SEED})`, () => {
  const rnd = prng(SEED);
  const seeds = Array.from({ length: 12 }, (_, i) => sample(i));
  const wires = seeds.map(encodeWire);
  const bodies = seeds.map((m) => Buffer.from(m.body));
  const ka = generateKeySet();
  const kb = generateKeySet();
  const peers = { keysOf: (n: string) => (n === 'a' ? [ka] : n === 'b' ? [kb] : undefined) };
  const tagger = new MessageAuthenticator('x', { nodeId: 'a', keys: [ka] }, peers);
  const checker = new MessageAuthenticator('x', { nodeId: 'b', keys: [kb] }, peers);
  const tally = { wire: { read: 0, refused: 0 }, frame: { read: 0, refused: 0 }, tag: { accepted: 0, refused: 0 } };
  let slowest = 0;
  for (let i = 0; i < PER_DECODER; i++) {
    const k = i % seeds.length;
    // 1. the wire layout
    const w = timed(() => decodeWire(mutated(wires[k], wires, rnd)));
    if (w.error) throw new Error(`decodeWire threw on mutation ${i}: ${String(w.error)}`);
    tally.wire[w.value ? 'read' : 'refused']++;
    // 2. the body frame (and its reference)
    const f = timed(() => parseFrame(mutated(bodies[k], bodies, rnd), `message ${i}`));
    if (f.error && !(f.error instanceof BadRequestError)) throw new Error(`parseFrame threw ${String(f.error)} on mutation ${i}`);
    tally.frame[f.error ? 'refused' : 'read']++;
    // 3. a tagged message with one field or byte changed never verifies (and verify never throws)
    const m = { ...seeds[k] };
    m.auth = tagger.tag(m);
    const field = i % 4;
    const bad: WireMessage =
      field === 0 ? { ...m, body: mutated(Buffer.from(m.body), bodies, rnd) } : field === 1 ? { ...m, message_number: m.message_number + 1 + (i % 7) } : field === 2 ? { ...m, auth: mutated(Buffer.from(m.auth), [], rnd).toString('latin1') } : { ...m, category: 'star.round' };
    const v = timed(() => checker.verify(bad));
    if (v.error) throw new Error(`verify threw on mutation ${i}: ${String(v.error)}`);
    const changed = !(field === 0 && Buffer.compare(Buffer.from(bad.body), Buffer.from(m.body)) === 0) && !(field === 2 && bad.auth === m.auth);
    if (v.value!.ok && changed) throw new Error(`a changed message verified (mutation ${i}, field ${field})`);
    tally.tag[v.value!.ok ? 'accepted' : 'refused']++;
    slowest = Math.max(slowest, w.ms, f.ms, v.ms);
  }
  console.log(`wire fuzz, seed ${SEED}: ${JSON.stringify(tally)}; slowest ${slowest.toFixed(2)} ms`);
  expect(slowest).toBeLessThan(1000);
  expect(tally.wire.refused).toBeGreaterThan(PER_DECODER / 4);
});

test('a journal mangled anywhere is read up to the damage, never throws, and keeps appending', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-journal-fuzz-'));
  const rnd = prng(SEED + 1);
  try {
    const base = path.join(dir, 'base');
    const { inbox } = DurableInbox.open(base);
    for (let n = 0; n < 40; n++) {
      inbox.add(sample(n), n % 7 === 0 ? 'quarantined' : 'ok', 100 + n, n % 7 === 0 ? { kind: 'bad_request', message: `bad ${n}` } : undefined);
      if (n % 3 === 0) inbox.take(`msg-${n}`);
    }
    inbox.close();
    const original = await fs.readFile(path.join(base, 'inbox.journal'));
    let restoredTotal = 0;
    for (let i = 0; i < 300; i++) {
      const bytes = mutated(original, [original], rnd);
      const d = path.join(dir, `m${i}`);
      await fs.mkdir(d);
      await fs.writeFile(path.join(d, 'inbox.journal'), bytes);
      const t0 = performance.now();
      const opened = DurableInbox.open(d);
      expect(performance.now() - t0).toBeLessThan(1000);
      restoredTotal += opened.restored.length;
      for (const r of opened.restored) expect(r.wire.sender).toBe('a');
      opened.inbox.add(sample(1000 + i), 'ok', 1);
      opened.inbox.close();
      expect(DurableInbox.open(d).restored.some((r) => r.wire.id === `msg-${1000 + i}`)).toBe(true);
    }
    console.log(`journal fuzz: 300 mangled journals, ${restoredTotal} messages restored in all (40 per whole journal)`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
