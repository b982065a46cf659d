/**
 * Decoding of values from peers and storage within a size, time and memory budget. The size cap is
 * checked first, from the byte count alone. JSON, bytes and tensors then decode in this thread:
 * their decoders check every length against the frame and run in time linear in its size, so the
 * hot path pays nothing extra. Values holding Arrow tables are first decoded in the decode worker
 * (./decode-pool.ts) as a probe, where a time or heap overrun costs only the worker, and then
 * decoded for real here: decoding is deterministic, so what passed the probe is safe in this thread.
 */
import { BadRequestError } from '../errors.js';
import { overLimit, type Limits } from '../limits.js';
import { arrowPayloads, decodeKind } from './decode.js';
import { decodePool } from './decode-pool.js';
import { open } from './envelope.js';
import type { FlameValue } from './index.js';

/** What one untrusted decode may cost; `decodeBudgetOf` builds it from the node's limits. */
export interface DecodeBudget {
  /** Largest frame accepted, in bytes (`Limits.maxMessageBytes`, or `maxReferenceBytes` for storage). */
  maxBytes: number;
  /** Time the Arrow probe may take, in ms (`Limits.decodeTimeoutMs`). */
  timeoutMs: number;
  /** Heap the Arrow probe may use, in bytes (`Limits.decodeMemoryBytes`). */
  memoryBytes: number;
  /** The setting `maxBytes` comes from, named in the size error; default `maxMessageBytes`. */
  sizeSetting?: 'maxMessageBytes' | 'maxReferenceBytes';
}

/** The budget of a node's limits: `maxMessageBytes` (or `maxReferenceBytes`), `decodeTimeoutMs`, `decodeMemoryBytes`. */
export function decodeBudgetOf(limits: Limits, sizeSetting: 'maxMessageBytes' | 'maxReferenceBytes' = 'maxMessageBytes'): DecodeBudget {
  return { maxBytes: limits[sizeSetting], timeoutMs: limits.decodeTimeoutMs, memoryBytes: limits.decodeMemoryBytes, sizeSetting };
}

function checkBudget(budget: DecodeBudget): void {
  for (const field of ['maxBytes', 'timeoutMs', 'memoryBytes'] as const) {
    const v = budget?.[field];
    if (!Number.isSafeInteger(v) || v < 1) throw new BadRequestError(`decode budget ${field}: expected a whole number >= 1, got ${JSON.stringify(v)}`);
  }
}

/**
 * Decodes a frame from an untrusted source (a peer's message, a stored object, a sealed payload).
 * `what` names it in errors. Refuses with BadRequestError, naming `what` and the setting to raise:
 * a frame over `budget.maxBytes` (before reading it), anything `decodeValue` refuses, and an
 * Arrow payload whose decode overruns `budget.timeoutMs` or `budget.memoryBytes` (or crashes the
 * decoder). Worst case it takes about twice the time budget (the probe, then the real decode).
 */
export async function decodeUntrusted(bytes: Uint8Array, what: string, budget: DecodeBudget): Promise<FlameValue> {
  checkBudget(budget);
  const size = bytes instanceof Uint8Array ? bytes.byteLength : 0;
  if (size > budget.maxBytes) throw overLimit(`cannot decode ${what}`, `${size} bytes`, budget.sizeSetting ?? 'maxMessageBytes', budget.maxBytes);
  const { kind, payload } = open(bytes, what);
  const arrow = arrowPayloads(kind, payload, what);
  if (arrow.length === 0) return decodeKind(kind, payload, what);
  // own copies, transferred to the worker and back (a view would clone its whole backing buffer);
  // the tables are then read from them, so the payloads are copied once, as decodeValue does
  const answer = await decodePool.probe(
    arrow.map((p) => new Uint8Array(p)),
    what,
    budget,
  );
  if (answer.error !== undefined) throw new BadRequestError(answer.error);
  return decodeKind(kind, payload, what, answer.payloads);
}
