/**
 * Datasets in the hub's S3 storage. Layout under the hub prefix:
 *
 *   datasets/<id>/manifest.json            what the dataset is (see {@link DatasetManifest})
 *   datasets/<id>/images/<class>/<file>    an image folder, one object per image
 *   datasets/<id>/images.idx               an IDX pair's images … and labels.idx its labels (`.gz` kept)
 *   datasets/<id>/data.csv                 a CSV dataset
 *   datasets/<id>/uploads/<name>.json      the record of an unfinished multipart upload (see multipart.ts)
 *
 * An image folder is a prefix of class sub-prefixes rather than one archive, so the S3 data source
 * reads the uploaded copy as the same labelled collection as the local folder (give it the prefix
 * `datasets/<id>/images`, see {@link DatasetStore.imagesSource}), and any S3 tool can too. It
 * resumes by object on every S3 API (what is stored is listed); large files resume by part.
 * The manifest is written first (status `uploading`) so an interrupted upload is found again by its
 * dataset name; it is rewritten with status `complete` once every object is complete.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, ListObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { FlameConfig } from '../config.js';
import type { DataSourceConfig, S3Connection } from '../data/port.js';
import { BadRequestError, ConflictError, InternalError, NotFoundError } from '../errors.js';
import { S3ObjectStore } from '../results/s3.js';
import { s3Error } from '../s3/errors.js';
import {
  abortUploads,
  findUploads,
  listStoredParts,
  MAX_PARTS,
  MIN_PART_SIZE,
  partCount,
  resumableUpload,
  type PartEvent,
  type StoredPart,
  type UploadJournal,
  type UploadRecord,
} from './multipart.js';
import { listStored, uploadObjectSet } from './object-set.js';
import type { DatasetFileRole, DatasetKind, DatasetPlan } from './sources.js';

/** Default part size of dataset uploads. */
export const DEFAULT_DATASET_PART_SIZE = 8 * 1024 * 1024;

/** One stored object of a dataset. */
export interface DatasetFileEntry {
  /** Object name beside the manifest. */
  name: string;
  role: DatasetFileRole;
  /** `objects`: a prefix (`name` ends in `/`) holding one object per file; else one object. */
  format: 'objects' | 'idx' | 'idx.gz' | 'csv';
  size: number;
  /** Multipart parts of one object; for `objects`, the number of objects. */
  parts: number;
  /** sha-256 (hex) of the object (for `objects`: over each key, size and sha-256), set once it is complete. */
  sha256?: string;
}

/** `datasets/<id>/manifest.json`. */
export interface DatasetManifest {
  id: string;
  name: string;
  kind: DatasetKind;
  status: 'uploading' | 'complete';
  /** ISO time the upload started. */
  created: string;
  /** ISO time the last object was completed. */
  completed?: string;
  /** Total bytes of the dataset's objects. */
  size: number;
  part_size: number;
  source: { path: string; fingerprint: string };
  files: DatasetFileEntry[];
  /** Kind-specific: classes/images (image folder), items/item_shape (IDX), columns/rows (CSV). */
  details: Record<string, unknown>;
}

/** How far a dataset's upload is, from what S3 holds (and, where S3 cannot list parts, the upload records). */
export interface DatasetProgress {
  id: string;
  name: string;
  status: 'uploading' | 'complete';
  bytes_stored: number;
  bytes_total: number;
  parts_stored: number;
  parts_total: number;
  /** Everything stored and completed into objects. */
  complete: boolean;
}

/** Options of {@link DatasetStore.upload}. */
export interface DatasetUploadOptions {
  name: string;
  /** Part size in bytes (at least 5 MiB), used for new uploads; a resumed upload keeps its own. */
  partSize?: number;
  /** Stops the upload between parts; run the same upload again to resume. */
  signal?: AbortSignal;
  /** After each part of an object, or each object of an image folder (then `partNumber` counts objects). */
  onPart?: (event: PartEvent & { file: string; unit: 'parts' | 'objects' }) => void;
  /** What the S3 API lacks and how the upload copes (no ListParts: the upload record; no multipart: one PUT), each once. */
  onNotice?: (message: string) => void;
  /** Called once the target is known: a new dataset, or an unfinished one being resumed. */
  onStart?: (manifest: DatasetManifest, resumed: boolean) => void;
}

/** What {@link DatasetStore.upload} returns: the final manifest and what was sent. */
export interface DatasetUploadResult {
  manifest: DatasetManifest;
  resumed: boolean;
  partsSent: number;
  partsReused: number;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkId(id: string): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new BadRequestError(`dataset id ${JSON.stringify(id)} is malformed (expected letters, digits, '_', '-' or '.', as printed by flame datasets list)`);
  }
  return id;
}

function checkName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.trim() === '' || name.length > 128 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new BadRequestError(`dataset name ${JSON.stringify(name)}: expected 1-128 printable characters`);
  }
  return name;
}

/** Datasets of one hub bucket (and prefix): upload with resume, progress, list, get, delete. */
export class DatasetStore {
  private readonly objects: S3ObjectStore;
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix of every dataset: the hub prefix + `datasets/`. */
  readonly prefix: string;

  /** The hub connection, for {@link imagesSource}; absent when built from a bare object store. */
  private readonly connection?: S3Connection;

  constructor(objects: S3ObjectStore, connection?: S3Connection) {
    this.objects = objects;
    this.connection = connection;
    this.client = objects.client;
    this.bucket = objects.bucket;
    this.prefix = objects.prefix;
  }

  /** The dataset store of the hub storage a FlameConfig names; the hub must be S3. */
  static fromConfig(config: FlameConfig): DatasetStore {
    const hub = config.hub;
    if (hub.type !== 's3') {
      throw new BadRequestError(
        'datasets live in the hub\'s S3 storage: set FLAME_HUB_S3_ENDPOINT and FLAME_HUB_S3_BUCKET (and credentials), see README "Configuration"',
      );
    }
    const base = hub.prefix ? (hub.prefix.endsWith('/') ? hub.prefix : `${hub.prefix}/`) : '';
    const connection: S3Connection = {
      endpoint: hub.endpoint, region: hub.region, bucket: hub.bucket, accessKeyId: hub.accessKeyId, secretAccessKey: hub.secretAccessKey,
      forcePathStyle: hub.forcePathStyle, insecure: hub.insecure,
    };
    // drop what is not set, so a data source built from it says only what the hub config said
    for (const k of Object.keys(connection) as (keyof S3Connection)[]) if (connection[k] === undefined) delete connection[k];
    return new DatasetStore(new S3ObjectStore({ ...hub, prefix: `${base}datasets` }), connection);
  }

  private objectKey(id: string, name: string): string {
    return `${this.prefix}${id}/${name}`;
  }

  private where(id: string): string {
    return `s3://${this.bucket}/${this.prefix}${id}/`;
  }

  private async putManifest(m: DatasetManifest): Promise<void> {
    await this.objects.put(`${m.id}/manifest.json`, Buffer.from(JSON.stringify(m, null, 2) + '\n'));
  }

  /** The manifest of dataset `id`; NotFoundError when there is none. */
  async get(id: string): Promise<DatasetManifest> {
    checkId(id);
    let bytes: Uint8Array;
    try {
      // the manifest comes from storage: its size is checked before it is read
      const head = await this.objects.head(`${id}/manifest.json`);
      if (head && head.size > MAX_MANIFEST_BYTES) {
        throw new InternalError(`dataset ${id}: manifest at ${this.where(id)}manifest.json is ${head.size} bytes, over the ${MAX_MANIFEST_BYTES} a manifest may have`);
      }
      bytes = await this.objects.getBytes(`${id}/manifest.json`);
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`dataset ${JSON.stringify(id)} not found (no manifest at ${this.where(id)})`, { cause: e });
      throw e;
    }
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as DatasetManifest;
    } catch (e) {
      throw new InternalError(`dataset ${id}: manifest at ${this.where(id)}manifest.json is not valid JSON`, { cause: e });
    }
  }

  /**
   * The manifest of the dataset with id `ref`, else of the one named `ref` (what `flame datasets`
   * commands take). NotFoundError when neither, ConflictError when the name is not unique.
   */
  async find(ref: string): Promise<DatasetManifest> {
    if (ID_PATTERN.test(ref)) {
      try {
        return await this.get(ref);
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
    }
    const named = (await this.list()).filter((m) => m.name === ref);
    if (named.length === 1) return named[0];
    if (named.length > 1) throw new ConflictError(`${named.length} datasets are named ${JSON.stringify(ref)} (${named.map((m) => m.id).join(', ')}): give the id`);
    throw new NotFoundError(`dataset ${JSON.stringify(ref)} not found (no dataset has this id or name at ${`s3://${this.bucket}/${this.prefix}`})`);
  }

  /** The dataset ids below the prefix: one listing level (`<id>/`), never the images inside. */
  private async ids(): Promise<string[]> {
    const ids: string[] = [];
    let marker: string | undefined;
    try {
      for (let pages = 0; pages < MAX_LIST_PAGES; pages++) {
        const page = await this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix, Delimiter: '/', Marker: marker }));
        for (const p of page.CommonPrefixes ?? []) {
          const id = p.Prefix?.slice(this.prefix.length, -1);
          if (id !== undefined && ID_PATTERN.test(id)) ids.push(id);
        }
        const last = page.NextMarker ?? page.CommonPrefixes?.[page.CommonPrefixes.length - 1]?.Prefix ?? page.Contents?.[page.Contents.length - 1]?.Key;
        if (!page.IsTruncated || last === undefined || last === marker) break;
        marker = last;
      }
    } catch (err) {
      throw s3Error('list', `s3://${this.bucket}/${this.prefix}`, err, { bucket: this.bucket });
    }
    return ids;
  }

  /** Every dataset's manifest, oldest first. */
  async list(): Promise<DatasetManifest[]> {
    const ids = await this.ids();
    const manifests = await Promise.all(
      ids.map(async (id) => {
        try {
          return await this.get(id);
        } catch (e) {
          if (e instanceof NotFoundError) return undefined; // deleted meanwhile
          throw e;
        }
      }),
    );
    return manifests.filter((m): m is DatasetManifest => m !== undefined).sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  /** Where the upload record of object `name` of dataset `id` is kept: beside the manifest, so any machine resumes. */
  private journal(id: string, name: string): UploadJournal {
    const key = `${id}/uploads/${name}.json`;
    return {
      load: async () => {
        const head = await this.objects.head(key);
        if (!head) return undefined;
        // the record comes back from storage: read within a bound and checked field by field
        if (head.size > MAX_RECORD_BYTES) return undefined;
        return parseUploadRecord(Buffer.from(await this.objects.getBytes(key)).toString('utf8'));
      },
      save: async (record) => {
        await this.objects.put(key, Buffer.from(JSON.stringify(record)));
      },
      clear: () => this.objects.delete(key),
    };
  }

  /**
   * Uploads a planned dataset. If an unfinished upload of the same name from the same source exists,
   * it is resumed: what is already in S3 is not sent again. ConflictError when the name is taken by a
   * complete dataset, or by an unfinished one from a different source.
   */
  async upload(plan: DatasetPlan, options: DatasetUploadOptions): Promise<DatasetUploadResult> {
    const name = checkName(options.name);
    const partSize = options.partSize ?? DEFAULT_DATASET_PART_SIZE;
    if (!Number.isInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new BadRequestError(`part size must be a whole number of bytes >= ${MIN_PART_SIZE} (5 MiB, S3's minimum), got ${options.partSize}`);
    }
    await this.objects.ensureBucket();
    const same = (await this.list()).filter((m) => m.name === name);
    const done = same.find((m) => m.status === 'complete');
    if (done) throw new ConflictError(`dataset name ${JSON.stringify(name)} is taken by dataset ${done.id}: delete it first or choose another --name`);
    let manifest = same.find((m) => m.source.fingerprint === plan.fingerprint && m.kind === plan.kind);
    const other = same.find((m) => m !== manifest);
    if (!manifest && other) {
      throw new ConflictError(
        `an unfinished upload named ${JSON.stringify(name)} (dataset ${other.id}, from ${other.source.path}) holds different content: ` +
          `delete it with "flame datasets delete ${other.id}" or choose another --name`,
      );
    }
    const resumed = manifest !== undefined;
    if (!manifest) {
      const size = plan.files.reduce((a, f) => a + f.size, 0);
      manifest = {
        id: randomUUID(),
        name,
        kind: plan.kind,
        status: 'uploading',
        created: new Date().toISOString(),
        size,
        part_size: partSize,
        source: { path: plan.sourcePath, fingerprint: plan.fingerprint },
        files: plan.files.map((f) => ({
          name: f.name,
          role: f.role,
          format: f.format,
          size: f.size,
          parts: f.layout === 'prefix' ? f.files.length : f.size === 0 ? 0 : partCount(f.size, partSize),
        })),
        details: plan.details,
      };
      await this.putManifest(manifest);
    }
    options.onStart?.(manifest, resumed);
    const told = new Set<string>();
    const onNotice = (message: string) => {
      if (told.has(message)) return;
      told.add(message);
      options.onNotice?.(message);
    };
    let partsSent = 0;
    let partsReused = 0;
    for (const [i, file] of plan.files.entries()) {
      const entry = manifest.files[i];
      const m = manifest;
      if (file.layout === 'prefix') {
        const outcome = await uploadObjectSet({
          client: this.client,
          bucket: this.bucket,
          prefix: this.objectKey(m.id, file.name),
          files: file.files,
          partSize: m.part_size,
          signal: options.signal,
          onObject: options.onPart ? (e) => options.onPart?.({ ...e, file: file.name, unit: 'objects' }) : undefined,
          journalFor: (key) => this.journal(m.id, key.slice(this.objectKey(m.id, '').length)),
          onNotice,
        });
        entry.sha256 = outcome.sha256;
        partsSent += outcome.sent;
        partsReused += outcome.reused;
      } else {
        if (entry.sha256 !== undefined && (await this.objects.head(`${m.id}/${file.name}`))?.size === file.size) {
          partsReused += entry.parts; // completed in an earlier attempt
          continue;
        }
        const outcome = await resumableUpload({
          client: this.client,
          bucket: this.bucket,
          key: this.objectKey(m.id, file.name),
          size: file.size,
          partSize: m.part_size,
          open: file.open,
          signal: options.signal,
          onPart: options.onPart ? (e) => options.onPart?.({ ...e, file: file.name, unit: 'parts' }) : undefined,
          journal: this.journal(m.id, file.name),
          onNotice,
        });
        entry.sha256 = outcome.sha256;
        partsSent += outcome.partsSent;
        partsReused += outcome.partsReused;
      }
      // remember completed objects, so a later interruption does not re-read them
      if (i < plan.files.length - 1) await this.putManifest(manifest);
    }
    manifest.status = 'complete';
    manifest.completed = new Date().toISOString();
    await this.putManifest(manifest);
    return { manifest, resumed, partsSent, partsReused };
  }

  /** Parts stored so far of object `name` (from ListParts, else from its upload record). */
  private async storedParts(id: string, name: string): Promise<StoredPart[]> {
    const key = this.objectKey(id, name);
    const record = await this.journal(id, name).load();
    const uploadId = record?.uploadId ?? (await findUploads(this.client, this.bucket, key))?.at(-1)?.uploadId;
    if (!uploadId) return [];
    try {
      return (await listStoredParts(this.client, this.bucket, key, uploadId)) ?? (record?.uploadId === uploadId ? record.parts : []);
    } catch (e) {
      if (e instanceof NotFoundError) return [];
      throw e;
    }
  }

  /** Bytes and parts (objects, for an image folder) S3 holds for dataset `id`. */
  async progress(id: string): Promise<DatasetProgress> {
    const m = await this.get(id);
    let bytesStored = 0;
    let partsStored = 0;
    let allObjects = true;
    for (const f of m.files) {
      if (f.format === 'objects') {
        // bounded: a listing never reads past the objects the manifest announces
        const listed = [...(await listStored(this.client, this.bucket, this.objectKey(m.id, f.name), Math.ceil(f.parts / 1000) + 10)).values()];
        const count = Math.min(listed.length, f.parts);
        bytesStored += Math.min(f.size, listed.slice(0, count).reduce((a, o) => a + Math.max(0, o.size), 0));
        partsStored += count;
        if (count < f.parts) allObjects = false;
        continue;
      }
      const head = await this.objects.head(`${m.id}/${f.name}`);
      if (head && head.size === f.size) {
        bytesStored += f.size;
        partsStored += f.parts;
        continue;
      }
      allObjects = false;
      const parts = await this.storedParts(m.id, f.name);
      bytesStored += parts.reduce((a, p) => a + p.size, 0);
      partsStored += parts.length;
    }
    return {
      id: m.id,
      name: m.name,
      status: m.status,
      bytes_stored: bytesStored,
      bytes_total: m.size,
      parts_stored: partsStored,
      parts_total: m.files.reduce((a, f) => a + f.parts, 0),
      complete: m.status === 'complete' && allObjects,
    };
  }

  /**
   * Deletes dataset `id`: its open uploads (those the server lists or a record names), every object
   * below it, then its manifest. NotFoundError if unknown. `uploadsLeft` counts uploads the server
   * could not abort (no AbortMultipartUpload, e.g. s3rver): their parts stay in its upload area.
   */
  async delete(id: string): Promise<DatasetManifest & { uploadsLeft?: number }> {
    const m = await this.get(id);
    let left = 0;
    const recordsPrefix = this.objectKey(m.id, 'uploads/');
    for (const name of (await listStored(this.client, this.bucket, recordsPrefix, MAX_PARTS)).keys()) {
      if (!name.endsWith('.json')) continue;
      const objectName = name.slice(0, -'.json'.length);
      const record = await this.journal(m.id, objectName).load();
      left += (await abortUploads(this.client, this.bucket, this.objectKey(m.id, objectName), record ? [record.uploadId] : [])).unsupported;
    }
    for (const f of m.files) {
      if (f.format !== 'objects') left += (await abortUploads(this.client, this.bucket, this.objectKey(m.id, f.name))).unsupported;
    }
    const manifestKey = this.objectKey(m.id, 'manifest.json');
    const keys = [...(await listStored(this.client, this.bucket, this.objectKey(m.id, ''), MAX_PARTS)).keys()].map((k) => this.objectKey(m.id, k));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++];
        if (key === manifestKey) continue;
        try {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
        } catch (err) {
          throw s3Error('delete', `s3://${this.bucket}/${key}`, err, { bucket: this.bucket });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, keys.length) }, worker));
    await this.objects.delete(`${m.id}/manifest.json`);
    return left > 0 ? { ...m, uploadsLeft: left } : m;
  }

  /**
   * The data source that reads an uploaded image folder through the data API: the S3 prefix
   * `datasets/<id>/images` of the hub, whose class sub-prefixes the image analyses read as labels.
   * BadRequestError for a dataset that is not a complete image folder, or a store built without
   * its connection.
   */
  imagesSource(manifest: DatasetManifest, sourceId = 'images'): DataSourceConfig {
    if (manifest.kind !== 'image_folder') throw new BadRequestError(`dataset ${manifest.id} is ${manifest.kind}, not an image folder: it has no images prefix`);
    if (manifest.status !== 'complete') throw new BadRequestError(`dataset ${manifest.id} is still uploading: run the upload again to finish it`);
    if (!this.connection) throw new BadRequestError('this dataset store was built without its S3 connection: use DatasetStore.fromConfig');
    return { id: sourceId, type: 's3', ...this.connection, prefix: this.objectKey(manifest.id, 'images') };
  }

  /** Where an uploaded image folder is, without credentials (what `flame datasets get` shows). */
  imagesLocation(manifest: DatasetManifest): { type: 's3'; endpoint?: string; bucket: string; prefix: string } | undefined {
    if (manifest.kind !== 'image_folder') return undefined;
    return { type: 's3', endpoint: this.connection?.endpoint, bucket: this.bucket, prefix: this.objectKey(manifest.id, 'images') };
  }
}

/** Largest manifest read back (an image folder's lists no files, so a few KiB in practice). */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Pages of datasets listed at most (1000 datasets each). */
const MAX_LIST_PAGES = 1000;

/** Largest upload record read back (10,000 parts of ~80 bytes each, with room). */
const MAX_RECORD_BYTES = 2 * 1024 * 1024;

/** An upload record from storage, checked field by field; undefined (start over) when it is not one. */
export function parseUploadRecord(text: string): UploadRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = v as Partial<UploadRecord> | null;
  const whole = (n: unknown, min: number, max: number) => Number.isInteger(n) && (n as number) >= min && (n as number) <= max;
  if (typeof r !== 'object' || r === null || typeof r.uploadId !== 'string' || r.uploadId === '' || r.uploadId.length > 1024) return undefined;
  if (!whole(r.size, 1, Number.MAX_SAFE_INTEGER) || !whole(r.partSize, MIN_PART_SIZE, Number.MAX_SAFE_INTEGER) || !Array.isArray(r.parts) || r.parts.length > MAX_PARTS) {
    return undefined;
  }
  const parts: StoredPart[] = [];
  for (const p of r.parts as unknown[]) {
    const q = p as Partial<StoredPart> | null;
    if (typeof q !== 'object' || q === null || !whole(q.partNumber, 1, MAX_PARTS) || !whole(q.size, 1, r.partSize!) || typeof q.etag !== 'string' || q.etag.length > 256) {
      return undefined;
    }
    parts.push({ partNumber: q.partNumber!, size: q.size!, etag: q.etag });
  }
  return { uploadId: r.uploadId, size: r.size!, partSize: r.partSize!, parts };
}
