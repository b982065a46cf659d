/**
 * Resumable uploads of one object with S3 multipart upload, on any S3 API that has it. Where the
 * server lists its own state (ListMultipartUploads, ListParts: AWS, MinIO, SeaweedFS, Ceph), that
 * state decides what is stored. Where it does not (s3rver answers NotImplemented / MethodNotAllowed),
 * an upload record kept beside the object (an {@link UploadJournal}: the upload id and the parts
 * the server acknowledged) takes its place, so the upload still resumes, from any machine that
 * reaches the same storage. A stored part is reused only if its size and MD5 (its ETag) match the
 * local bytes, which are read again but not sent again. A server without multipart upload at all
 * gets the object in one PUT, which cannot resume (said through `onNotice`).
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
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
import { BadRequestError, InternalError, NotFoundError, type FlameError } from '../errors.js';
import { s3Error, s3ErrorName, s3Status } from '../s3/errors.js';

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

/** What the uploader remembers of an open multipart upload, for servers that cannot list it. */
export interface UploadRecord {
  uploadId: string;
  /** Size of the whole object and the part size the upload was started with. */
  size: number;
  partSize: number;
  /** Parts the server acknowledged (UploadPart answered with this ETag), by part number. */
  parts: StoredPart[];
}

/**
 * Where an {@link UploadRecord} is kept between attempts. `load` returns undefined when there is
 * none or it cannot be read (the upload then starts over rather than trusting it).
 */
export interface UploadJournal {
  load(): Promise<UploadRecord | undefined>;
  save(record: UploadRecord): Promise<void>;
  clear(): Promise<void>;
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
  /** Keeps the upload id and acknowledged parts, for servers without ListMultipartUploads/ListParts. */
  journal?: UploadJournal;
  /** Told once when the server lacks an operation and the upload falls back (record, single PUT). */
  onNotice?: (message: string) => void;
  /** User metadata of the object (set when the upload starts). */
  metadata?: Record<string, string>;
}

/** What {@link resumableUpload} did. */
export interface ResumableUploadOutcome {
  /** sha-256 (hex) of the object's bytes. */
  sha256: string;
  parts: number;
  partsSent: number;
  partsReused: number;
  /** `parts` from the server's ListParts, `record` from the upload journal, `none` for a fresh upload or one PUT. */
  resumedFrom: 'parts' | 'record' | 'none';
}

/** Maps an S3 failure to the SDK's error kinds (src/s3/errors.ts), naming the object. */
function s3Failure(action: string, bucket: string, key: string, err: unknown): FlameError {
  return s3Error(action, `s3://${bucket}/${key}`, err, { bucket });
}

/**
 * Whether the server says it does not implement the request (s3rver: NotImplemented for
 * `?uploads` listings, MethodNotAllowed for ListParts and AbortMultipartUpload).
 */
export function isUnsupported(err: unknown): boolean {
  const name = s3ErrorName(err);
  const status = s3Status(err);
  return name === 'NotImplemented' || name === 'MethodNotAllowed' || status === 501 || status === 405;
}

/** Number of parts of an object of `size` bytes (at least one). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/**
 * The open multipart uploads of exactly `key`, oldest first; undefined when the server does not
 * implement ListMultipartUploads.
 */
export async function findUploads(client: S3Client, bucket: string, key: string): Promise<{ uploadId: string; initiated?: Date }[] | undefined> {
  const found: { uploadId: string; initiated?: Date }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    for (let page = 0; ; page++) {
      const res = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const u of res.Uploads ?? []) {
        if (u.Key === key && u.UploadId) found.push({ uploadId: u.UploadId, initiated: u.Initiated });
      }
      // a server that keeps saying "truncated" is not followed forever
      if (!res.IsTruncated || page >= MAX_PARTS) break;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
  } catch (err) {
    if (isUnsupported(err)) return undefined;
    throw s3Failure('list multipart uploads of', bucket, key, err);
  }
  return found.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
}

/**
 * The parts S3 holds for an open upload, by part number; undefined when the server does not
 * implement ListParts. NotFoundError when the upload is gone.
 */
export async function listStoredParts(client: S3Client, bucket: string, key: string, uploadId: string): Promise<StoredPart[] | undefined> {
  const parts: StoredPart[] = [];
  let marker: string | undefined;
  try {
    for (let page = 0; ; page++) {
      const res = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of res.Parts ?? []) {
        if (p.PartNumber !== undefined) parts.push({ partNumber: p.PartNumber, size: p.Size ?? 0, etag: (p.ETag ?? '').replace(/"/g, '') });
      }
      if (!res.IsTruncated || page >= MAX_PARTS) break;
      marker = res.NextPartNumberMarker;
    }
  } catch (err) {
    if (isUnsupported(err)) return undefined;
    throw s3Failure('list stored parts of', bucket, key, err);
  }
  return parts.sort((a, b) => a.partNumber - b.partNumber);
}

/**
 * Aborts the open multipart uploads of `key` (their stored parts are dropped): those the server
 * lists and `also` (e.g. the id of an upload record). Returns how many were aborted and how many
 * the server could not abort because it does not implement AbortMultipartUpload.
 */
export async function abortUploads(client: S3Client, bucket: string, key: string, also: string[] = []): Promise<{ aborted: number; unsupported: number }> {
  const listed = (await findUploads(client, bucket, key)) ?? [];
  const ids = [...new Set([...listed.map((u) => u.uploadId), ...also])];
  let aborted = 0;
  let unsupported = 0;
  for (const uploadId of ids) {
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      aborted++;
    } catch (err) {
      if (isUnsupported(err)) {
        unsupported++;
        continue;
      }
      const mapped = s3Failure('abort the upload of', bucket, key, err);
      if (!(mapped instanceof NotFoundError)) throw mapped;
    }
  }
  return { aborted, unsupported };
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

/** The whole object in one PutObject, streamed: for servers without multipart upload (no resume). */
async function singlePut(opts: ResumableUploadOptions): Promise<ResumableUploadOutcome> {
  const { client, bucket, key, size } = opts;
  if (opts.signal?.aborted) throw new UploadInterruptedError(`upload of s3://${bucket}/${key} interrupted before it began`);
  const sha = createHash('sha256');
  let seen = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > size) return done(new BadRequestError(`${key}: the source yields more than the ${size} bytes announced`));
      sha.update(chunk);
      done(null, chunk);
    },
  });
  const source = opts.open();
  source.on('error', (e) => counted.destroy(e));
  source.pipe(counted);
  try {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: counted, ContentLength: size, Metadata: opts.metadata }));
  } catch (err) {
    throw s3Failure('write', bucket, key, err);
  } finally {
    source.destroy();
  }
  if (seen !== size) throw new BadRequestError(`${key}: the source yielded ${seen} bytes, ${size} were announced`);
  opts.onPart?.({ key, partNumber: 1, parts: 1, bytes: size, sent: true, storedBytes: size, totalBytes: size });
  return { sha256: sha.digest('hex'), parts: 1, partsSent: 1, partsReused: 0, resumedFrom: 'none' };
}

/** Which upload to continue and what it holds, from the server's listings or else the record. */
async function findResumePoint(
  opts: ResumableUploadOptions,
  record: UploadRecord | undefined,
): Promise<{ uploadId: string; stored: StoredPart[]; from: 'parts' | 'record' } | undefined> {
  const { client, bucket, key } = opts;
  const recorded = record && record.size === opts.size && record.partSize === opts.partSize ? record : undefined;
  let uploadId = recorded?.uploadId;
  if (!uploadId) {
    const open = await findUploads(client, bucket, key);
    uploadId = open?.[open.length - 1]?.uploadId;
  }
  if (!uploadId) return undefined;
  let listed: StoredPart[] | undefined;
  try {
    listed = await listStoredParts(client, bucket, key, uploadId);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined; // the upload was completed or aborted meanwhile
    throw e;
  }
  if (listed) return { uploadId, stored: listed, from: 'parts' };
  if (recorded?.uploadId !== uploadId) return undefined;
  opts.onNotice?.(`the S3 API does not implement ListParts: resuming s3://${bucket}/${key} from its upload record (${recorded.parts.length} parts acknowledged)`);
  return { uploadId, stored: recorded.parts, from: 'record' };
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

  if (size === 0) {
    // S3 needs at least one part to complete an upload: an empty object is one plain PUT
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }));
    } catch (err) {
      throw s3Failure('write', bucket, key, err);
    }
    return { sha256: createHash('sha256').digest('hex'), parts: 0, partsSent: 0, partsReused: 0, resumedFrom: 'none' };
  }

  const resume = await findResumePoint(opts, await opts.journal?.load());
  let uploadId = resume?.uploadId;
  if (!uploadId) {
    try {
      uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: opts.metadata }))).UploadId;
    } catch (err) {
      if (!isUnsupported(err)) throw s3Failure('start a multipart upload of', bucket, key, err);
      opts.onNotice?.(`the S3 API does not implement multipart upload: s3://${bucket}/${key} goes in one request, which cannot resume if interrupted`);
      return singlePut(opts);
    }
    if (!uploadId) throw new InternalError(`s3://${bucket}/${key}: the server returned no upload id`);
  }
  const outcome = await sendParts(opts, uploadId, resume?.stored ?? [], parts, resume?.from === 'record');
  if (outcome.completed) return { ...outcome.result, resumedFrom: resume?.from ?? 'none' };
  // Parts taken from the record were not confirmed by the server and it refused them: start over once.
  opts.onNotice?.(`s3://${bucket}/${key}: the server refused the parts of its upload record (${outcome.error.message}); uploading it again from the start`);
  await abortUploads(client, bucket, key, [uploadId]);
  await opts.journal?.clear();
  return resumableUpload({ ...opts, journal: opts.journal ? { ...opts.journal, load: async () => undefined } : undefined });
}

type SendOutcome =
  | { completed: true; result: Omit<ResumableUploadOutcome, 'resumedFrom'> }
  | { completed: false; error: FlameError };

/**
 * Sends the parts not in `storedParts`, then completes the upload; the journal follows every
 * acknowledged part. `unconfirmed`: the stored parts come from the record, not from the server, so a
 * refused completion is returned (to start over) rather than thrown.
 */
async function sendParts(opts: ResumableUploadOptions, uploadId: string, storedParts: StoredPart[], parts: number, unconfirmed: boolean): Promise<SendOutcome> {
  const { client, bucket, key, size, partSize } = opts;
  const stored = new Map(storedParts.map((p) => [p.partNumber, p]));
  const record: UploadRecord = { uploadId, size, partSize, parts: [...storedParts] };
  const sha = createHash('sha256');
  const etags: { PartNumber: number; ETag: string }[] = [];
  let partNumber = 0;
  let storedBytes = 0;
  let partsSent = 0;
  if (storedParts.length === 0) await opts.journal?.save(record);
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
        record.parts = [...record.parts.filter((p) => p.partNumber !== partNumber), { partNumber, size: part.length, etag }];
        await opts.journal?.save(record);
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
    const mapped = s3Failure('complete the upload of', bucket, key, err);
    if (unconfirmed && partsSent < parts) return { completed: false, error: mapped };
    throw mapped;
  }
  await checkStoredSize(client, bucket, key, size);
  await opts.journal?.clear();
  return { completed: true, result: { sha256: sha.digest('hex'), parts, partsSent, partsReused: parts - partsSent } };
}

async function checkStoredSize(client: S3Client, bucket: string, key: string, size: number): Promise<void> {
  let stored: number | undefined;
  try {
    stored = (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength;
  } catch (err) {
    throw s3Failure('check', bucket, key, err);
  }
  if (stored !== size) throw new InternalError(`s3://${bucket}/${key}: stored ${stored} bytes after completing the upload, expected ${size}`);
}
