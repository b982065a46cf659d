import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../../src/errors.js';
import { makeS3Client, S3ObjectStore } from '../../src/results/s3.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { describeObjectStoreConformance } from './conformance.js';

const BUCKET = 'flame-store-conformance';

describeObjectStoreConformance('S3ObjectStore (s3rver)', async () => {
  const server = await startS3Server([BUCKET]);
  // the smallest part size S3 allows, so the 20 MiB upload takes several parts
  const store = new S3ObjectStore({ ...server, bucket: BUCKET, prefix: 'conformance', partSize: 5 * 1024 * 1024 });
  return {
    store,
    cleanup: async () => {
      store.client.destroy();
      await server.close();
    },
  };
});

describe('S3ObjectStore against s3rver', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server(['flame-hub']);
  });
  afterAll(async () => {
    await server.close();
  });

  it('ensureBucket creates a missing bucket, and is idempotent', async () => {
    const bucket = `made-${randomUUID().slice(0, 8)}`;
    const store = new S3ObjectStore({ ...server, bucket });
    await expect(store.put('x', Buffer.from('1'))).rejects.toThrow(NotFoundError);
    await expect(store.put('x', Buffer.from('1'))).rejects.toThrow(bucket);
    await store.ensureBucket();
    await store.ensureBucket();
    await store.put('x', Buffer.from('1'));
    expect(Buffer.from(await store.getBytes('x')).toString()).toBe('1');
    store.client.destroy();
  });

  it('keeps objects under its prefix and lists keys relative to it', async () => {
    const prefix = `node-${randomUUID().slice(0, 8)}`;
    const store = new S3ObjectStore({ ...server, bucket: 'flame-hub', prefix });
    const other = new S3ObjectStore({ ...server, bucket: 'flame-hub', prefix: `${prefix}-other/` });
    await store.put('r/1', Buffer.from('a'));
    await other.put('r/1', Buffer.from('b'));
    const raw = await store.client.send(new ListObjectsV2Command({ Bucket: 'flame-hub', Prefix: `${prefix}/` }));
    expect(raw.Contents?.map((c) => c.Key)).toEqual([`${prefix}/r/1`]);
    expect((await store.list('')).map((i) => i.key)).toEqual(['r/1']);
    expect(Buffer.from(await other.getBytes('r/1')).toString()).toBe('b');
    await store.delete('r/1');
    await other.delete('r/1');
    store.client.destroy();
    other.client.destroy();
  });

  it('lists past one page of results (pagination)', async () => {
    const prefix = `many-${randomUUID().slice(0, 8)}`;
    const store = new S3ObjectStore({ ...server, bucket: 'flame-hub', prefix });
    const keys = Array.from({ length: 1005 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from('x'))));
    const listed = await store.list('k/');
    expect(listed.length).toBe(1005);
    expect(listed[1004].key).toBe('k/1004');
    store.client.destroy();
  }, 60_000);

  it('maps wrong credentials to UnauthorizedError naming the key', async () => {
    // s3rver checks the access key id but not SigV4 signatures: an unknown id stands in for bad credentials
    const store = new S3ObjectStore({ ...server, bucket: 'flame-hub', accessKeyId: 'NOBODY' });
    await expect(store.put('secret/r1', Buffer.from('x'))).rejects.toThrow(UnauthorizedError);
    await expect(store.getBytes('secret/r1')).rejects.toThrow(/secret\/r1/);
    store.client.destroy();
  });

  it('reports a missing bucket as NotFoundError naming bucket and key', async () => {
    const store = new S3ObjectStore({ ...server, bucket: 'no-such-bucket' });
    await expect(store.getBytes('r/1')).rejects.toThrow(NotFoundError);
    await expect(store.getBytes('r/1')).rejects.toThrow(/no-such-bucket.*r\/1|r\/1.*no-such-bucket/);
    // HEAD responses have no body, so a missing bucket looks like a missing key there
    expect(await store.head('r/1')).toBeUndefined();
    await expect(store.put('r/1', Readable.from([Buffer.from('x')]))).rejects.toThrow(NotFoundError);
    store.client.destroy();
  });

  it('validates its options, naming the bad one', () => {
    expect(() => new S3ObjectStore({ ...server, bucket: '' })).toThrow(BadRequestError);
    expect(() => new S3ObjectStore({ ...server, bucket: 'b', partSize: 1024 })).toThrow(/partSize/);
    expect(() => new S3ObjectStore({ ...server, bucket: 'b', prefix: '../up' })).toThrow(/\.\.\/up/);
    expect(() => makeS3Client({ region: 'r', bucket: 'b', accessKeyId: 'only-id' })).toThrow(/secretAccessKey/);
  });

  it('makeS3Client uses path-style addressing when an endpoint is given', async () => {
    const client = makeS3Client({ ...server, bucket: 'flame-hub' });
    expect(await client.config.forcePathStyle).toBe(true);
    const virtual = makeS3Client({ region: 'eu-central-1', bucket: 'flame-hub' });
    expect(await virtual.config.forcePathStyle).toBe(false);
    client.destroy();
    virtual.destroy();
  });
});

describe('makeS3Client with insecure: true', () => {
  it('talks to an HTTPS S3 server with a self-signed certificate, warning on stderr; refuses it otherwise', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-s3-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const server = new S3rver({
      port: 0,
      address: '127.0.0.1',
      directory: path.join(dir, 'data'),
      silent: true,
      key: await fs.readFile(path.join(dir, 'key.pem')),
      cert: await fs.readFile(path.join(dir, 'cert.pem')),
      configureBuckets: [{ name: 'tls', configs: [] }],
    });
    const { port } = (await server.run()) as { port: number };
    const conn = { endpoint: `https://127.0.0.1:${port}`, region: 'us-east-1', bucket: 'tls', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    const warnings: string[] = [];
    const write = process.stderr.write;
    // capture the warning (and let everything through): the module warns once per process
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      warnings.push(String(chunk));
      return write.call(process.stderr, chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      const insecure = new S3ObjectStore({ ...conn, insecure: true });
      await insecure.put('x', Buffer.from('over tls'));
      expect(Buffer.from(await insecure.getBytes('x')).toString()).toBe('over tls');
      expect(warnings.join('')).toMatch(/TLS certificate checks are OFF.*https:\/\/127\.0\.0\.1/);
      insecure.client.destroy();
      const strict = new S3ObjectStore({ ...conn, client: makeS3Client({ ...conn, insecure: false }) });
      await expect(strict.getBytes('x')).rejects.toThrow(/s3:\/\/tls\/x/);
      strict.client.destroy();
    } finally {
      process.stderr.write = write;
      await server.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
