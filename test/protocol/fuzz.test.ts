/**
 * Fuzzing `flame worker` over its pipes with a fixed seed: random bytes, random JSON and mutated
 * valid packets, thousands of lines. After every line a sentinel `ping` shows where the answers
 * to that line end; each line must be answered (an `ack` that hits a waiting id excepted) by a
 * well-formed packet referring to it, and the worker must stay up, keep its samples and still
 * classify correctly at the end.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { jest } from '@jest/globals';
import type { WorkerClient } from '../../apps/protocol/client.js';
import { referencedId } from '../../apps/protocol/client.js';
import { PACKET_TYPES, ProtocolError, decodePacket, type Packet } from '../../apps/protocol/packets.js';
import { seeded, spawnWorker, tempDir, writeStripeSet } from './worker-harness.js';

jest.setTimeout(120_000);

const LINES = 3000;
const SENTINEL_BASE = 1_000_000_000;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function fuzzer(seed: number, dir: string, sets: { h: string; v: string }) {
  const rand = seeded(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const CHARS = '{}[]":,\\ \t\r0123456789-+.eEabcdefghijklmnopqrstuvwxyznulltruefalse\u00e9\u2028\u0000\ud83d\ude00';
  const randomText = (max: number) => Array.from({ length: int(max) }, () => CHARS[int(CHARS.length)]).join('');
  const randomJson = (depth: number): Json => {
    switch (int(depth > 0 ? 8 : 6)) {
      case 0: return null;
      case 1: return rand() < 0.5;
      case 2: return pick([0, -1, 1, 2 ** 53, 1.5, -0, 1e308, int(100)]);
      case 3: return randomText(12);
      case 4: return pick([...PACKET_TYPES, 'ACK', '', 'pingg']);
      case 5: return pick([path.join(sets.h, 'h000.png'), sets.v, dir, '/dev/null', '', '/no/such', 'h', 'v', 'x']);
      case 6: return Array.from({ length: int(4) }, () => randomJson(depth - 1));
      default: return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['type', 'id', 'data', 'message', 'path', 'label', randomText(5)]), randomJson(depth - 1)]));
    }
  };
  const id = () => pick([int(50), int(5000), -1, 0]);
  const templates = (): Record<string, Json> => {
    switch (int(8)) {
      case 0: return { type: 'ping', id: id(), data: { message: randomText(8) } };
      case 1: return { type: 'ack', id: id(), data: { id: int(200) } };
      case 2: return { type: 'pong', id: id(), data: { id: int(200), message: randomText(4) } };
      case 3: return { type: 'error', id: id(), data: { id: int(200), code: 'bug', etc: randomText(6) } };
      case 4: return { type: 'progress', id: id(), data: { id: int(200), completeness: rand() * 1.2 } };
      case 5: return { type: 'load-samples', id: id(), data: { path: pick([sets.h, sets.v, path.join(sets.v, 'v001.png')]), label: pick(['h', 'v', 'w']) } };
      case 6: return { type: 'infer', id: id(), data: { input_path: pick([sets.h, path.join(sets.h, 'h001.png')]), output_path: pick(['', path.join(dir, 'out.json'), dir]) } };
      default: return { type: 'inference-result', id: id(), data: { label: 'h' } };
    }
  };
  const mutateText = (s: string): string => {
    const chars = [...s];
    for (let k = 1 + int(3); k > 0; k--) {
      const at = int(chars.length + 1);
      const op = int(3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, CHARS[int(CHARS.length)]);
      else chars[Math.min(at, chars.length - 1)] = CHARS[int(CHARS.length)];
    }
    return chars.join('');
  };
  const mutateValue = (p: Record<string, Json>): Record<string, Json> => {
    const out: Record<string, Json> = JSON.parse(JSON.stringify(p));
    const data = out.data as Record<string, Json>;
    const keys = Object.keys(data);
    switch (int(4)) {
      case 0: delete out[pick(['type', 'id', 'data'])]; break;
      case 1: out[pick(['type', 'id', 'data'])] = randomJson(2); break;
      case 2: delete data[pick(keys)]; break;
      default: data[pick(keys)] = randomJson(1);
    }
    return out;
  };
  /** One fuzz line: a string, or raw bytes (invalid UTF-8). */
  return (): string | Buffer => {
    const kind = int(10);
    if (kind === 0) return randomText(80).replace(/\n/g, '');
    if (kind === 1) return Buffer.from([0xff, 0xfe, ...Array.from({ length: int(20) }, () => int(256))].filter((b) => b !== 10));
    if (kind === 2) return JSON.stringify(randomJson(3));
    if (kind <= 4) return JSON.stringify(templates());
    if (kind <= 7) return mutateText(JSON.stringify(templates())).replace(/\n/g, '');
    return JSON.stringify(mutateValue(templates()));
  };
}

/**
 * What the worker's answers to `line` refer to (`undefined` when no answer is required), and
 * whether the answer may come late: requests check their paths before the ack or error, so a
 * sentinel ping sent after them can be answered first.
 */
function expectedAnswer(line: string): { ref?: number; late: boolean } {
  try {
    const p = decodePacket(line);
    return { ref: p.type === 'ack' ? undefined : p.id, late: p.type === 'load-samples' || p.type === 'infer' };
  } catch (e) {
    if (e instanceof ProtocolError) return { ref: e.refId, late: false };
    throw e;
  }
}

let dir: string;
let worker: WorkerClient;

beforeAll(async () => {
  dir = await tempDir('flame-worker-fuzz-');
  await mkdir(dir, { recursive: true });
});

afterAll(async () => {
  worker?.kill();
  await rm(dir, { recursive: true, force: true });
});

test(`the worker survives ${LINES} random and mutated lines and answers each with a well-formed packet`, async () => {
  const sets = await writeStripeSet(path.join(dir, 'samples'), 4, 3);
  worker = spawnWorker(['--classes', 'h,v', '--chunk-size', '2', '--quiet'], { autoAck: false });
  const next = fuzzer(20240607, dir, sets);
  const unanswered: string[] = [];
  for (let i = 0; i < LINES; i++) {
    const line = next();
    const from = worker.received.length;
    if (typeof line === 'string') worker.sendLine(line);
    else worker.sendBytes(Buffer.concat([line, Buffer.from('\n')]));
    const sentinel = SENTINEL_BASE + i;
    worker.sendPacket('ping', { message: `s${i}` }, sentinel);
    await worker.waitFor((p) => p.type === 'pong' && p.data.id === sentinel, 20_000, from);
    const text = typeof line === 'string' ? line : new TextDecoder().decode(line);
    const { ref, late } = expectedAnswer(text);
    if (ref === undefined) continue;
    if (late) {
      const first = (p: Packet) => (p.type === 'ack' || p.type === 'error') && referencedId(p) === ref;
      await worker.waitFor(first, 20_000, from).catch(() => unanswered.push(text));
    } else {
      const end = worker.received.findIndex((p, k) => k >= from && p.type === 'pong' && p.data.id === sentinel);
      const answers: Packet[] = worker.received.slice(from, end);
      if (!answers.some((p) => referencedId(p) === ref)) unanswered.push(text);
    }
  }
  expect(unanswered).toEqual([]);
  expect(worker.strayLines).toEqual([]);
  expect(worker.alive).toBe(true);
  // Every packet the worker sent is one it may send, with a fresh rising id.
  const outgoing = new Set(['ack', 'error', 'ping', 'pong', 'progress', 'inference-result']);
  expect(worker.received.every((p) => outgoing.has(p.type))).toBe(true);
  const ids = worker.received.map((p) => p.id);
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
  const errors = worker.received.filter((p) => p.type === 'error');
  expect(errors.length).toBeGreaterThan(LINES / 3);
  const codes = new Set(errors.map((p) => (p.type === 'error' ? p.data.code : '')));
  expect(codes.size).toBeGreaterThanOrEqual(10);

  // Still working: samples of both classes (loaded by the fuzz lines or now) classify right.
  worker.autoAck = true;
  await worker.request('load-samples', { path: sets.h, label: 'h' });
  await worker.request('load-samples', { path: sets.v, label: 'v' });
  const out = await worker.request('infer', { input_path: path.join(sets.v, 'v002.png'), output_path: '' });
  expect(out.label).toBe('v');
  expect(await worker.close()).toBe(0);
});
