/**
 * ObjectStore over any S3 API (AWS, MinIO, SeaweedFS, s3rver). Streams go through lib-storage's
 * `Upload`: multipart with a bounded number of parts in memory, so large results never sit whole
 * in RAM. Errors of the service are mapped to the SDK's error kinds, naming the key.
 */
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BadRequestError, FlameError, InternalError, NotFoundError } from '../errors.js';
import { makeS3Client } from '../s3/client.js';
import { isMissingBucket, s3Error, s3ErrorName } from '../s3/errors.js';
import type { S3Connection } from '../data/port.js';
import { assertSafeKey, assertSafePrefix, compareKeys } from './keys.js';
import { normaliseMetadata } from './metadata.js';
import type { ObjectInfo, ObjectStore, PutOptions } from './port.js';

/** Part size of multipart uploads (S3's minimum is 5 MiB). */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/**
 * Parts uploaded in parallel; memory use is about partSize × queueSize. Two keep a 512 MiB upload
 * under 256 MiB peak RSS at the same MB/s as four on loopback (bench/results.ts); raise it with the
 * store's `queueSize` option for high-latency links.
 */
export const DEFAULT_QUEUE_SIZE = 2;

// kept here too: callers built hub clients from this module before src/s3 existed
export { makeS3Client };

function isSafeKey(key: string): boolean {
  try {
    assertSafeKey(key);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link S3ObjectStore}: the connection, a key prefix and multipart tuning. */
export type S3ObjectStoreOptions = S3Connection & {
  /** Prepended to every key (a trailing '/' is added when missing). */
  prefix?: string;
  /** Multipart part size in bytes: at least 5 MiB, default 8 MiB (`DEFAULT_PART_SIZE`). */
  partSize?: number;
  /** Parts uploaded in parallel: at least 1, default 2 (`DEFAULT_QUEUE_SIZE`); memory use is about partSize × queueSize. */
  queueSize?: number;
  /** An existing client to reuse instead of building one from the connection. */
  client?: S3Client;
};

/** ObjectStore over one bucket (and optional key prefix) of an S3 API. */
export class S3ObjectStore implements ObjectStore {
  /** The underlying client (shared with whoever passed it in). */
  readonly client: S3Client;
  /** The bucket every key lives in. */
  readonly bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly endpoint: string | undefined;

  /** Builds the client (unless one is given); no request is made until the first operation. */
  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new BadRequestError(`S3ObjectStore: bucket is required, got ${JSON.stringify(options.bucket)}`);
    const prefix = options.prefix ?? '';
    if (prefix !== '') assertSafePrefix(prefix);
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.bucket = options.bucket;
    this.client = options.client ?? makeS3Client(options);
    this.endpoint = options.endpoint;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(this.partSize) || this.partSize < 5 * 1024 * 1024) {
      throw new BadRequestError(`S3ObjectStore partSize: at least 5 MiB, got ${options.partSize}`);
    }
    if (!Number.isInteger(this.queueSize) || this.queueSize < 1) {
      throw new BadRequestError(`S3ObjectStore queueSize: a whole number >= 1, got ${options.queueSize}`);
    }
  }

  private where(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  /** Turns an AWS SDK error into the SDK's error kinds (src/s3/errors.ts); the message names the key and the bucket. */
  private mapError(action: string, key: string, err: unknown): FlameError {
    return s3Error(action, this.where(key), err, { bucket: this.bucket, endpoint: this.endpoint });
  }

  /** Creates the bucket if it does not exist yet. */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      const mapped = this.mapError('check bucket of', '', err);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // another node may have created it in the meantime
      if (s3ErrorName(err) === 'BucketAlreadyOwnedByYou' || s3ErrorName(err) === 'BucketAlreadyExists') return;
      throw this.mapError('create bucket for', '', err);
    }
  }

  /** Bytes go in one PutObject; a stream goes through a multipart `Upload` (aborted on failure). */
  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<ObjectInfo> {
    assertSafeKey(key);
    const metadata = normaliseMetadata(options.metadata, key);
    const Key = this.prefix + key;
    try {
      if (!(body instanceof Readable)) {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, Metadata: metadata, ContentLength: body.byteLength }));
        options.onProgress?.(body.byteLength);
        return { key, size: body.byteLength, lastModified: new Date().toISOString(), metadata };
      }
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key, Body: body, Metadata: metadata },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      });
      // the progress events carry the running total, so the size is known without a HEAD afterwards
      let size = 0;
      upload.on('httpUploadProgress', (p) => {
        if (p.loaded === undefined || p.loaded <= size) return;
        size = p.loaded;
        options.onProgress?.(size);
      });
      await upload.done();
      return { key, size, lastModified: new Date().toISOString(), metadata };
    } catch (err) {
      throw this.mapError('write', key, err);
    }
  }

  private async getObject(key: string): Promise<Readable> {
    assertSafeKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      if (!(res.Body instanceof Readable)) throw new InternalError(`cannot read ${this.where(key)}: the response has no Node.js stream body`);
      return res.Body;
    } catch (err) {
      throw this.mapError('read', key, err);
    }
  }

  /** Reads the whole object; NotFoundError naming the key when absent. */
  async getBytes(key: string): Promise<Uint8Array> {
    const stream = await this.getObject(key);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (err) {
      throw this.mapError('read', key, err);
    }
    return Buffer.concat(chunks);
  }

  /** The GetObject body as a Node.js stream; NotFoundError naming the key when absent. */
  async getStream(key: string): Promise<Readable> {
    return this.getObject(key);
  }

  /** HeadObject; undefined when absent (a missing bucket also reads as absent: HEAD has no error body). */
  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return {
        key,
        size: res.ContentLength ?? 0,
        lastModified: (res.LastModified ?? new Date(0)).toISOString(),
        metadata: res.Metadata ?? {},
      };
    } catch (err) {
      const mapped = this.mapError('read', key, err);
      if (mapped instanceof NotFoundError && !isMissingBucket(err)) return undefined;
      throw mapped;
    }
  }

  /**
   * Lists page by page, then fetches each object's metadata with a HEAD (8 at a time). Sorted by key.
   * Pages with ListObjects (v1) and a marker rather than v2 continuation tokens: every S3 API has
   * it, and some S3-compatible servers (s3rver on OpenSSL 3) fail to mint v2 tokens.
   */
  async list(prefix: string): Promise<ObjectInfo[]> {
    assertSafePrefix(prefix);
    const keys: string[] = [];
    try {
      let marker: string | undefined;
      for (;;) {
        const page = await this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix + prefix, Marker: marker }));
        const contents = page.Contents ?? [];
        for (const obj of contents) {
          if (obj.Key !== undefined) keys.push(obj.Key.slice(this.prefix.length));
        }
        const last = contents[contents.length - 1]?.Key;
        if (!page.IsTruncated || last === undefined) break;
        marker = page.NextMarker ?? last;
      }
    } catch (err) {
      throw this.mapError('list', prefix, err);
    }
    keys.sort(compareKeys);
    const out: (ObjectInfo | undefined)[] = new Array(keys.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const i = next++;
        // keys written by other tools that this SDK would refuse are left out, not fatal; checked
        // here rather than by catching BadRequestError, which a 400 from the service is too
        if (isSafeKey(keys[i])) out[i] = await this.head(keys[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, keys.length) }, worker));
    // an object deleted between the listing and its HEAD is left out
    return out.filter((i): i is ObjectInfo => i !== undefined);
  }

  /** Deleting an absent key is not an error. */
  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (err) {
      const mapped = this.mapError('delete', key, err);
      if (mapped instanceof NotFoundError && !isMissingBucket(err)) return;
      throw mapped;
    }
  }
}
