/**
 * FLAME's result semantics over two ObjectStores: the hub (shared by the analysis' nodes and the
 * analyst) and this node's local storage. Values travel encoded with the codec; big final results
 * can be streamed in and out without holding them in memory.
 *
 * The key layout is `layout.ts`; what is stored and listed with each result `result-info.ts`; final
 * results' signatures `final-proof.ts`.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { contentTypeOfKind, decodeBudgetOf, decodeUntrusted, encodeValue, valueKindOf, type FlameValue } from '../codec/index.js';
import { DEFAULT_LIMITS, type Limits } from '../limits.js';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../errors.js';
import { assertSafeId } from './keys.js';
import { FinalResultProof } from './final-proof.js';
import { ResultKeys } from './layout.js';
import type { ObjectStore } from './port.js';
import { progressCounter } from './progress.js';
import { hubInfo, localInfo, LOCAL_TAG_PATTERN, OUTPUT_TYPES, outputTypeOf, resultMetadata, sortByTime, type Encoding, type FinalResultInfo, type FinalResultOptions, type HubResultInfo, type LocalResultInfo, type LocalResultOptions, type OutputType, type ResultOptions } from './result-info.js';
import { Hashing, sha256Of, type ResultTrust, type ResultVerification } from './signatures.js';

export type { ResultTrust, ResultVerification } from './signatures.js';
export type { FinalResultInfo, FinalResultOptions, HubResultInfo, LocalResultInfo, LocalResultOptions, OutputType, ResultOptions } from './result-info.js';

/** Which of the local results under a tag `getLocalByTag` returns: all (oldest first), the first or the last saved. */
export type TagOption = 'all' | 'first' | 'last';

/** Options when streaming a final result. */
export interface StreamResultOptions extends ResultOptions {
  /** Called with the bytes uploaded so far. */
  onProgress?: (bytes: number) => void;
  /** Media type of the streamed bytes (default application/octet-stream). */
  contentType?: string;
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
  /** The aggregator's Ed25519 private key: every final result it submits is signed with it. */
  signingKey?: KeyObject;
  /** The roster's view of who signs final results; without it final results cannot be verified. */
  trust?: ResultTrust;
  /** Caps on decoding what is read back (default DEFAULT_LIMITS). */
  limits?: Limits;
}

/** Options of {@link ResultService.getResult}. */
export interface GetResultOptions {
  /** Return it even when its signature does not verify (default false: such a result is refused). */
  unverified?: boolean;
}

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
  private readonly keys: ResultKeys;
  private readonly proof: FinalResultProof;
  private readonly limits: Limits;
  /** Last save order handed out (microseconds since the epoch, strictly increasing within this process). */
  private lastSaved = 0;

  /** Checks the ids (BadRequestError naming a bad one); touches no storage. */
  constructor(options: ResultServiceOptions) {
    this.nodeId = assertSafeId(options.nodeId, 'node id');
    this.analysisId = assertSafeId(options.analysisId, 'analysis id');
    this.projectId = assertSafeId(options.projectId, 'project id');
    this.isAggregator = options.isAggregator;
    this.aggregatorId = options.aggregatorId;
    this.hub = options.hub;
    this.keys = new ResultKeys(this.projectId, this.analysisId);
    this.proof = new FinalResultProof({ hub: this.hub, keys: this.keys, nodeId: this.nodeId, projectId: this.projectId, analysisId: this.analysisId, signingKey: options.signingKey, trust: options.trust });
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.local = options.local;
  }

  private assertAggregator(): void {
    if (this.isAggregator) return;
    const who = this.aggregatorId === undefined ? 'the aggregator' : `the aggregator "${this.aggregatorId}"`;
    throw new UnauthorizedError(`node "${this.nodeId}" may not submit a final result: only ${who} may submit final results`);
  }

  private metadata(id: string, opts: ResultOptions, encoding: Encoding, kind: string, contentType: string): Record<string, string> {
    return resultMetadata(this, id, opts, encoding, kind, contentType);
  }

  private async putValue(store: ObjectStore, key: string, id: string, value: FlameValue, opts: ResultOptions): Promise<string> {
    const kind = valueKindOf(value);
    const bytes = encodeValue(value);
    await store.put(key, bytes, { metadata: this.metadata(id, opts, 'flame-v1', kind, contentTypeOfKind(kind)) });
    return id;
  }

  /**
   * Submits a final result to the hub, signed (aggregator only; others get UnauthorizedError). Several
   * may be sent, each under its own name; `outputType` is checked against the value and listed with it.
   * Returns its id.
   */
  async sendResult(value: FlameValue, opts: FinalResultOptions = {}): Promise<string> {
    this.assertAggregator();
    this.proof.signer();
    const outputType = checkOutputType(value, opts.outputType);
    const id = randomUUID();
    const kind = valueKindOf(value);
    const bytes = encodeValue(value);
    const metadata = { ...this.metadata(id, opts, 'flame-v1', kind, contentTypeOfKind(kind)), 'output-type': outputType, 'saved-order': this.nextSaveOrder() };
    await this.hub.put(this.keys.final(id), bytes, { metadata });
    await this.proof.sign(id, opts.name ?? id, bytes.byteLength, sha256Of(bytes));
    return id;
  }

  /**
   * Streams a big final result to the hub (multipart on S3, never whole in memory); aggregator only.
   * `getResult` returns it as bytes, `getResultStream` streams it back. Returns its id.
   */
  async sendResultStream(stream: Readable, opts: StreamResultOptions = {}): Promise<string> {
    this.assertAggregator();
    this.proof.signer();
    const id = randomUUID();
    const contentType = opts.contentType ?? 'application/octet-stream';
    const hashing = new Hashing();
    stream.on('error', (e) => hashing.destroy(e));
    await this.hub.put(this.keys.final(id), stream.pipe(hashing), {
      metadata: this.metadata(id, opts, 'raw', 'bytes', contentType),
      onProgress: opts.onProgress,
    });
    await this.proof.sign(id, opts.name ?? id, hashing.bytes, hashing.digest ?? sha256Of(new Uint8Array(0)));
    return id;
  }

  /** Saves an intermediate result on the hub, for the analysis' other nodes. Returns its id. */
  async saveIntermediateResult(value: FlameValue, opts: ResultOptions = {}): Promise<string> {
    const id = randomUUID();
    return this.putValue(this.hub, this.keys.intermediate(id), id, value, opts);
  }

  /**
   * A number that orders this service's saves (microseconds since the epoch, strictly increasing in
   * this process): results saved in one millisecond still list in order (first and last of a tag, the
   * last final of a name), which the stores' clocks cannot tell.
   */
  private nextSaveOrder(): string {
    this.lastSaved = Math.max(Date.now() * 1000, this.lastSaved + 1);
    return String(this.lastSaved);
  }

  /** Saves an intermediate result in this node's local storage, under `opts.tag` when given. Returns its id. */
  async saveIntermediateResultLocal(value: FlameValue, opts: LocalResultOptions = {}): Promise<string> {
    if (opts.tag !== undefined && (typeof opts.tag !== 'string' || !LOCAL_TAG_PATTERN.test(opts.tag))) {
      throw new BadRequestError(`local result tag ${JSON.stringify(opts.tag)}: expected 1-32 lower-case letters, digits or inner '-'`);
    }
    const id = randomUUID();
    const kind = valueKindOf(value);
    const metadata = { ...this.metadata(id, opts, 'flame-v1', kind, contentTypeOfKind(kind)), 'saved-order': this.nextSaveOrder(), ...(opts.tag !== undefined ? { tag: opts.tag } : {}) };
    await this.local.put(this.keys.local(id), encodeValue(value), { metadata });
    return id;
  }

  /** The tags of this node's local results in the project, sorted; only those containing `filter` when given. */
  async getLocalTags(filter?: string): Promise<string[]> {
    if (filter !== undefined && typeof filter !== 'string') throw new BadRequestError('getLocalTags: filter must be a string');
    const tags = new Set<string>();
    for (const r of await this.listIntermediateResultsLocal()) if (r.tag !== undefined && (filter === undefined || r.tag.includes(filter))) tags.add(r.tag);
    return [...tags].sort();
  }

  /** This node's local results under `tag`, in the order they were saved (oldest first). */
  async listLocalByTag(tag: string): Promise<LocalResultInfo[]> {
    if (typeof tag !== 'string' || !LOCAL_TAG_PATTERN.test(tag)) throw new BadRequestError(`local result tag ${JSON.stringify(tag)}: expected 1-32 lower-case letters, digits or inner '-'`);
    const objects = (await this.local.list(this.keys.localFolder)).filter((o) => o.metadata.tag === tag);
    return objects.sort((a, b) => saveOrderOf(a) - saveOrderOf(b)).map(localInfo);
  }

  /**
   * The values of this node's local results under `tag`, decoded (python-sdk's `get_intermediate_data`
   * with `location='local'`): every one oldest first (`all`), or the `first` or `last` saved.
   * NotFoundError naming the tag when there is none.
   */
  async getLocalByTag(tag: string, option: 'first' | 'last'): Promise<FlameValue>;
  async getLocalByTag(tag: string, option?: 'all'): Promise<FlameValue[]>;
  async getLocalByTag(tag: string, option?: TagOption): Promise<FlameValue | FlameValue[]>;
  async getLocalByTag(tag: string, option: TagOption = 'all'): Promise<FlameValue | FlameValue[]> {
    if (option !== 'all' && option !== 'first' && option !== 'last') throw new BadRequestError(`tag option ${JSON.stringify(option)}: expected "all", "first" or "last"`);
    const listed = await this.listLocalByTag(tag);
    if (listed.length === 0) throw new NotFoundError(`no local results under tag "${tag}" in project "${this.projectId}"`);
    const chosen = option === 'all' ? listed : [option === 'first' ? listed[0] : listed[listed.length - 1]];
    const values = [];
    for (const r of chosen) values.push(await this.getIntermediateResultLocal(r.result_id));
    return option === 'all' ? values : values[0];
  }

  /** Every intermediate result of this analysis on the hub (from any node), oldest first. */
  async listIntermediateResults(): Promise<HubResultInfo[]> {
    return sortByTime((await this.hub.list(this.keys.intermediateFolder)).map(hubInfo));
  }

  /**
   * Every final result of this analysis on the hub, oldest first, each with whether the aggregator's
   * signature verifies for it (signature and size; `getResult` also checks the content's digest).
   */
  async listResults(): Promise<FinalResultInfo[]> {
    const objects = await this.hub.list(this.keys.finalFolder);
    const out: FinalResultInfo[] = [];
    for (const o of objects) {
      const info = hubInfo(o);
      const v = await this.proof.verification(info.result_id, o.size).catch((e: Error) => ({ verified: false, detail: e.message }) as ResultVerification);
      out.push({ ...info, verified: v.verified, ...(v.signed_by ? { signed_by: v.signed_by } : {}), verification: v.detail, output_type: outputTypeOf(o) });
    }
    const order = new Map(objects.map((o) => [hubInfo(o).result_id, saveOrderOf(o)]));
    return sortByTime(out).sort((a, b) => order.get(a.result_id)! - order.get(b.result_id)!);
  }

  /**
   * The final result last sent under `name`, decoded and verified like {@link getResult}.
   * NotFoundError naming the name when there is none.
   */
  async getResultByName(name: string, opts: GetResultOptions = {}): Promise<FlameValue> {
    const named = (await this.listResults()).filter((r) => r.result_name === name);
    if (named.length === 0) throw new NotFoundError(`no final result named ${JSON.stringify(name)} in analysis "${this.analysisId}"`);
    return this.getResult(named[named.length - 1].result_id, opts);
  }

  /** Checks a final result's signature and content against the roster (reads the whole result). */
  async verifyResult(id: string): Promise<ResultVerification> {
    assertSafeId(id, 'result id');
    return this.proof.verifyStored(id);
  }

  /** Every result this node saved locally for the project (any analysis), oldest first. */
  async listIntermediateResultsLocal(): Promise<LocalResultInfo[]> {
    return sortByTime((await this.local.list(this.keys.localFolder)).map(localInfo));
  }

  /** An intermediate result of this analysis from the hub, decoded. NotFoundError naming the id when absent. */
  async getIntermediateResult(id: string): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    return this.getValue(this.hub, this.keys.intermediate(id), `intermediate result "${id}" of analysis "${this.analysisId}"`);
  }

  /** A result this node saved locally, decoded. NotFoundError naming the id when absent. */
  async getIntermediateResultLocal(id: string): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    return this.getValue(this.local, this.keys.local(id), `local result "${id}" of project "${this.projectId}"`);
  }

  /**
   * A final result of this analysis, decoded (a streamed one comes back as a Buffer). Refused with
   * UnauthorizedError when the aggregator's signature does not verify for its content, unless
   * `unverified` is set.
   */
  async getResult(id: string, opts: GetResultOptions = {}): Promise<FlameValue> {
    assertSafeId(id, 'result id');
    const what = `final result "${id}" of analysis "${this.analysisId}"`;
    return this.getValue(this.hub, this.keys.final(id), what, async (bytes) => {
      if (opts.unverified) return;
      const v = await this.proof.verification(id, bytes.byteLength, sha256Of(bytes));
      if (!v.verified) throw new UnauthorizedError(`${what} is not verified: ${v.detail} (read it anyway with unverified: true / --unverified)`);
    });
  }

  /**
   * Streams the stored bytes of a final result: what `sendResultStream` sent, or the codec frame of a
   * value sent with `sendResult` (decode it with `decodeValue`). `onProgress` gets the bytes read so far.
   */
  async getResultStream(id: string, opts: { onProgress?: (bytes: number) => void; unverified?: boolean } = {}): Promise<Readable> {
    assertSafeId(id, 'result id');
    const what = `final result "${id}" of analysis "${this.analysisId}"`;
    let stream: Readable;
    const info = await this.hub.head(this.keys.final(id));
    if (!info) throw new NotFoundError(`${what} not found`);
    const signed = await this.proof.signed(id);
    if (!opts.unverified) {
      const v = this.proof.check(signed, id, info.size);
      if (!v.verified) throw new UnauthorizedError(`${what} is not verified: ${v.detail} (read it anyway with unverified: true / --unverified)`);
    }
    try {
      stream = await this.hub.getStream(this.keys.final(id));
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`${what} not found`, { cause: err });
      throw err;
    }
    // The digest is known only at the end: the stream fails there when the bytes are not the signed ones.
    const hashing = new Hashing((sha256, size) => {
      if (opts.unverified) return;
      const v = this.proof.check(signed, id, size, sha256);
      if (!v.verified) throw new UnauthorizedError(`${what} is not verified: ${v.detail}`);
    });
    stream.on('error', (err) => hashing.destroy(err));
    const checked = stream.pipe(hashing);
    if (opts.onProgress === undefined) return checked;
    const counter = progressCounter(opts.onProgress);
    checked.on('error', (err) => counter.destroy(err));
    return checked.pipe(counter);
  }

  /** Whether final result `id` was sent as a stream (`sendResultStream`: raw bytes) rather than a value. */
  async isStreamedResult(id: string): Promise<boolean> {
    assertSafeId(id, 'result id');
    const info = await this.hub.head(this.keys.final(id));
    if (!info) throw new NotFoundError(`final result "${id}" of analysis "${this.analysisId}" not found`);
    return info.metadata.encoding === 'raw';
  }

  private async getValue(store: ObjectStore, key: string, what: string, check?: (bytes: Uint8Array) => Promise<void>): Promise<FlameValue> {
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
    await check?.(bytes);
    if (info.metadata.encoding === 'raw') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Stored values are peer data too (any node of the analysis can write the hub): bounded decoding.
    return decodeUntrusted(bytes, what, decodeBudgetOf(this.limits, 'maxReferenceBytes'));
  }
}

/** `outputType` (default `value`) after checking that `value` is of it; BadRequestError otherwise. */
function checkOutputType(value: FlameValue, outputType: OutputType | undefined): OutputType {
  const t = outputType ?? 'value';
  if (!OUTPUT_TYPES.includes(t)) throw new BadRequestError(`sendResult: outputType ${JSON.stringify(t)}: expected one of ${OUTPUT_TYPES.join(', ')}`);
  const ok = t === 'value' || (t === 'json' && valueKindOf(value) === 'json') || (t === 'text' && typeof value === 'string') || (t === 'bytes' && value instanceof Uint8Array);
  if (!ok) throw new BadRequestError(`sendResult: outputType "${t}" but the value is ${valueKindOf(value) === 'json' ? `JSON (${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})` : valueKindOf(value)}`);
  return t;
}

/** The order a result was saved in: its `saved-order`, else its store time (results of older versions). */
function saveOrderOf(o: { metadata: Record<string, string>; lastModified: string }): number {
  const n = Number(o.metadata['saved-order']);
  return Number.isSafeInteger(n) && n > 0 ? n : Date.parse(o.lastModified) * 1000 || 0;
}
