/**
 * Resumable uploads of one object with S3 multipart upload. All state lives in S3: the open upload
 * is found with ListMultipartUploads and its stored parts with ListParts, so an upload cut off at any
 * point continues from the parts already stored, from any machine. A stored part is reused only if
 * its size and MD5 (its ETag) match the local bytes, which are read again but not sent again.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BadRequestError, FlameError, InternalError, NotFoundError, UnauthorizedError } from '../errors.js';

/** S3's smallest part size (every part but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** S3's largest number of parts in one upload. */
export const MAX_PARTS = 10000;

/** Thrown when an upload stops because its AbortSignal fired; the stored parts stay for a resume. */
export class UploadInterruptedError extends InternalError {}

/** A part S3 holds for an open multipart upload. */
export interface StoredPart {
  partNumber: number;
  size: number;
  /** The ETag without quotes: the part's MD5 in hex on plain S3 APIs. */
  etag: string;
}

/** What happened to one part. */
export interface PartEvent {
  key: string;
  partNumber: number;
  parts: number;
  /** Bytes of this part. */
  bytes: number;
  /** True when the part was sent, false when the stored one was reused. */
  sent: boolean;
  /** Bytes of the object stored so far (this part included). */
  storedBytes: number;
  totalBytes: number;
}

/** Options of {@link resumableUpload}. */
export interface ResumableUploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** Exact size of the object in bytes. */
  size: number;
  /** Part size in bytes; must be the same on every attempt of one upload. */
  partSize: number;
  /** A fresh stream of the object's bytes (called once per attempt). */
  open: () => Readable;
  /** Stops the upload between parts; the parts already stored stay for a resume. */
  signal?: AbortSignal;
  /** Called after each part, sent or reused. */
  onPart?: (event: PartEvent) => void;
}

/** What {@link resumableUpload} did. */
export interface ResumableUploadOutcome {
  /** sha-256 (hex) of the object's bytes. */
  sha256: string;
  parts: number;
  partsSent: number;
  partsReused: number;
}

interface ServiceError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Maps an S3 failure to the SDK's error kinds, naming the object. */
export function s3Failure(action: string, bucket: string, key: string, err: unknown): FlameError {
  if (err instanceof FlameError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as ServiceError;
  const where = `s3://${bucket}/${key}`;
  const status = e.$metadata?.httpStatusCode;
  const detail = err instanceof Error ? err.message : String(err);
  if (e.name === 'NoSuchBucket') return new NotFoundError(`cannot ${action} ${where}: bucket ${JSON.stringify(bucket)} does not exist`, { cause: err });
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchUpload' || status === 404) {
    return new NotFoundError(`cannot ${action} ${where}: not found`, { cause: err });
  }
  if (status === 401 || status === 403 || e.name === 'AccessDenied') return new UnauthorizedError(`cannot ${action} ${where}: access denied`, { cause: err });
  return new InternalError(`cannot ${action} ${where}: ${e.name ? `${e.name}: ` : ''}${detail}`, { cause: err });
}

/** Number of parts of an object of `size` bytes (at least one). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** The open multipart uploads of exactly `key`, oldest first. */
export async function findUploads(client: S3Client, bucket: string, key: string): Promise<{ uploadId: string; initiated?: Date }[]> {
  const found: { uploadId: string; initiated?: Date }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    for (;;) {
      const page = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key === key && u.UploadId) found.push({ uploadId: u.UploadId, initiated: u.Initiated });
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  } catch (err) {
    throw s3Failure('list multipart uploads of', bucket, key, err);
  }
  return found.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
}

/** The parts S3 holds for an open upload, by part number. */
export async function listStoredParts(client: S3Client, bucket: string, key: string, uploadId: string): Promise<StoredPart[]> {
  const parts: StoredPart[] = [];
  let marker: string | undefined;
  try {
    for (;;) {
      const page = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of page.Parts ?? []) {
        if (p.PartNumber !== undefined) parts.push({ partNumber: p.PartNumber, size: p.Size ?? 0, etag: (p.ETag ?? '').replace(/"/g, '') });
      }
      if (!page.IsTruncated) break;
      marker = page.NextPartNumberMarker;
    }
  } catch (err) {
    throw s3Failure('list stored parts of', bucket, key, err);
  }
  return parts.sort((a, b) => a.partNumber - b.partNumber);
}

/** Aborts every open multipart upload of `key` (their stored parts are dropped). */
export async function abortUploads(client: S3Client, bucket: string, key: string): Promise<number> {
  const uploads = await findUploads(client, bucket, key);
  for (const u of uploads) {
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.uploadId }));
    } catch (err) {
      const mapped = s3Failure('abort the upload of', bucket, key, err);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }
  return uploads.length;
}

/** Cuts a stream into buffers of exactly `size` bytes (the last one shorter). */
async function* fixedChunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream) {
    let buf = chunk as Buffer;
    while (buf.length > 0) {
      const take = Math.min(size - pendingBytes, buf.length);
      pending.push(buf.subarray(0, take));
      pendingBytes += take;
      buf = buf.subarray(take);
      if (pendingBytes === size) {
        yield Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

function isMd5Etag(etag: string): boolean {
  return /^[0-9a-f]{32}$/i.test(etag);
}

/**
 * Uploads (or finishes uploading) one object. Parts go one at a time, so memory stays at one part.
 * Throws {@link UploadInterruptedError} when `signal` fires (checked before each part), leaving the
 * upload open for a later call; BadRequestError when the bytes do not add up to `size`.
 */
export async function resumableUpload(opts: ResumableUploadOptions): Promise<ResumableUploadOutcome> {
  const { client, bucket, key, size, partSize } = opts;
  if (!Number.isInteger(partSize) || partSize < MIN_PART_SIZE) {
    throw new BadRequestError(`part size must be at least ${MIN_PART_SIZE} bytes (S3's minimum), got ${partSize}`);
  }
  const parts = partCount(size, partSize);
  if (parts > MAX_PARTS) throw new BadRequestError(`${key}: ${size} bytes need ${parts} parts of ${partSize} bytes, S3 allows ${MAX_PARTS}: use a larger part size`);
  const sha = createHash('sha256');

  if (size === 0) {
    // S3 needs at least one part to complete an upload: an empty object is one plain PUT
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }));
    } catch (err) {
      throw s3Failure('write', bucket, key, err);
    }
    return { sha256: sha.digest('hex'), parts: 0, partsSent: 0, partsReused: 0 };
  }

  const open = await findUploads(client, bucket, key);
  let found: string | undefined = open[open.length - 1]?.uploadId;
  if (!found) {
    try {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      found = created.UploadId;
    } catch (err) {
      throw s3Failure('start a multipart upload of', bucket, key, err);
    }
    if (!found) throw new InternalError(`s3://${bucket}/${key}: the server returned no upload id`);
  }
  const uploadId: string = found;
  const stored = new Map((await listStoredParts(client, bucket, key, uploadId)).map((p) => [p.partNumber, p]));

  const etags: { PartNumber: number; ETag: string }[] = [];
  let partNumber = 0;
  let storedBytes = 0;
  let partsSent = 0;
  const stream = opts.open();
  try {
    for await (const part of fixedChunks(stream, partSize)) {
      partNumber++;
      if (partNumber > parts || storedBytes + part.length > size) {
        throw new BadRequestError(`${key}: the source yields more than the ${size} bytes announced`);
      }
      sha.update(part);
      const md5 = createHash('md5').update(part).digest('hex');
      const have = stored.get(partNumber);
      const reusable = have !== undefined && have.size === part.length && (!isMd5Etag(have.etag) || have.etag.toLowerCase() === md5);
      let etag: string;
      if (reusable) {
        etag = have.etag;
      } else {
        if (opts.signal?.aborted) throw new UploadInterruptedError(`upload of s3://${bucket}/${key} interrupted after ${partNumber - 1} of ${parts} parts`);
        try {
          const res = await client.send(
            new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: part, ContentLength: part.length }),
          );
          etag = (res.ETag ?? '').replace(/"/g, '');
        } catch (err) {
          throw s3Failure(`upload part ${partNumber} of`, bucket, key, err);
        }
        partsSent++;
      }
      etags.push({ PartNumber: partNumber, ETag: `"${etag}"` });
      storedBytes += part.length;
      opts.onPart?.({ key, partNumber, parts, bytes: part.length, sent: !reusable, storedBytes, totalBytes: size });
    }
  } finally {
    stream.destroy();
  }
  if (storedBytes !== size) throw new BadRequestError(`${key}: the source yielded ${storedBytes} bytes, ${size} were announced`);
  try {
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags } }),
    );
  } catch (err) {
    throw s3Failure('complete the upload of', bucket, key, err);
  }
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== size) {
      throw new InternalError(`s3://${bucket}/${key}: stored ${head.ContentLength} bytes after completing the upload, expected ${size}`);
    }
  } catch (err) {
    throw s3Failure('check', bucket, key, err);
  }
  return { sha256: sha.digest('hex'), parts, partsSent, partsReused: parts - partsSent };
}
