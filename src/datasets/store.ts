/**
 * Datasets in the hub's S3 storage. Layout under the hub prefix:
 *
 *   datasets/<id>/manifest.json   what the dataset is (see {@link DatasetManifest})
 *   datasets/<id>/images.tar      an image folder, packed as one tar of `<class>/<file>` entries
 *   datasets/<id>/images.idx      an IDX pair's images … and labels.idx its labels (`.gz` kept)
 *   datasets/<id>/data.csv        a CSV dataset
 *
 * An image folder is one tar rather than one object per file: images are mostly far below S3's
 * 5 MiB part minimum, so one object per file would mean one request per image and nothing to resume;
 * one archive is one multipart upload that resumes by part, and keeps the class folders.
 * The manifest is written first (status `uploading`) so an interrupted upload is found again by its
 * dataset name; it is rewritten with status `complete` once every object is complete.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { FlameConfig } from '../config.js';
import { BadRequestError, ConflictError, InternalError, NotFoundError } from '../errors.js';
import { S3ObjectStore } from '../results/s3.js';
import { abortUploads, findUploads, listStoredParts, MIN_PART_SIZE, partCount, resumableUpload, type PartEvent } from './multipart.js';
import type { DatasetFileRole, DatasetKind, DatasetPlan } from './sources.js';

/** Default part size of dataset uploads. */
export const DEFAULT_DATASET_PART_SIZE = 8 * 1024 * 1024;

/** One stored object of a dataset. */
export interface DatasetFileEntry {
  /** Object name beside the manifest. */
  name: string;
  role: DatasetFileRole;
  format: 'tar' | 'idx' | 'idx.gz' | 'csv';
  size: number;
  parts: number;
  /** sha-256 (hex) of the object, set once it is complete. */
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

/** How far a dataset's upload is, from what S3 holds. */
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
  onPart?: (event: PartEvent & { file: string }) => void;
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

  constructor(objects: S3ObjectStore) {
    this.objects = objects;
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
    return new DatasetStore(new S3ObjectStore({ ...hub, prefix: `${base}datasets` }));
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

  /** Every dataset's manifest, oldest first. */
  async list(): Promise<DatasetManifest[]> {
    const keys = (await this.objects.list('')).map((o) => o.key).filter((k) => /^[^/]+\/manifest\.json$/.test(k));
    const manifests = await Promise.all(
      keys.map(async (k) => {
        try {
          return await this.get(k.slice(0, k.indexOf('/')));
        } catch (e) {
          if (e instanceof NotFoundError) return undefined; // deleted meanwhile
          throw e;
        }
      }),
    );
    return manifests.filter((m): m is DatasetManifest => m !== undefined).sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  /**
   * Uploads a planned dataset. If an unfinished upload of the same name from the same source exists,
   * it is resumed: parts already in S3 are not sent again. ConflictError when the name is taken by a
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
        files: plan.files.map((f) => ({ name: f.name, role: f.role, format: f.format, size: f.size, parts: f.size === 0 ? 0 : partCount(f.size, partSize) })),
        details: plan.details,
      };
      await this.putManifest(manifest);
    }
    options.onStart?.(manifest, resumed);
    let partsSent = 0;
    let partsReused = 0;
    for (const [i, file] of plan.files.entries()) {
      const entry = manifest.files[i];
      const key = this.objectKey(manifest.id, file.name);
      if (entry.sha256 !== undefined && (await this.objects.head(`${manifest.id}/${file.name}`))?.size === file.size) {
        partsReused += entry.parts; // completed in an earlier attempt
        continue;
      }
      const outcome = await resumableUpload({
        client: this.client,
        bucket: this.bucket,
        key,
        size: file.size,
        partSize: manifest.part_size,
        open: file.open,
        signal: options.signal,
        onPart: options.onPart ? (e) => options.onPart?.({ ...e, file: file.name }) : undefined,
      });
      entry.sha256 = outcome.sha256;
      partsSent += outcome.partsSent;
      partsReused += outcome.partsReused;
      // remember completed objects, so a later interruption does not re-read them
      if (i < plan.files.length - 1) await this.putManifest(manifest);
    }
    manifest.status = 'complete';
    manifest.completed = new Date().toISOString();
    await this.putManifest(manifest);
    return { manifest, resumed, partsSent, partsReused };
  }

  /** Bytes and parts S3 holds for dataset `id`, from the objects and the open uploads' parts. */
  async progress(id: string): Promise<DatasetProgress> {
    const m = await this.get(id);
    let bytesStored = 0;
    let partsStored = 0;
    let allObjects = true;
    for (const f of m.files) {
      const head = await this.objects.head(`${m.id}/${f.name}`);
      if (head && head.size === f.size) {
        bytesStored += f.size;
        partsStored += f.parts;
        continue;
      }
      allObjects = false;
      const key = this.objectKey(m.id, f.name);
      const uploads = await findUploads(this.client, this.bucket, key);
      const last = uploads[uploads.length - 1];
      if (!last) continue;
      const parts = await listStoredParts(this.client, this.bucket, key, last.uploadId);
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

  /** Deletes dataset `id`: its open uploads, its objects, then its manifest. NotFoundError if unknown. */
  async delete(id: string): Promise<DatasetManifest> {
    const m = await this.get(id);
    for (const f of m.files) {
      await abortUploads(this.client, this.bucket, this.objectKey(m.id, f.name));
      await this.objects.delete(`${m.id}/${f.name}`);
    }
    await this.objects.delete(`${m.id}/manifest.json`);
    return m;
  }
}
