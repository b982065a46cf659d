/**
 * Uploads a set of local files as one S3 object each below a prefix (an image folder as
 * `<prefix><class>/<file>`), a few at a time, resumable on every S3 API: one listing of the prefix
 * says what is stored, and an object whose size and MD5 ETag match the local file is not sent again.
 * Files larger than a part go through {@link resumableUpload}, so they resume by part.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { HeadObjectCommand, ListObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BadRequestError } from '../errors.js';
import { s3Error } from '../s3/errors.js';
import { resumableUpload, UploadInterruptedError, type PartEvent, type UploadJournal } from './multipart.js';

/** One local file and the key it gets below the prefix. */
export interface LocalObject {
  /** Key below the prefix, `/`-separated (e.g. `cat/a.png`). */
  key: string;
  /** File on disk. */
  source: string;
  size: number;
}

/** Options of {@link uploadObjectSet}. */
export interface ObjectSetOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix of the set, ending in `/`. */
  prefix: string;
  files: readonly LocalObject[];
  /** Files above this size go by multipart upload with this part size. */
  partSize: number;
  /** Objects in flight at once; default 8. */
  concurrency?: number;
  /** Stops taking new objects; the ones in flight finish, then {@link UploadInterruptedError}. */
  signal?: AbortSignal;
  /** After each object, sent or found stored: `partNumber` counts objects done of `parts`. */
  onObject?: (event: PartEvent) => void;
  /** The upload record of a multipart object (see {@link UploadJournal}). */
  journalFor?: (key: string) => UploadJournal;
  /** Fallback notices of multipart objects. */
  onNotice?: (message: string) => void;
}

/** What {@link uploadObjectSet} did. */
export interface ObjectSetOutcome {
  /** sha-256 (hex) over `<key>\t<size>\t<sha-256 of the file>\n` of every file, in the given order. */
  sha256: string;
  objects: number;
  sent: number;
  reused: number;
}

/** Size and ETag of every object below `prefix` (ListObjects v1 with a marker: every S3 API has it). */
export async function listStored(client: S3Client, bucket: string, prefix: string, maxPages: number): Promise<Map<string, { size: number; etag: string }>> {
  const out = new Map<string, { size: number; etag: string }>();
  let marker: string | undefined;
  try {
    for (let page = 0; page < maxPages; page++) {
      const res = await client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: marker }));
      const contents = res.Contents ?? [];
      for (const o of contents) {
        if (o.Key?.startsWith(prefix)) out.set(o.Key.slice(prefix.length), { size: o.Size ?? -1, etag: (o.ETag ?? '').replace(/"/g, '').toLowerCase() });
      }
      const last = contents[contents.length - 1]?.Key;
      if (!res.IsTruncated || last === undefined) break;
      marker = res.NextMarker ?? last;
    }
  } catch (err) {
    throw s3Error('list', `s3://${bucket}/${prefix}`, err, { bucket });
  }
  return out;
}

async function readExactly(file: LocalObject): Promise<Buffer> {
  const bytes = await fsp.readFile(file.source).catch((e: NodeJS.ErrnoException) => {
    throw new BadRequestError(`cannot read ${file.source}: ${e.code ?? e.message}`, { cause: e });
  });
  if (bytes.length !== file.size) {
    throw new BadRequestError(`file ${file.source} changed since the upload was planned (expected ${file.size} bytes, found ${bytes.length})`);
  }
  return bytes;
}

async function fileSha256(f: LocalObject): Promise<string> {
  const h = createHash('sha256');
  let seen = 0;
  try {
    for await (const chunk of fs.createReadStream(f.source)) {
      seen += (chunk as Buffer).length;
      h.update(chunk as Buffer);
    }
  } catch (e) {
    throw new BadRequestError(`cannot read ${f.source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (seen !== f.size) throw new BadRequestError(`file ${f.source} changed since the upload was planned (expected ${f.size} bytes, found ${seen})`);
  return h.digest('hex');
}

/** The `sha256` metadata of a stored object, if it has a well-formed one. */
async function storedSha256(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const value = (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).Metadata?.sha256;
    return value !== undefined && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
  } catch (err) {
    throw s3Error('check', `s3://${bucket}/${key}`, err, { bucket });
  }
}

/** Uploads the files not yet stored; resolves once every file is an object of the right size and MD5. */
export async function uploadObjectSet(opts: ObjectSetOptions): Promise<ObjectSetOutcome> {
  const { client, bucket, prefix, files, partSize } = opts;
  if (!prefix.endsWith('/')) throw new BadRequestError(`object set prefix ${JSON.stringify(prefix)} must end in '/'`);
  const totalBytes = files.reduce((a, f) => a + f.size, 0);
  // keys beyond the planned ones (put there by something else) are not read past a bound
  const stored = await listStored(client, bucket, prefix, Math.ceil(files.length / 1000) + 10);
  const hashes: string[] = new Array(files.length);
  let next = 0;
  let done = 0;
  let sent = 0;
  let storedBytes = 0;
  let failed = false;
  const emit = (f: LocalObject, wasSent: boolean) => {
    done++;
    storedBytes += f.size;
    if (wasSent) sent++;
    opts.onObject?.({ key: prefix + f.key, partNumber: done, parts: files.length, bytes: f.size, sent: wasSent, storedBytes, totalBytes });
  };

  const one = async (f: LocalObject): Promise<string> => {
    const key = prefix + f.key;
    if (f.size > partSize) {
      // a multipart object's ETag is no MD5 of its bytes: its sha-256 travels in its metadata
      const sha256 = await fileSha256(f);
      if (stored.get(f.key)?.size === f.size && (await storedSha256(client, bucket, key)) === sha256) {
        emit(f, false);
        return sha256;
      }
      const outcome = await resumableUpload({
        client, bucket, key, size: f.size, partSize, open: () => fs.createReadStream(f.source), signal: opts.signal,
        journal: opts.journalFor?.(key), onNotice: opts.onNotice, metadata: { sha256 },
      });
      if (outcome.sha256 !== sha256) throw new BadRequestError(`file ${f.source} changed while it was being uploaded`);
      emit(f, outcome.partsSent > 0);
      return sha256;
    }
    const bytes = await readExactly(f);
    const md5 = createHash('md5').update(bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const have = stored.get(f.key);
    const md5Hex = md5.copy().digest('hex');
    if (have && have.size === f.size && have.etag === md5Hex) {
      emit(f, false);
      return sha256;
    }
    if (opts.signal?.aborted) throw new UploadInterruptedError(`upload of s3://${bucket}/${prefix} interrupted after ${done} of ${files.length} objects`);
    try {
      // Content-MD5: the server checks the bytes it received
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length, ContentMD5: md5.digest('base64') }));
    } catch (err) {
      throw s3Error('write', `s3://${bucket}/${key}`, err, { bucket });
    }
    emit(f, true);
    return sha256;
  };

  const worker = async (): Promise<void> => {
    while (!failed && next < files.length) {
      const i = next++;
      try {
        hashes[i] = await one(files[i]);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(opts.concurrency ?? 8, files.length) }, worker));
  const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  // an interruption is reported as such only when nothing else went wrong
  const real = errors.find((e) => !(e instanceof UploadInterruptedError));
  if (real !== undefined) throw real;
  if (errors.length > 0) throw new UploadInterruptedError(`upload of s3://${bucket}/${prefix} interrupted after ${done} of ${files.length} objects`);

  const digest = createHash('sha256');
  files.forEach((f, i) => digest.update(`${f.key}\t${f.size}\t${hashes[i]}\n`));
  return { sha256: digest.digest('hex'), objects: files.length, sent, reused: files.length - sent };
}
