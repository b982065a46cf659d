/**
 * The ObjectStore port on a FLAME node's local result storage. The storage service names objects
 * by ids it assigns and can only list them by tag, so the store keeps its own index there: each
 * put uploads the object, then a small JSON record (key, object id, size, metadata, time) under one
 * tag of this store; a delete uploads a record that says so. Reading the index lists the tag and
 * fetches records not seen before (records never change, so they are cached). The latest record of
 * a key wins. Tags are per project at the service, so the tag is derived from the analysis and the
 * store's scope. Objects stream in and out; only records are read whole, within a size budget.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BadRequestError, FlameError, NotFoundError } from '../errors.js';
import { assertSafeKey, assertSafePrefix, compareKeys } from '../results/keys.js';
import { normaliseMetadata } from '../results/metadata.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../results/port.js';
import { progressCounter } from '../results/progress.js';
import { readBounded } from './http.js';
import type { FlameStorageClient } from './storage.js';

/** One index record. */
interface IndexRecord {
  v: 1;
  key: string;
  objectId?: string;
  size: number;
  metadata: Record<string, string>;
  lastModified: string;
  /** Orders records written in the same millisecond. */
  n: number;
  deleted?: boolean;
}

const MAX_RECORD_BYTES = 16 * 1024;
/** Records fetched at once when the index is read. */
const FETCH_CONCURRENCY = 8;

/** The tag a store of `analysisId` and `scope` keeps its index under (32 chars of [a-z0-9-]). */
export function indexTag(analysisId: string, scope: string): string {
  return `fsdk-${createHash('sha256').update(`${analysisId}\n${scope}`).digest('hex').slice(0, 27)}`;
}

/** An ObjectStore on the storage service's local results; see the module comment. */
export class FlameLocalObjectStore implements ObjectStore {
  private readonly tag: string;
  private readonly records = new Map<string, IndexRecord | null>();
  private counter = 0;

  /**
   * @param client the storage service
   * @param analysisId the analysis this store belongs to
   * @param scope keeps several stores of one analysis apart (e.g. `local`, `checkpoints`)
   */
  constructor(
    private readonly client: FlameStorageClient,
    analysisId: string,
    scope = 'local',
  ) {
    this.tag = indexTag(analysisId, scope);
  }

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    assertSafeKey(key);
    const metadata = normaliseMetadata(options.metadata, key);
    let size = 0;
    const counted = progressCounter((bytes) => {
      size = bytes;
      options.onProgress?.(bytes);
    });
    const source = body instanceof Readable ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
    source.once('error', (e) => counted.destroy(e));
    let stored;
    try {
      stored = await this.client.putLocal(source.pipe(counted), { filename: 'object.bin', onProgress: undefined });
    } catch (e) {
      throw new FlameError(`local store put ${JSON.stringify(key)}: ${(e as Error).message}`, { cause: e });
    }
    const record: IndexRecord = { v: 1, key, objectId: stored.objectId, size, metadata, lastModified: new Date().toISOString(), n: this.counter++ };
    await this.writeRecord(record);
    return { key, size, lastModified: record.lastModified, metadata: { ...metadata } };
  }

  async getBytes(key: string): Promise<Uint8Array> {
    const r = await this.current(key);
    return new Uint8Array(await readBounded(await this.client.getLocal(r.objectId!), Math.max(r.size, 1), `local store object ${JSON.stringify(key)}`));
  }

  async getStream(key: string): Promise<Readable> {
    const r = await this.current(key);
    return this.client.getLocal(r.objectId!);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const r = (await this.index()).get(key);
    return r ? infoOf(r) : undefined;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    if (prefix !== '') assertSafePrefix(prefix);
    return [...(await this.index()).values()]
      .filter((r) => r.key.startsWith(prefix))
      .sort((a, b) => compareKeys(a.key, b.key))
      .map(infoOf);
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    if (!(await this.index()).has(key)) return;
    await this.writeRecord({ v: 1, key, size: 0, metadata: {}, lastModified: new Date().toISOString(), n: this.counter++, deleted: true });
  }

  private async current(key: string): Promise<IndexRecord> {
    assertSafeKey(key);
    const r = (await this.index()).get(key);
    if (!r) throw new NotFoundError(`local store: no object ${JSON.stringify(key)}`);
    return r;
  }

  private async writeRecord(record: IndexRecord): Promise<void> {
    const stored = await this.client.putLocal(Buffer.from(JSON.stringify(record)), { filename: 'fsdk-index.json', contentType: 'application/json', tag: this.tag });
    this.records.set(stored.objectId, record);
  }

  /** The live objects by key: the latest record of each key, unless it is a deletion. */
  private async index(): Promise<Map<string, IndexRecord>> {
    const listed = await this.client.tagged(this.tag);
    const missing = listed.filter((l) => !this.records.has(l.objectId));
    for (let i = 0; i < missing.length; i += FETCH_CONCURRENCY) {
      await Promise.all(missing.slice(i, i + FETCH_CONCURRENCY).map(async (l) => this.records.set(l.objectId, await this.readRecord(l.objectId))));
    }
    const latest = new Map<string, IndexRecord>();
    for (const l of listed) {
      const r = this.records.get(l.objectId);
      if (!r) continue;
      const prev = latest.get(r.key);
      if (!prev || r.lastModified > prev.lastModified || (r.lastModified === prev.lastModified && r.n > prev.n)) latest.set(r.key, r);
    }
    for (const [k, r] of latest) if (r.deleted) latest.delete(k);
    return latest;
  }

  /** One record, checked; an unreadable one is skipped (null) rather than trusted. */
  private async readRecord(objectId: string): Promise<IndexRecord | null> {
    try {
      const text = (await readBounded(await this.client.getLocal(objectId), MAX_RECORD_BYTES, `local store index record ${objectId}`)).toString('utf8');
      const r = JSON.parse(text) as IndexRecord;
      if (r?.v !== 1 || typeof r.key !== 'string' || typeof r.lastModified !== 'string' || !Number.isSafeInteger(r.size) || r.size < 0 || !Number.isSafeInteger(r.n)) return null;
      assertSafeKey(r.key);
      r.metadata = normaliseMetadata(r.metadata, r.key);
      if (!r.deleted && typeof r.objectId !== 'string') return null;
      return r;
    } catch (e) {
      if (e instanceof BadRequestError || e instanceof SyntaxError) return null;
      throw e;
    }
  }
}

function infoOf(r: IndexRecord): ObjectInfo {
  return { key: r.key, size: r.size, lastModified: r.lastModified, metadata: { ...r.metadata } };
}
