/**
 * The decode worker's entry: probes Arrow payloads from untrusted frames inside a worker thread
 * with its own heap limit, so a frame that would exhaust time or memory costs the worker, not the
 * node. It answers each job with `{ id, error? }`; the pool (./decode-pool.ts) enforces the time
 * budget by terminating it.
 */
import { parentPort } from 'node:worker_threads';
import { BadRequestError } from '../errors.js';
import { decodeArrow } from './arrow-stream.js';

/** A probe request from the pool. */
export interface ProbeJob {
  /** Job number, echoed in the answer. */
  id: number;
  /** Names the value in error messages. */
  what: string;
  /** Arrow IPC payloads to decode. */
  payloads: Uint8Array[];
  /** Test hook: misbehave instead of decoding. */
  hook?: ProbeHook;
}

/** The answer to a {@link ProbeJob}. */
export interface ProbeAnswer {
  /** The job's number. */
  id: number;
  /** Why the payload was refused; absent when every payload decoded. */
  error?: string;
  /** Milliseconds the decode took inside the worker. */
  ms: number;
  /** The job's payloads, handed back (transferred) when they all decoded. */
  payloads?: Uint8Array[];
}

/** Ways a test can make the worker misbehave, to exercise the pool's time, memory and crash handling. */
export type ProbeHook = 'spin' | 'exit' | 'oom';

function misbehave(hook: ProbeHook): void {
  if (hook === 'exit') process.exit(70);
  if (hook === 'spin') for (;;);
  const hoard: number[][] = [];
  for (;;) hoard.push(Array.from({ length: 1 << 16 }, (_, i) => i));
}

function run(job: ProbeJob): ProbeAnswer {
  const t0 = performance.now();
  if (job.hook !== undefined) misbehave(job.hook);
  try {
    // each payload was transferred here and is ours to keep
    for (const payload of job.payloads) decodeArrow(payload, job.what, true);
    return { id: job.id, ms: performance.now() - t0, payloads: job.payloads };
  } catch (err) {
    // anything apache-arrow throws on a validated frame is still the frame's fault
    const message = err instanceof BadRequestError ? err.message : `cannot decode ${job.what}: ${String(err)}`;
    return { id: job.id, error: message, ms: performance.now() - t0 };
  }
}

parentPort?.on('message', (job: ProbeJob) => {
  const answer = run(job);
  // hand the buffers back, so the caller decodes from them without another copy
  parentPort!.postMessage(answer, (answer.payloads ?? []).map((p) => p.buffer as ArrayBuffer));
});
parentPort?.postMessage('ready');
