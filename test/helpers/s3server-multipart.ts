/**
 * An s3rver (see s3server.ts) that also answers the three S3 multipart operations s3rver leaves
 * out: ListMultipartUploads (`GET /bucket?uploads`), ListParts (`GET /bucket/key?uploadId=`) and
 * AbortMultipartUpload (`DELETE /bucket/key?uploadId=`). They read s3rver's own on-disk upload
 * state (`<bucket>/._S3rver_uploads/<uploadId>/{key,<n>,<n>.md5}`), which its CreateMultipartUpload,
 * UploadPart and CompleteMultipartUpload write, and answer in S3's documented XML, so the real AWS
 * SDK talks to it over HTTP. Signatures are not checked for these three operations.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { startS3Server, type S3TestServer } from './s3server.js';

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInternals {
  middleware: Middleware[];
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

function s3Error(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.body = { Error: { Code: code, Message: message } };
}

function multipartMiddleware(internals: S3rverInternals): Middleware {
  return async (ctx, next) => {
    const [, bucket, ...keyParts] = ctx.path.split('/').map(decodeURIComponent);
    const key = keyParts.join('/');
    if (!bucket) return next();
    const uploads = internals.store.getResourcePath(bucket, undefined, 'uploads');
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;

    if (ctx.method === 'GET' && key === '' && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const ids = (await exists(uploads)) ? await fs.readdir(uploads) : [];
      const found: { Key: string; UploadId: string; Initiated: string }[] = [];
      for (const id of ids) {
        const keyFile = path.join(uploads, id, 'key');
        if (!(await exists(keyFile))) continue;
        const k = await fs.readFile(keyFile, 'utf8');
        if (!k.startsWith(prefix)) continue;
        const st = await fs.stat(keyFile);
        found.push({ Key: k, UploadId: id, Initiated: st.mtime.toISOString() });
      }
      found.sort((a, b) => (a.Key === b.Key ? a.Initiated.localeCompare(b.Initiated) : a.Key < b.Key ? -1 : 1));
      ctx.body = {
        ListMultipartUploadsResult: { Bucket: bucket, Prefix: prefix, MaxUploads: 1000, IsTruncated: false, Upload: found },
      };
      return;
    }
    if (key !== '' && uploadId !== undefined && (ctx.method === 'GET' || ctx.method === 'DELETE')) {
      const dir = path.join(uploads, path.basename(uploadId));
      if (!(await exists(path.join(dir, 'key')))) return s3Error(ctx, 404, 'NoSuchUpload', `upload ${uploadId} does not exist`);
      if (ctx.method === 'DELETE') {
        await fs.rm(dir, { recursive: true, force: true });
        ctx.status = 204;
        ctx.body = '';
        return;
      }
      const numbers = (await fs.readdir(dir)).filter((f) => /^\d+$/.test(f)).map(Number).sort((a, b) => a - b);
      const parts = [];
      for (const n of numbers) {
        const st = await fs.stat(path.join(dir, String(n)));
        const md5 = await fs.readFile(path.join(dir, `${n}.md5`), 'utf8').catch(() => undefined);
        if (md5 === undefined) continue; // still being written
        parts.push({ PartNumber: n, LastModified: st.mtime.toISOString(), ETag: `"${md5}"`, Size: st.size });
      }
      ctx.body = { ListPartsResult: { Bucket: bucket, Key: key, UploadId: uploadId, MaxParts: 1000, IsTruncated: false, Part: parts } };
      return;
    }
    return next();
  };
}

/** Starts s3rver with ListMultipartUploads, ListParts and AbortMultipartUpload added. */
export function startMultipartS3Server(buckets: string[] = ['flame-hub']): Promise<S3TestServer> {
  return startS3Server(buckets, (server) => {
    const internals = server as unknown as S3rverInternals;
    // just before s3rver's router (its last middleware), after the one that renders objects as XML
    internals.middleware.splice(internals.middleware.length - 1, 0, multipartMiddleware(internals));
  });
}
