/**
 * One reusable worker thread that probe-decodes Arrow payloads of untrusted frames within a time
 * and memory budget (node:worker_threads `resourceLimits`). A probe that overruns its time budget
 * gets the worker terminated and replaced; one that runs out of heap or crashes takes down only
 * the worker. The worker is unref'd (an idle pool never keeps the process alive) and
 * {@link closeDecodePool} shuts it down.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BadRequestError, InternalError } from '../errors.js';
import { LIMIT_ENV } from '../limits.js';
import type { ProbeAnswer, ProbeHook, ProbeJob } from './decode-worker.js';

const MiB = 1024 * 1024;
/** Generous: starting the worker loads apache-arrow (and, from sources, the TypeScript loader). */
const STARTUP_TIMEOUT_MS = 60_000;

/**
 * Loads the worker module. From TypeScript sources (tests, tsx) it registers tsx's loader first:
 * on Node 20 a worker does not inherit the loader hooks of its parent.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
(async () => {
  if (workerData.tsx) (await import(pathToFileURL(workerData.tsx).href)).register();
  await import(workerData.url);
})();
`;

type TsxManifest = { exports: Record<string, { import: { default: string } }> };

function workerModule(): { url: string; tsx?: string } {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return { url: new URL('./decode-worker.js', self).href };
  let tsx: string | undefined;
  try {
    // the ESM build of tsx's register API, as its package exports name it
    const manifest = createRequire(self).resolve('tsx/package.json');
    const exported = (JSON.parse(readFileSync(manifest, 'utf8')) as TsxManifest).exports['./esm/api'].import.default;
    tsx = path.join(path.dirname(manifest), exported);
  } catch {
    tsx = undefined;
  }
  return { url: new URL('./decode-worker.ts', self).href, tsx };
}

/** Time and memory one probe may use. */
export interface ProbeBudget {
  /** Wall-clock time of the decode inside a started worker. */
  timeoutMs: number;
  /** The worker's old-generation heap, rounded up to whole MiB. */
  memoryBytes: number;
}

interface Slot {
  worker: Worker;
  memoryMb: number;
  ready: Promise<void>;
}

interface Pending {
  job: ProbeJob;
  budget: ProbeBudget;
  resolve: (answer: ProbeAnswer) => void;
  reject: (err: Error) => void;
}

function timeoutError(what: string, ms: number): BadRequestError {
  return new BadRequestError(`cannot decode ${what}: decoding ran past the time budget of ${ms} ms (decodeTimeoutMs; raise it with ${LIMIT_ENV.decodeTimeoutMs})`);
}

function memoryError(what: string, bytes: number): BadRequestError {
  return new BadRequestError(
    `cannot decode ${what}: decoding ran out of the memory budget of ${bytes} bytes (decodeMemoryBytes; raise it with ${LIMIT_ENV.decodeMemoryBytes})`,
  );
}

class DecodePool {
  private slot: Slot | undefined;
  private readonly queue: Pending[] = [];
  private running = false;
  private nextId = 1;
  /** Test hook for the next probes (see {@link setProbeHookForTests}). */
  hook: ProbeHook | undefined;
  /** Workers started so far (for tests and logs). */
  started = 0;
  /** Workers terminated by {@link DecodePool.close}. */
  private readonly closed = new WeakSet<Slot>();

  /** Decodes `payloads` in the worker; resolves with its answer or rejects with a budget error. */
  probe(payloads: Uint8Array[], what: string, budget: ProbeBudget): Promise<ProbeAnswer> {
    return new Promise((resolve, reject) => {
      const job: ProbeJob = { id: this.nextId++, what, payloads, hook: this.hook };
      this.queue.push({ job, budget, resolve, reject });
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let p = this.queue.shift(); p !== undefined; p = this.queue.shift()) {
        try {
          p.resolve(await this.run(p));
        } catch (err) {
          p.reject(err as Error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async run(p: Pending): Promise<ProbeAnswer> {
    const slot = await this.workerFor(Math.max(1, Math.ceil(p.budget.memoryBytes / MiB)), p.budget.memoryBytes);
    const { worker } = slot;
    const what = p.job.what;
    return new Promise<ProbeAnswer>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        settle();
      };
      const onMessage = (answer: ProbeAnswer): void => {
        if (answer?.id === p.job.id) finish(() => resolve(answer));
      };
      const onError = (err: Error & { code?: string }): void => {
        this.discard(slot);
        const error = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? memoryError(what, p.budget.memoryBytes) : new BadRequestError(`cannot decode ${what}: the decoder failed (${err.message})`);
        finish(() => reject(error));
      };
      const onExit = (code: number): void => {
        this.discard(slot);
        // a worker shut down by close() says nothing about the value
        const error = this.closed.has(slot)
          ? new InternalError(`decode pool closed while decoding ${what}`)
          : new BadRequestError(`cannot decode ${what}: the decoder crashed (worker exit code ${code})`);
        finish(() => reject(error));
      };
      // ref'd on purpose: a decode in flight keeps the process alive even though the worker does not
      const timer = setTimeout(() => {
        this.discard(slot);
        finish(() => reject(timeoutError(what, p.budget.timeoutMs)));
      }, p.budget.timeoutMs);
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      // each payload was copied into its own buffer by the caller: transfer, do not copy again
      worker.postMessage(p.job, p.job.payloads.map((b) => b.buffer as ArrayBuffer));
    });
  }

  private async workerFor(memoryMb: number, memoryBytes: number): Promise<Slot> {
    if (this.slot !== undefined && this.slot.memoryMb !== memoryMb) this.discard(this.slot);
    const slot = this.slot ?? this.spawn(memoryMb, memoryBytes);
    try {
      await slot.ready;
    } catch (err) {
      this.discard(slot);
      throw err;
    }
    return slot;
  }

  private spawn(memoryMb: number, memoryBytes: number): Slot {
    const worker = new Worker(BOOTSTRAP, { eval: true, workerData: workerModule(), resourceLimits: { maxOldGenerationSizeMb: memoryMb } });
    worker.unref();
    // a permanent listener: an 'error' event without one would throw in this thread
    worker.on('error', () => undefined);
    this.started++;
    const ready = new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new InternalError(`the decode worker did not start: ${why}`));
      };
      const timer = setTimeout(() => fail(`no answer within ${STARTUP_TIMEOUT_MS} ms`), STARTUP_TIMEOUT_MS);
      worker.once('message', (m: unknown) => {
        if (m !== 'ready') return fail(`unexpected first message ${JSON.stringify(m)}`);
        clearTimeout(timer);
        resolve();
      });
      worker.once('error', (err: Error & { code?: string }) =>
        fail(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `a memory budget of ${memoryBytes} bytes is too small to load the decoder (raise ${LIMIT_ENV.decodeMemoryBytes})` : err.message),
      );
      worker.once('exit', (code) => fail(`it exited with code ${code}`));
    });
    ready.catch(() => undefined);
    this.slot = { worker, memoryMb, ready };
    return this.slot;
  }

  private discard(slot: Slot): void {
    if (this.slot === slot) this.slot = undefined;
    void slot.worker.terminate();
  }

  /**
   * Terminates the worker; queued probes and one in flight fail with InternalError (not the value's
   * fault). The pool starts a new worker on the next probe.
   */
  async close(): Promise<void> {
    for (let p = this.queue.shift(); p !== undefined; p = this.queue.shift()) p.reject(new InternalError(`decode pool closed before decoding ${p.job.what}`));
    const slot = this.slot;
    this.slot = undefined;
    if (slot === undefined) return;
    this.closed.add(slot);
    await slot.worker.terminate();
  }
}

/** The process-wide pool. */
export const decodePool = new DecodePool();

/**
 * Shuts the decode worker down (for tests and a node's close). Safe to call at any time; a later
 * untrusted decode starts a fresh worker.
 */
export function closeDecodePool(): Promise<void> {
  return decodePool.close();
}

/**
 * Internal test hook: makes the worker spin, exit or exhaust its heap on the next probes instead of
 * decoding, to exercise the time budget, crash handling and memory budget. `undefined` restores it.
 */
export function setProbeHookForTests(hook: ProbeHook | undefined): void {
  decodePool.hook = hook;
}
