/**
 * FLAME's result semantics over two ObjectStores: the hub (shared by the analysis' nodes and the
 * analyst) and this node's local storage. Values travel encoded with the codec; big final results
 * can be streamed in and out without holding them in memory.
 *
 * Keys:
 *   hub    projects/<project>/analyses/<analysis>/intermediate/<id>   intermediate results of every node
 *   hub    projects/<project>/analyses/<analysis>/final/<id>          final results (aggregator only)
 *   local  projects/<project>/local/<id>                              this node's results, kept across the
 *                                                                     project's analyses (seed 003: "for later
 *                                                                     analysis in the same project")
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { contentTypeOfKind, decodeValue, encodeValue, valueKindOf, type FlameValue, type JsonValue } from '../codec/index.js';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../errors.js';
import { assertSafeId } from './keys.js';
import type { ObjectInfo, ObjectStore } from './port.js';
import { progressCounter } from './progress.js';

/** Options when storing a result. */
export interface ResultOptions {
  /** A human-readable name (any text up to 256 characters); defaults to the result id. */
  name?: string;
  /** Extra JSON facts listed with the result (seed 003's `other`); small, it travels as metadata. */
  other?: { [key: string]: JsonValue };
}

/** Options when streaming a final result. */
export interface StreamResultOptions extends ResultOptions {
  /** Called with the bytes uploaded so far. */
  onProgress?: (bytes: number) => void;
  /** Media type of the streamed bytes (default application/octet-stream). */
  contentType?: string;
}

/** One hub result, with seed 003's "result structure hub" fields. */
export interface HubResultInfo {
  /** The result's id (a UUID). */
  result_id: string;
  /** Its name (the id when none was given). */
  result_name: string;
  /** The node that wrote it. */
  node_id: string;
  /** Stored bytes. */
  result_size: number;
  /** ISO-8601 time it was written. */
  result_time: string;
  /** The node that wrote it. */
  result_owner: string;
  /** The JSON facts given as `other` when it was stored; `{}` when none. */
  other: { [key: string]: JsonValue };
}

/** One local result, with seed 003's "result structure local" fields. */
export interface LocalResultInfo {
  /** The result's id (a UUID). */
  result_id: string;
  /** Its name (the id when none was given). */
  result_name: string;
  /** The analysis that stored it. */
  analysis_id: string;
  /** Stored bytes. */
  result_size: number;
  /** ISO-8601 time it was written. */
  result_time: string;
  /** The node that wrote it. */
  result_owner: string;
  /** The JSON facts given as `other` when it was stored; `{}` when none. */
  other: { [key: string]: JsonValue };
}

/** What a ResultService works on and for whom. */
export interface ResultServiceOptions {
  /** Hub storage, shared by the analysis' nodes. */
  hub: ObjectStore;
  /** This node's local storage. */
  local: ObjectStore;
  /** This node's id (recorded as owner of what it stores). */
  nodeId: string;
  /** The analysis whose hub results the service reads and writes. */
  analysisId: string;
  /** The project; local results are kept per project. */
  projectId: string;
  /** Only the aggregator may submit final results. */
  isAggregator: boolean;
  /** The aggregator's node id, for error messages. */
  aggregatorId?: string;
}

/** How the bytes of a result are stored: a codec frame, or raw bytes from a stream. */
type Encoding = 'flame-v1' | 'raw';

const MAX_NAME_CHARS = 256;

/** Result storage with FLAME's semantics; see the module comment for the key layout. */
export class ResultService {
  /** This node's id (written as owner of every result it stores). */
  readonly nodeId: string;
  /** The analysis whose hub results this service reads and writes. */
  readonly analysisId: string;
  /** The project; local results are kept per project. */
  readonly projectId: string;
  /** Whether this node may submit final results. */
  readonly isAggregator: boolean;
  /** Hub storage (shared by the analysis' nodes). */
  readonly hub: ObjectStore;
  /** This node's local storage. */
  readonly local: ObjectStore;
  private readonly aggregatorId?: string;

  /** Checks the ids (BadRequestError naming a bad one); touches no storage. */
  constructor(options: ResultServiceOptions) {
    this.nodeId = assertSafeId(options.nodeId, 'node id');
    this.analysisId = assertSafeId(options.analysisId, 'analysis id');
    this.projectId = assertSafeId(options.projectId, 'project id');
    this.isAggregator = options.isAggregator;
    this.aggregatorId = options.aggregatorId;
    this.hub = options.hub;
    this.local = options.local;
  }

  private analysisPrefix(): string {
    return `projects/${this.projectId}/analyses/${this.analysisId}`;
  }

  private intermediateKey(id: string): string {
    return `${this.analysisPrefix()}/intermediate/${id}`;
  }

  private finalKey(id: string): string {
    return `${this.analysisPrefix()}/final/${id}`;
  }

  private localKey(id: string): string {
    return `projects/${this.projectId}/local/${id}`;
  }

  private assertAggregator(): void {
    if (this.isAggregator) return;
    const who = this.aggregatorId === undefined ? 'the aggregator' : `the aggregator "${this.aggregatorId}"`;
    throw new UnauthorizedError(`node "${this.nodeId}" may not submit a final result: only ${who} may submit final results`);
  }

  /** Metadata common to every result; `other` and the name are URI-encoded (S3 metadata is ASCII). */
  private metadata(id: string, opts: ResultOptions, encoding: Encoding, kind: string, contentType: string): Record<string, string> {
    const name = opts.name ?? id;
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS) {
      throw new BadRequestError(`result name ${JSON.stringify(name)}: expected 1-${MAX_NAME_CHARS} characters`);
    }
    const meta: Record<string, string> = {
      'result-name': encodeURIComponent(name),
      'node-id': this.nodeId,
      'analysis-id': this.analysisId,
      owner: this.nodeId,
      encoding,
      'value-kind': kind,
      'content-type': encodeURIComponent(contentType),
    };
    if (opts.other !== undefined) {
      if (opts.other === null || typeof opts.other !== 'object' || Array.isArray(opts.other)) {
        throw new BadRequestError(`result ${JSON.stringify(name)} option other: expected a JSON object`);
      }
      if (valueKindOf(opts.other) !== 'json') throw new BadRequestError(`result ${JSON.stringify(name)} option other: JSON only (no bytes, tables or tensors)`);
      meta.other = encodeURIComponent(JSON.stringify(opts.other));
    }
    return meta;
  }

  private async putValue(store: ObjectStore, key: string, id: string, value: FlameValue, opts: ResultOptions): Promise<string> {
    const kind = valueKindOf(value);
    const bytes = encodeValue(value);
    await store.put(key, bytes, { metadata: this.metadata(id, opts, 'flame-v1', kind, contentTypeOfKind(kind)) });
    return id;
  }

  /** Submits a final result to the hub (aggregator only; others get UnauthorizedError). Returns its id. */
  async sendResult(value: FlameValue, opts: ResultOptions = {}): Promise<string> {
    this.assertAggregator();
    const id = randomUUID();
    return this.putValue(this.hub, this.finalKey(id), id, value, opts);
  }

  /**
   * Streams a big final result to the hub (multipart on S3, never whole in memory); aggregator only.
   * `getResult` returns it as bytes, `getResultStream` streams it back. Returns its id.
   */
  async sendResultStream(stream: Readable, opts: StreamResultOptions = {}): Promise<string> {
    this.assertAggregator();
    const id = randomUUID();
    const contentType = opts.contentType ?? 'application/octet-stream';
    await this.hub.put(this.finalKey(id), stream, {
      metadata: this.metadata(id, opts, 'raw', 'bytes', contentType),
      onProgress: opts.onProgress,
    });
    return id;
  }

  /** Saves an intermediate result on the hub, for the analysis' other nodes. Returns its id. */
  async saveIntermediateResult(value: FlameValue, opts: ResultOptions = {}): Promise<string> {
    const id = randomUUID();
    return this.putValue(this.hub, this.intermediateKey(id), id, value, opts);
  }

  /** Saves an intermediate result in this node's local storage. Returns its id. */
  async saveIntermediateResultLocal(value: FlameValue, opts: ResultOptions = {}): Promise<string> {
    const id = randomUUID();
    return this.putValue(this.local, this.localKey(id), id, value, opts);
  }

  /** Every intermediate result of this analysis on the hub (from any node), oldest first. */
  async listIntermediateResults(): Promise<HubResultInfo[]> {
    return sortByTime((await this.hub.list(`${this.analysisPrefix()}/intermediate/`)).map((o) => this.hubInfo(o)));
  }

  /** Every final result of this analysis on the hub, oldest first. */
  async listResults(): Promise<HubResultInfo[]> {
    return sortByTime((await this.hub.list(`${this.analysisPrefix()}/final/`)).map((o) => this.hubInfo(o)));
  }

  /** Every result this node saved locally for the project (any analysis), oldest first. */
  async listIntermediateResultsLocal(): Promise<LocalResultInfo[]> {
    return sortByTime(
      (await this.local.list(`projects/${this.projectId}/local/`)).map((o) => {
        const common = this.commonInfo(o);
        return {
          result_id: common.result_id,
          result_name: common.result_name,
          analysis_id: o.metadata['analysis-id'] ?? '',
          result_size: common.result_size,
          result_time: common.result_time,
          result_owner: common.result_owner,
          other: common.other,
        };
      }),
    );
  }

  private hubInfo(o: ObjectInfo): HubResultInfo {
    const common = this.commonInfo(o);
    return {
      result_id: common.result_id,
      result_name: common.result_name,
      node_id: o.metadata['node-id'] ?? '',
      result_size: common.result_size,
      result_time: common.result_time,
      result_owner: common.result_owner,
      other: common.other,
    };
  }

  private commonInfo(o: ObjectInfo): Omit<HubResultInfo, 'node_id'> {
    const id = o.key.slice(o.key.lastIndexOf('/') + 1);
    return {
      result_id: id,
      result_name: decodeMeta(o.metadata['result-name']) ?? id,
      result_size: o.size,
      result_time: o.lastModified,
      result_owner: o.metadata.owner ?? '',
      other: parseOther(o.metadata.other),
    };
  }

  /** An intermediate result of this analysis from the hub, decoded. NotFoundError naming the id when absent. */
  async getIntermediateResult(id: string): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    return this.getValue(this.hub, this.intermediateKey(id), `intermediate result "${id}" of analysis "${this.analysisId}"`);
  }

  /** A result this node saved locally, decoded. NotFoundError naming the id when absent. */
  async getIntermediateResultLocal(id: string): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    return this.getValue(this.local, this.localKey(id), `local result "${id}" of project "${this.projectId}"`);
  }

  /** A final result of this analysis, decoded (a streamed one comes back as a Buffer). */
  async getResult(id: string): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    return this.getValue(this.hub, this.finalKey(id), `final result "${id}" of analysis "${this.analysisId}"`);
  }

  /**
   * Streams the stored bytes of a final result: what `sendResultStream` sent, or the codec frame of a
   * value sent with `sendResult` (decode it with `decodeValue`). `onProgress` gets the bytes read so far.
   */
  async getResultStream(id: string, opts: { onProgress?: (bytes: number) => void } = {}): Promise<Readable> {
    assertSafeId(id, 'result id');
    const what = `final result "${id}" of analysis "${this.analysisId}"`;
    let stream: Readable;
    try {
      stream = await this.hub.getStream(this.finalKey(id));
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`${what} not found`, { cause: err });
      throw err;
    }
    if (opts.onProgress === undefined) return stream;
    const counter = progressCounter(opts.onProgress);
    stream.on('error', (err) => counter.destroy(err));
    return stream.pipe(counter);
  }

  private async getValue(store: ObjectStore, key: string, what: string): Promise<FlameValue> {
    const info = await store.head(key);
    if (info === undefined) throw new NotFoundError(`${what} not found`);
    let bytes: Uint8Array;
    try {
      bytes = await store.getBytes(key);
    } catch (err) {
      // deleted between head and get
      if (err instanceof NotFoundError) throw new NotFoundError(`${what} not found`, { cause: err });
      throw err;
    }
    if (info.metadata.encoding === 'raw') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return decodeValue(bytes, what);
  }
}

function decodeMeta(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function parseOther(value: string | undefined): { [key: string]: JsonValue } {
  const text = decodeMeta(value);
  if (text === undefined) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { [key: string]: JsonValue }) : {};
  } catch {
    return {}; // metadata written by another tool: list the result anyway
  }
}

function sortByTime<T extends { result_time: string; result_id: string }>(items: T[]): T[] {
  return items.sort((a, b) => a.result_time.localeCompare(b.result_time) || a.result_id.localeCompare(b.result_id));
}
