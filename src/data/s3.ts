/**
 * The S3 data source: objects below a bucket + prefix on any S3 API (AWS, MinIO, SeaweedFS),
 * addressed by keys relative to the prefix. Listing is paginated; reads stream.
 */
import https from 'node:https';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3Client, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { BadRequestError, FlameError, InternalError, NotFoundError, UnauthorizedError } from '../errors.js';
import { checkDataKey, checkListPrefix } from './keys.js';
import type { DataEntry, FileDataClient, S3Connection } from './port.js';

/** Where an S3 data source lives: the connection plus an optional key prefix ("folder"). */
export interface S3DataClientOptions extends S3Connection {
  /** Only objects below this prefix are visible; keys are relative to it. */
  prefix?: string;
  /** Where the insecure-TLS warning goes; default `console.warn`. */
  onWarning?: (message: string) => void;
}

/** Build the S3 client of a data source (path-style when an endpoint is given). */
function makeClient(o: S3DataClientOptions, location: string): S3Client {
  const credentials =
    o.accessKeyId && o.secretAccessKey ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } : undefined;
  let requestHandler: { httpsAgent: https.Agent } | undefined;
  if (o.insecure) {
    (o.onWarning ?? ((m: string) => console.warn(m)))(
      `S3 data source ${location}: TLS certificate verification is OFF (insecure); use only with trusted test servers`,
    );
    requestHandler = { httpsAgent: new https.Agent({ rejectUnauthorized: false }) };
  }
  return new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle ?? Boolean(o.endpoint),
    credentials,
    requestHandler,
  });
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
    this.client = makeClient(options, this.location);
  }

  /** Every object below `prefix` (relative to the source's prefix), sorted by key. */
  async list(prefix?: string): Promise<DataEntry[]> {
    const sub = checkListPrefix(prefix, this.describe());
    const entries: DataEntry[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`list "${sub}"`, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + sub, ContinuationToken: token }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (!o.Key || o.Key.endsWith('/')) continue; // "folder" marker objects are not files
        entries.push({
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          lastModified: (o.LastModified ?? new Date(0)).toISOString(),
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** The whole object. */
  async getBytes(key: string): Promise<Uint8Array> {
    const out = await this.get(key);
    return this.call(`read "${key}"`, () => (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
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
    return this.call(`read "${key}"`, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
    );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.mapError(what, err);
    }
  }

  private mapError(what: string, err: unknown): FlameError {
    if (err instanceof FlameError) return err;
    const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const name = e.name ?? 'Error';
    if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) {
      return new NotFoundError(`${this.describe()}: ${what}: no such object`, { cause: err });
    }
    if (name === 'NoSuchBucket') {
      return new NotFoundError(`${this.describe()}: ${what}: bucket "${this.bucket}" does not exist`, { cause: err });
    }
    if (status === 401 || status === 403) {
      return new UnauthorizedError(`${this.describe()}: ${what}: access denied (${name})`, { cause: err });
    }
    if (status === undefined) {
      return new InternalError(`${this.describe()}: ${what}: S3 endpoint ${this.endpoint} unreachable (${e.code ?? e.message ?? name})`, {
        cause: err,
      });
    }
    return new InternalError(`${this.describe()}: ${what}: HTTP ${status} ${name}`, { cause: err });
  }
}
