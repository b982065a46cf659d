/**
 * The one S3 error mapping (src/s3/errors.ts) against a real S3 API server (s3rver) over HTTP:
 * hub storage, data sources and dataset uploads get the same kind for the same failure.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3DataClient } from '../../src/data/s3.js';
import { resumableUpload } from '../../src/datasets/multipart.js';
import { BadRequestError, ConflictError, InternalError, NotFoundError, TimeoutError, UnauthorizedError } from '../../src/errors.js';
import { S3ObjectStore } from '../../src/results/s3.js';
import { makeS3Client } from '../../src/s3/client.js';
import { s3Error } from '../../src/s3/errors.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

const BUCKET = 'flame-errors';
let server: S3TestServer;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  server = await startS3Server([BUCKET]);
});
afterAll(async () => {
  for (const c of clients) c.destroy();
  await server.close();
});

function store(overrides: Partial<S3TestServer & { bucket: string; accessKeyId?: string }> = {}): S3ObjectStore {
  const s = new S3ObjectStore({ ...server, bucket: BUCKET, ...overrides });
  clients.push(s.client);
  return s;
}

function data(overrides: { bucket?: string; accessKeyId?: string } = {}): S3DataClient {
  const c = new S3DataClient({ ...server, bucket: BUCKET, ...overrides });
  clients.push({ destroy: () => c.close() });
  return c;
}

/** Rejects with exactly this class and message (toThrow(new X(...)) would compare the cause too). */
async function expectError(p: Promise<unknown>, kind: new (message: string) => Error, message: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(kind);
  expect((err as Error).message).toBe(message);
}

function upload(client: S3Client, bucket = BUCKET): Promise<unknown> {
  return resumableUpload({ client, bucket, key: 'ds/x.bin', size: 1, partSize: 5 * 1024 * 1024, open: () => Readable.from([Buffer.from('x')]) });
}

test('a wrong access key is unauthorized in hub storage, data sources and dataset uploads', async () => {
  // s3rver checks the access key id (not SigV4 signatures): an unknown id is refused with InvalidAccessKeyId / 403
  await expect(store({ accessKeyId: 'NOBODY' }).put('k', Buffer.from('x'))).rejects.toThrow(UnauthorizedError);
  await expect(data({ accessKeyId: 'NOBODY' }).getBytes('k')).rejects.toThrow(UnauthorizedError);
  const wrong = makeS3Client({ ...server, bucket: BUCKET, accessKeyId: 'NOBODY' });
  clients.push(wrong);
  await expect(upload(wrong)).rejects.toThrow(UnauthorizedError);
  await expect(upload(wrong)).rejects.toThrow(/cannot .* s3:\/\/flame-errors\/ds\/x\.bin: access denied/);
});

test('a missing bucket is not found, naming the bucket, on every path', async () => {
  await expectError(store({ bucket: 'no-such-bucket' }).getBytes('k'), NotFoundError, 'cannot read s3://no-such-bucket/k: bucket "no-such-bucket" does not exist');
  await expectError(data({ bucket: 'no-such-bucket' }).list(), NotFoundError, 'cannot list s3://no-such-bucket/: bucket "no-such-bucket" does not exist');
  const ok = makeS3Client({ ...server, bucket: BUCKET });
  clients.push(ok);
  await expect(upload(ok, 'no-such-bucket')).rejects.toThrow(NotFoundError);
});

test('a missing key is not found, naming the key', async () => {
  await expectError(store().getBytes('gone/1'), NotFoundError, 'cannot read s3://flame-errors/gone/1: not found');
  await expectError(data().getBytes('gone/1'), NotFoundError, 'cannot read s3://flame-errors/gone/1: not found');
});

test('a bucket that exists is a conflict; a malformed bucket name a bad request', async () => {
  const client = makeS3Client({ ...server, bucket: BUCKET });
  clients.push(client);
  const taken = await client.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((e: unknown) => e);
  expect(s3Error('create', `s3://${BUCKET}`, taken)).toBeInstanceOf(ConflictError);
  const malformed = await client.send(new CreateBucketCommand({ Bucket: 'Not_A_Bucket' })).catch((e: unknown) => e);
  expect(s3Error('create', 's3://Not_A_Bucket', malformed)).toBeInstanceOf(BadRequestError);
  expect(s3Error('create', 's3://Not_A_Bucket', malformed).message).toMatch(/^cannot create s3:\/\/Not_A_Bucket: refused as malformed \(InvalidBucketName/);
});

test('a server that does not answer in time is a timeout; an unreachable one is internal, naming the endpoint', async () => {
  const silent = http.createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const slow = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true } as never });
    clients.push(slow);
    const err = await slow.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'k' })).catch((e: unknown) => e);
    // the Node.js handler's own timeout: name TimeoutError, no HTTP status
    expect(s3Error('read', `s3://${BUCKET}/k`, err, { endpoint })).toBeInstanceOf(TimeoutError);
    expect(s3Error('read', `s3://${BUCKET}/k`, err, { endpoint }).message).toMatch(/^cannot read s3:\/\/flame-errors\/k: timed out \(TimeoutError/);
  } finally {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  }
  const gone = store({ endpoint: 'http://127.0.0.1:1' });
  await expect(gone.getBytes('k')).rejects.toThrow(InternalError);
  await expect(gone.getBytes('k')).rejects.toThrow(/S3 endpoint http:\/\/127\.0\.0\.1:1 unreachable \(.*ECONNREFUSED/);
});

describe('no credentials anywhere', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    // leave the default AWS chain nothing to find, and no instance metadata service to wait for
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/flame-test-credentials';
    process.env.AWS_CONFIG_FILE = '/nonexistent/flame-test-config';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
  });
  afterAll(() => {
    process.env = saved;
  });

  test('is unauthorized, naming the variables to set, not "internal: CredentialsProviderError"', async () => {
    const hub = store({ accessKeyId: undefined, secretAccessKey: undefined });
    const err = await hub.getBytes('k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as Error).message).toMatch(/^cannot read s3:\/\/flame-errors\/k: no S3 credentials found: set FLAME_HUB_S3_ACCESS_KEY_ID and FLAME_HUB_S3_SECRET_ACCESS_KEY/);
    expect((err as Error).message).toContain('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    await expect(data({ accessKeyId: undefined, secretAccessKey: undefined } as never).list()).rejects.toThrow(UnauthorizedError);
  }, 30_000);
});
