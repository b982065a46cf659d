/**
 * Starts a real S3 API server (s3rver) on a free loopback port with a temporary directory.
 * Tests talk to it over HTTP with the real AWS SDK.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface S3TestServer {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Buckets created at start. */
  buckets: string[];
  /** s3rver's data directory (objects, and `<bucket>/._S3rver_uploads` for open multipart uploads). */
  directory: string;
  close(): Promise<void>;
}

/**
 * @param buckets created at start
 * @param extend called with the server (and its data directory) before it listens, e.g. to add middleware
 */
export async function startS3Server(buckets: string[] = ['flame-hub'], extend?: (server: S3rver, directory: string) => void): Promise<S3TestServer> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-s3-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  extend?.(server, directory);
  const { port } = (await server.run()) as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    // s3rver's fixed development credentials
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    buckets,
    directory,
    async close() {
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
