/**
 * The ML side of the seed-004 protocol. It takes lines (one packet each), answers with lines, and
 * keeps the training set. Transport-free: stdio.ts connects it to stdin/stdout.
 *
 * Rules this implementation follows (also in README.md):
 * - Rejected packets get an `error` (never an `ack`); work that takes time gets an `ack` first,
 *   then `progress` packets with rising `completeness`, the last one exactly 1. Work that fails
 *   after its `ack` ends with an `error` instead of the final progress.
 * - A line over the line cap is answered with `field-out-of-range` about `packet` (id -1), see
 *   {@link ProtocolWorker.rejectOverlongLine}; an image over the pixel cap fails like an undecodable one.
 * - `ping` → `pong`; `pong`, `error` (from the other side) → `ack`; `ack` → nothing.
 * - Every packet this side sends except `ack` and `ping` waits for an `ack` (a `ping` for a
 *   `pong`). An `ack`/`pong` for an id that is not waiting, and an `error` about an id this side
 *   never sent, give `no-such-id`. A `progress` from the other side refers to no task of this
 *   side, so it too gives `no-such-id`; an `inference-result` gives `no-such-packet` (this side
 *   never asks for inferences).
 * - Several requests may run at once; their packets interleave. A failing request never touches
 *   the training set, so earlier samples survive every bad packet.
 */
import { stat, writeFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Stats } from 'node:fs';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { DEFAULT_LIMITS, overLimit, raiseHint } from '../../src/limits.js';
import { argmaxRows, type Predictor, type SampleModel } from './model.js';
import { NO_PACKET_ID, ProtocolError, decodePacket, encodePacket, type Packet, type PacketBodies, type PacketOf, type PacketType } from './packets.js';
import { SampleStore, listImageFiles, readImageBatch } from './samples.js';

/** Options of {@link ProtocolWorker}. */
export interface ProtocolWorkerOptions {
  /** The model; its classes are the classes `load-samples` accepts. */
  model: SampleModel;
  /** Receives every outgoing packet as one line without the LF. */
  send: (line: string) => void;
  /** Diagnostics (stderr in the CLI); never protocol output. */
  log?: (message: string) => void;
  /** Images decoded at once per request (default 4). */
  concurrency?: number;
  /** Files per progress step (default 256). */
  chunkSize?: number;
  /** Most classes the model may have (default `DEFAULT_LIMITS.maxClasses`); more is refused at construction. */
  maxClasses?: number;
  /** Most pixels (width × height, from the header) of an image the worker decodes (default `DEFAULT_LIMITS.maxImagePixels`). */
  maxImagePixels?: number;
}

interface PendingPing {
  message: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A fitted predictor shared by the infers that use it; released once superseded and unused. */
interface PredictorSlot {
  predictor: Predictor;
  version: number;
  users: number;
  superseded: boolean;
}

/** The worker: feed it lines with {@link handleLine}; it answers through `send`. */
export class ProtocolWorker {
  private readonly model: SampleModel;
  private readonly sendLine: (line: string) => void;
  private readonly log: (message: string) => void;
  private readonly concurrency: number;
  private readonly chunkSize: number;
  private readonly maxImagePixels: number;
  private readonly store = new SampleStore();
  /** Ids of sent packets waiting for an `ack`, with their types. */
  private readonly awaitingAck = new Map<number, PacketType>();
  private readonly pendingPings = new Map<number, PendingPing>();
  private readonly tasks = new Set<Promise<void>>();
  /** load-samples requests still running. */
  private readonly loads = new Set<Promise<void>>();
  private nextId = 1;
  private current: PredictorSlot | undefined;
  private training: Promise<PredictorSlot> | undefined;

  /** @throws BadRequestError when the model has more classes than `maxClasses` */
  constructor(options: ProtocolWorkerOptions) {
    const maxClasses = options.maxClasses ?? DEFAULT_LIMITS.maxClasses;
    if (options.model.classes.length > maxClasses) throw overLimit('worker classes', options.model.classes.length, 'maxClasses', maxClasses);
    this.maxImagePixels = options.maxImagePixels ?? DEFAULT_LIMITS.maxImagePixels;
    this.model = options.model;
    this.sendLine = options.send;
    this.log = options.log ?? (() => undefined);
    this.concurrency = options.concurrency ?? 4;
    this.chunkSize = options.chunkSize ?? 256;
  }

  /** Number of loaded samples. */
  get sampleCount(): number {
    return this.store.size;
  }

  /** Ids of sent packets still waiting for their `ack`. */
  get unacknowledged(): number[] {
    return [...this.awaitingAck.keys()];
  }

  /** Handles one line. Never throws: every problem is answered with an `error` packet. */
  handleLine(line: string): void {
    let packet: Packet;
    try {
      packet = decodePacket(line);
    } catch (e) {
      this.reportFailure(e, NO_PACKET_ID);
      return;
    }
    try {
      this.dispatch(packet);
    } catch (e) {
      this.reportFailure(e, packet.id);
    }
  }

  /**
   * Answers a line that was longer than the line cap and was discarded unread (see stdio.ts):
   * `field-out-of-range` about the whole `packet`, with id -1 since its id was never read.
   */
  rejectOverlongLine(maxLineBytes: number): void {
    this.log(`discarded a line of more than ${maxLineBytes} bytes (${raiseHint('maxLineBytes')})`);
    this.sendError(new ProtocolError('field-out-of-range', { field_name: 'packet', range_string: `[0, ${maxLineBytes}] bytes` }));
  }

  /** Resolves once every request accepted so far has finished. */
  async idle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /**
   * Pings the other side; resolves when a `pong` with the same message arrives. A `pong` with
   * another message is answered with `wrong-pong` and rejects.
   */
  ping(message: string): Promise<void> {
    return new Promise<void>((resolvePing, reject) => {
      const id = this.emit('ping', { message }, false);
      this.pendingPings.set(id, { message, resolve: resolvePing, reject });
    });
  }

  /** Releases the model's sessions (after {@link idle}). */
  async close(): Promise<void> {
    for (const p of this.pendingPings.values()) p.reject(new Error('worker closed before the pong arrived'));
    this.pendingPings.clear();
    if (this.current) await this.current.predictor.release();
    this.current = undefined;
    await this.model.release();
  }

  // ------------------------------------------------------------------ sending

  private emit<T extends PacketType>(type: T, data: PacketBodies[T], expectAck: boolean): number {
    const id = this.nextId++;
    if (expectAck) this.awaitingAck.set(id, type);
    this.sendLine(encodePacket(type, id, data));
    return id;
  }

  private ack(id: number): void {
    this.emit('ack', { id }, false);
  }

  private sendError(e: ProtocolError): void {
    this.emit('error', { id: e.refId, code: e.code, etc: e.message }, true);
  }

  /** Protocol errors go out as they are; anything else is a `bug`, with details on the log. */
  private reportFailure(e: unknown, refId: number): void {
    if (e instanceof ProtocolError) {
      if (e.refId === NO_PACKET_ID) e.refId = refId;
      this.sendError(e);
      return;
    }
    // Bad input (an undecodable or over-cap image) is not a bug here, but the protocol has no other code.
    if (e instanceof BadRequestError || e instanceof NotFoundError) this.log(`packet ${refId} failed: ${e.message}`);
    else this.log(`bug while handling packet ${refId}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    this.sendError(new ProtocolError('bug', {}, refId));
  }

  // ------------------------------------------------------------------ receiving

  private dispatch(p: Packet): void {
    switch (p.type) {
      case 'ack':
        if (!this.awaitingAck.delete(p.data.id)) throw new ProtocolError('no-such-id', { packet_type: 'ack', id: p.data.id }, p.id);
        return;
      case 'ping':
        this.emit('pong', { id: p.id, message: p.data.message }, true);
        return;
      case 'pong':
        return this.onPong(p);
      case 'error':
        return this.onError(p);
      case 'progress':
        throw new ProtocolError('no-such-id', { packet_type: 'progress', id: p.data.id }, p.id);
      case 'inference-result':
        throw new ProtocolError('no-such-packet', { packet: p.type }, p.id);
      case 'load-samples': {
        const load = this.run(p.id, () => this.loadSamples(p));
        this.loads.add(load);
        void load.finally(() => this.loads.delete(load));
        return;
      }
      case 'infer': {
        // An infer sees every sample whose load-samples came before it on the line.
        const earlierLoads = [...this.loads];
        this.run(p.id, () => this.infer(p, earlierLoads));
        return;
      }
    }
  }

  private onPong(p: PacketOf<'pong'>): void {
    const pending = this.pendingPings.get(p.data.id);
    if (!pending) throw new ProtocolError('no-such-id', { packet_type: 'pong', id: p.data.id }, p.id);
    this.pendingPings.delete(p.data.id);
    if (p.data.message !== pending.message) {
      const e = new ProtocolError('wrong-pong', { message: pending.message, wrong_message: p.data.message }, p.id);
      pending.reject(e);
      throw e;
    }
    this.ack(p.id);
    pending.resolve();
  }

  private onError(p: PacketOf<'error'>): void {
    const ref = p.data.id;
    // -1 is the other side's "about a packet whose id I could not read"; else it must be ours.
    const known = ref === NO_PACKET_ID || (ref >= 1 && ref < this.nextId);
    if (!known) throw new ProtocolError('no-such-id', { packet_type: 'error', id: ref }, p.id);
    this.log(`the other side reports ${p.data.code} about packet ${ref}${p.data.etc ? `: ${p.data.etc}` : ''}`);
    // The error answers the packet in place of its ack or pong.
    this.awaitingAck.delete(ref);
    const ping = this.pendingPings.get(ref);
    if (ping) {
      this.pendingPings.delete(ref);
      ping.reject(new Error(`ping ${ref} answered with error ${p.data.code}`));
    }
    this.ack(p.id);
  }

  /** Runs a request in the background; its failure becomes an `error` about `id`. Never rejects. */
  private run(id: number, work: () => Promise<void>): Promise<void> {
    const task = work().catch((e: unknown) => this.reportFailure(e, id));
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
    return task;
  }

  /** Sends `progress` packets for a request: rising fractions, then exactly 1 from {@link done}. */
  private progress(id: number): { step: (done: number, total: number) => void; done: () => void } {
    let last = 0;
    return {
      step: (done, total) => {
        const c = total === 0 ? 1 : done / total;
        if (c > last && c < 1) {
          last = c;
          this.emit('progress', { id, completeness: c }, true);
        }
      },
      done: () => void this.emit('progress', { id, completeness: 1 }, true),
    };
  }

  // ------------------------------------------------------------------ requests

  private async loadSamples(p: PacketOf<'load-samples'>): Promise<void> {
    const label = this.model.classes.indexOf(p.data.label);
    if (label < 0) throw new ProtocolError('unexpected-class', { class: p.data.label }, p.id);
    const path = resolve(p.data.path);
    const info = await statOrFail(path, p.id);
    if (!info.isFile() && !info.isDirectory()) throw new ProtocolError('unexpected-not-file-or-directory', { path }, p.id);
    this.ack(p.id);

    const files = info.isFile() ? [path] : await listImageFiles(path);
    const progress = this.progress(p.id);
    const loaded: [string, { label: number; features: Float32Array }][] = [];
    const dim = this.model.featureDim;
    for (let start = 0; start < files.length; start += this.chunkSize) {
      const chunk = files.slice(start, start + this.chunkSize);
      const features = await this.model.features(await readImageBatch(chunk, this.model.input, this.concurrency, this.maxImagePixels));
      chunk.forEach((f, i) => loaded.push([f, { label, features: features.slice(i * dim, (i + 1) * dim) }]));
      progress.step(start + chunk.length, files.length);
    }
    // All or nothing: a file that fails above leaves the training set as it was.
    if (loaded.length > 0) this.store.addAll(loaded);
    this.log(`loaded ${loaded.length} samples of "${p.data.label}" from ${path} (${this.store.size} in total)`);
    progress.done();
  }

  private async infer(p: PacketOf<'infer'>, earlierLoads: readonly Promise<void>[]): Promise<void> {
    const input = resolve(p.data.input_path);
    const info = await statOrFail(input, p.id);
    if (!info.isFile() && !info.isDirectory()) throw new ProtocolError('unexpected-not-file-or-directory', { path: input }, p.id);
    const toPacket = p.data.output_path === '';
    if (toPacket && !info.isFile()) throw new ProtocolError('unexpected-not-file', { path: input }, p.id);
    const output = toPacket ? '' : resolve(p.data.output_path);
    if (!toPacket) await checkOutputPath(output, p.id);
    this.ack(p.id);

    await Promise.all(earlierLoads); // they never reject: failures were reported already
    const slot = await this.predictor();
    slot.users++;
    try {
      const files = info.isFile() ? [input] : await listImageFiles(input);
      const progress = this.progress(p.id);
      const result: Record<string, string> = {};
      const classes = this.model.classes;
      for (let start = 0; start < files.length; start += this.chunkSize) {
        const chunk = files.slice(start, start + this.chunkSize);
        const batch = await readImageBatch(chunk, this.model.input, this.concurrency, this.maxImagePixels);
        const best = argmaxRows(await slot.predictor.scores(batch), classes.length);
        chunk.forEach((f, i) => (result[f] = classes[best[i]]));
        progress.step(start + chunk.length, files.length);
      }
      if (toPacket) {
        this.emit('inference-result', { label: result[input], id: p.id }, true);
      } else {
        // Written next to the target and renamed, so readers never see half a file.
        const tmp = `${output}.${process.pid}.${p.id}.tmp`;
        await writeFile(tmp, JSON.stringify(result, null, 2) + '\n');
        await rename(tmp, output);
      }
      progress.done();
    } finally {
      slot.users--;
      this.releaseIfUnused(slot);
    }
  }

  /**
   * A predictor fitted on the current training set: the one from the last infer when no sample
   * changed since, else a new one (one training at a time; concurrent infers share it).
   */
  private async predictor(): Promise<PredictorSlot> {
    const target = this.store.version;
    while (true) {
      const current = this.current;
      if (current && (current.version >= target || !this.model.trainable)) return current;
      if (!this.training) {
        this.training = this.train().finally(() => (this.training = undefined));
      }
      await this.training;
    }
  }

  private async train(): Promise<PredictorSlot> {
    const started = Date.now();
    const { features, labels, version } = this.store.snapshot(this.model.featureDim);
    const predictor = await this.model.fit(features, labels);
    const slot: PredictorSlot = { predictor, version, users: 0, superseded: false };
    const previous = this.current;
    this.current = slot;
    if (previous) {
      previous.superseded = true;
      this.releaseIfUnused(previous);
    }
    if (this.model.trainable) {
      const counts = this.store.countsPerClass(this.model.classes.length);
      this.log(`trained on ${labels.length} samples (${counts.join('/')} per class) in ${Date.now() - started} ms`);
    }
    return slot;
  }

  private releaseIfUnused(slot: PredictorSlot): void {
    if (slot.superseded && slot.users === 0) {
      slot.superseded = false; // release once
      slot.predictor.release().catch((e: unknown) => this.log(`releasing a predictor failed: ${String(e)}`));
    }
  }
}

/** `stat` of a path the other side named; a missing path is `path-does-not-exist`. */
async function statOrFail(path: string, refId: number): Promise<Stats> {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ProtocolError('path-does-not-exist', { path }, refId);
    throw e;
  }
}

/** An output path must be a file if it exists, and its folder must exist and be a folder. */
async function checkOutputPath(output: string, refId: number): Promise<void> {
  let info: Stats | undefined;
  try {
    info = await stat(output);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
  }
  if (info) {
    if (!info.isFile()) throw new ProtocolError('unexpected-not-file', { path: output }, refId);
    return;
  }
  const parent = dirname(output);
  const parentInfo = await statOrFail(parent, refId);
  if (!parentInfo.isDirectory()) throw new ProtocolError('unexpected-not-directory', { path: parent }, refId);
}
