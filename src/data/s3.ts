/**
 * The S3 data source: objects below a bucket + prefix on any S3 API (AWS, MinIO, SeaweedFS),
 * addressed by keys relative to the prefix. Listing is paginated; reads stream.
 */
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { BadRequestError, InternalError } from '../errors.js';
import { makeS3Client } from '../s3/client.js';
import { s3Error } from '../s3/errors.js';
import { checkDataKey, checkListPrefix } from './keys.js';
import type { DataEntry, FileDataClient, S3Connection } from './port.js';

/** Where an S3 data source lives: the connection plus an optional key prefix ("folder"). */
export interface S3DataClientOptions extends S3Connection {
  /** Only objects below this prefix are visible; keys are relative to it. */
  prefix?: string;
  /** Where the insecure-TLS warning goes; default stderr, once per process. */
  onWarning?: (message: string) => void;
}

/** `"a/b"` → `"a/b/"`, `"/a/"` → `"a/"`, undefined → `""`. */
function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return p ? `${p}/` : '';
}

/** Reads objects below one bucket + prefix. */
export class S3DataClient implements FileDataClient {
  readonly type = 's3' as const;
  /** `s3://bucket/prefix/`, for messages and `getDataSources()`. */
  readonly location: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly client: S3Client;
  private readonly endpoint: string;

  constructor(options: S3DataClientOptions) {
    if (!options.bucket) throw new BadRequestError('S3 data source: bucket is empty');
    this.bucket = options.bucket;
    this.prefix = normalizePrefix(options.prefix);
    this.location = `s3://${this.bucket}/${this.prefix}`;
    this.endpoint = options.endpoint ?? `AWS region ${options.region}`;
    this.client = makeS3Client(options, { onWarning: options.onWarning });
  }

  /**
   * Every object below `prefix` (relative to the source's prefix), sorted by key. Pages with
   * ListObjects (v1) and a marker rather than v2 continuation tokens: every S3 API has it, and some
   * (s3rver on OpenSSL 3) fail to mint v2 tokens, so an uploaded dataset of over 1000 images could
   * not be listed there.
   */
  async list(prefix?: string): Promise<DataEntry[]> {
    const sub = checkListPrefix(prefix, this.describe());
    const entries: DataEntry[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.call('list', sub, () =>
        this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.prefix + sub, Marker: marker })),
      );
      const contents = page.Contents ?? [];
      for (const o of contents) {
        if (!o.Key || o.Key.endsWith('/')) continue; // "folder" marker objects are not files
        entries.push({
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          lastModified: (o.LastModified ?? new Date(0)).toISOString(),
        });
      }
      const last = page.NextMarker ?? contents[contents.length - 1]?.Key;
      // a server that repeats its last key is not followed around in circles
      if (!page.IsTruncated || last === undefined || last === marker) break;
      marker = last;
    }
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The whole object. */
  async getBytes(key: string): Promise<Uint8Array> {
    const out = await this.get(key);
    return this.call('read', key, () => (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }

  /** The object as a stream (requested before returning, so a missing key fails here). */
  async getStream(key: string): Promise<Readable> {
    const out = await this.get(key);
    const body = out.Body;
    if (body instanceof Readable) return body;
    throw new InternalError(`${this.describe()}: object "${key}" has no readable body`);
  }

  /** Release the client's sockets. */
  close(): void {
    this.client.destroy();
  }

  private describe(): string {
    return `S3 data source ${this.location}`;
  }

  private get(key: string): Promise<GetObjectCommandOutput> {
    checkDataKey(key, this.describe());
    return this.call('read', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
    );
  }

  private async call<T>(action: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw s3Error(action, `${this.location}${key}`, err, { bucket: this.bucket, endpoint: this.endpoint });
    }
  }
}
