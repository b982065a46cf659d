/** The FileDataClient conformance suite on both adapters: a local folder and an S3 prefix (s3rver). */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FolderDataClient } from '../../src/data/folder.js';
import { S3DataClient } from '../../src/data/s3.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { describeFileDataClientConformance } from './conformance.js';

describeFileDataClientConformance('local folder', async (files) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-files-'));
  for (const [key, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, key)), { recursive: true });
    await fs.writeFile(path.join(root, key), content);
  }
  return { client: new FolderDataClient(root), cleanup: () => fs.rm(root, { recursive: true, force: true }) };
});

let s3: S3TestServer | undefined;
afterAll(() => s3?.close());

describeFileDataClientConformance('S3 prefix', async (files) => {
  s3 = await startS3Server(['data-bucket']);
  const conn = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  const raw = new S3Client({ ...conn, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  // Objects outside the prefix must stay invisible.
  await raw.send(new PutObjectCommand({ Bucket: 'data-bucket', Key: 'other/hidden.png', Body: Buffer.from([0]) }));
  for (const [key, content] of Object.entries(files)) await raw.send(new PutObjectCommand({ Bucket: 'data-bucket', Key: `hospital-a/${key}`, Body: content }));
  raw.destroy();
  const client = new S3DataClient({ ...conn, bucket: 'data-bucket', prefix: 'hospital-a' });
  return { client, cleanup: async () => client.close() };
});
