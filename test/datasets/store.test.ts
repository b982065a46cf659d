/**
 * Datasets against an S3 API server over HTTP: resumable upload (interrupt, resume, no part sent
 * twice, byte-identical result), progress from S3's own multipart state, list/get/delete, errors.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { resolveConfig } from '../../src/config.js';
import { planDataset } from '../../src/datasets/sources.js';
import { DatasetStore } from '../../src/datasets/store.js';
import { findUploads, MIN_PART_SIZE, UploadInterruptedError } from '../../src/datasets/multipart.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/errors.js';
import { startMultipartS3Server } from '../helpers/s3server-multipart.js';
import type { S3TestServer } from '../helpers/s3server.js';

let s3: S3TestServer;
let tmp: string;
let store: DatasetStore;
/** Commands the store's client sent, by name (counted by a middleware on the real client). */
let sent: string[];

function env(): NodeJS.ProcessEnv {
  return {
    FLAME_HUB_S3_ENDPOINT: s3.endpoint,
    FLAME_HUB_S3_BUCKET: 'flame-hub',
    FLAME_HUB_S3_ACCESS_KEY_ID: s3.accessKeyId,
    FLAME_HUB_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    FLAME_HUB_S3_PREFIX: 'hub',
  };
}

async function download(client: S3Client, key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: 'flame-hub', Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function keysUnder(client: S3Client, prefix: string): Promise<string[]> {
  const res = await client.send(new ListObjectsCommand({ Bucket: 'flame-hub', Prefix: prefix }));
  return (res.Contents ?? []).map((c) => c.Key!).sort();
}

beforeAll(async () => {
  s3 = await startMultipartS3Server(['flame-hub']);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-datasets-'));
  store = DatasetStore.fromConfig(resolveConfig({}, env()));
  sent = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
});

afterAll(async () => {
  await s3.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('image folder upload', () => {
  let folder: string;
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    folder = path.join(tmp, 'images');
    // ~17.5 MiB in total: 4 parts of 5 MiB
    files['cat/a.png'] = randomBytes(6 * 1024 * 1024 + 123);
    files['cat/b.jpg'] = randomBytes(1000);
    files['dog/deeper/c.png'] = randomBytes(5 * 1024 * 1024 - 7);
    files['dog/d.jpeg'] = randomBytes(6 * 1024 * 1024);
    for (const [rel, bytes] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(folder, rel)), { recursive: true });
      await fs.writeFile(path.join(folder, rel), bytes);
    }
    await fs.writeFile(path.join(folder, 'cat', 'notes.txt'), 'not an image');
  });

  test('an interrupted upload resumes without resending stored parts, and the tar holds the exact files', async () => {
    const plan = await planDataset(folder);
    expect(plan.kind).toBe('image_folder');
    expect(plan.details).toMatchObject({ classes: { cat: 2, dog: 2 }, images: 4 });
    expect(plan.files[0].size).toBeGreaterThan(3 * MIN_PART_SIZE);

    const controller = new AbortController();
    const firstEvents: boolean[] = [];
    sent.length = 0;
    await expect(
      store.upload(plan, {
        name: 'pets',
        partSize: MIN_PART_SIZE,
        signal: controller.signal,
        onPart: (e) => {
          firstEvents.push(e.sent);
          if (e.partNumber === 2) controller.abort();
        },
      }),
    ).rejects.toBeInstanceOf(UploadInterruptedError);
    expect(firstEvents).toEqual([true, true]);
    expect(sent.filter((c) => c === 'UploadPartCommand')).toHaveLength(2);

    const [interrupted] = (await store.list()).filter((m) => m.name === 'pets');
    expect(interrupted.status).toBe('uploading');
    const mid = await store.progress(interrupted.id);
    expect(mid).toMatchObject({ status: 'uploading', parts_stored: 2, parts_total: 4, bytes_stored: 2 * MIN_PART_SIZE, complete: false });
    expect(mid.bytes_total).toBe(plan.files[0].size);

    // a new run plans the folder again and finds the open upload by name and fingerprint
    sent.length = 0;
    const again = await planDataset(folder);
    const result = await store.upload(again, { name: 'pets' });
    expect(result.resumed).toBe(true);
    expect(result.manifest.id).toBe(interrupted.id);
    expect(result.partsReused).toBe(2);
    expect(result.partsSent).toBe(2);
    expect(sent.filter((c) => c === 'UploadPartCommand')).toHaveLength(2);
    expect(sent.filter((c) => c === 'CreateMultipartUploadCommand')).toHaveLength(0);

    const done = await store.progress(interrupted.id);
    expect(done).toMatchObject({ status: 'complete', complete: true, parts_stored: 4, bytes_stored: done.bytes_total });
    expect(await findUploads(store.client, store.bucket, `hub/datasets/${interrupted.id}/images.tar`)).toEqual([]);

    // byte-identical: the stored object equals the archive packed locally, and unpacks to the files
    const stored = await download(store.client, `hub/datasets/${interrupted.id}/images.tar`);
    const local = Buffer.concat(await (await planDataset(folder)).files[0].open().toArray());
    expect(stored.equals(local)).toBe(true);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(result.manifest.files[0].sha256);
    const out = path.join(tmp, 'unpacked');
    await fs.mkdir(out);
    await fs.writeFile(path.join(tmp, 'stored.tar'), stored);
    execFileSync('tar', ['-xf', path.join(tmp, 'stored.tar'), '-C', out]);
    for (const [rel, bytes] of Object.entries(files)) {
      expect((await fs.readFile(path.join(out, rel))).equals(bytes)).toBe(true);
    }
    await expect(fs.stat(path.join(out, 'cat', 'notes.txt'))).rejects.toThrow();

    const manifest = await store.get(interrupted.id);
    expect(manifest).toMatchObject({ name: 'pets', kind: 'image_folder', status: 'complete', part_size: MIN_PART_SIZE });
    expect(manifest.files).toEqual([expect.objectContaining({ name: 'images.tar', role: 'images', format: 'tar', parts: 4 })]);

    // the name is now taken
    await expect(store.upload(again, { name: 'pets' })).rejects.toBeInstanceOf(ConflictError);
  });

  test('an unfinished upload of the same name from changed content is refused, not mixed', async () => {
    const plan = await planDataset(folder);
    const controller = new AbortController();
    controller.abort();
    await expect(store.upload(plan, { name: 'pets-2', partSize: MIN_PART_SIZE, signal: controller.signal })).rejects.toBeInstanceOf(
      UploadInterruptedError,
    );
    await fs.writeFile(path.join(folder, 'dog', 'new.png'), randomBytes(100));
    try {
      const changed = await planDataset(folder);
      await expect(store.upload(changed, { name: 'pets-2' })).rejects.toThrow(/different content.*flame datasets delete/);
      const [pending] = (await store.list()).filter((m) => m.name === 'pets-2');
      await store.delete(pending.id);
      const fresh = await store.upload(changed, { name: 'pets-2', partSize: MIN_PART_SIZE });
      expect(fresh.resumed).toBe(false);
      expect(fresh.manifest.details).toMatchObject({ images: 5 });
      await store.delete(fresh.manifest.id);
    } finally {
      await fs.rm(path.join(folder, 'dog', 'new.png'));
    }
  });
});

describe('IDX and CSV datasets, list, get, delete', () => {
  function idx(type: number, dims: number[], body: Buffer): Buffer {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head[2] = type;
    head[3] = dims.length;
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([head, body]);
  }

  test('upload, list, get, progress and delete', async () => {
    const images = idx(0x08, [3, 2, 2], randomBytes(12));
    const labels = idx(0x08, [3], Buffer.from([0, 1, 2]));
    await fs.writeFile(path.join(tmp, 'train-images'), images);
    await fs.writeFile(path.join(tmp, 'train-labels'), labels);
    await fs.writeFile(path.join(tmp, 'table.csv'), 'age,weight\n31,70\n45,82\n\n');

    const mnist = await store.upload(await planDataset(path.join(tmp, 'train-images'), { labels: path.join(tmp, 'train-labels') }), { name: 'mnist-mini' });
    expect(mnist.manifest).toMatchObject({ kind: 'idx', status: 'complete', details: { items: 3, item_shape: [2, 2], image_type: 'ubyte' } });
    expect(mnist.manifest.files.map((f) => [f.name, f.size])).toEqual([
      ['images.idx', images.length],
      ['labels.idx', labels.length],
    ]);
    expect((await download(store.client, `hub/datasets/${mnist.manifest.id}/labels.idx`)).equals(labels)).toBe(true);

    const csv = await store.upload(await planDataset(path.join(tmp, 'table.csv')), { name: 'table' });
    expect(csv.manifest).toMatchObject({ kind: 'csv', details: { columns: ['age', 'weight'], rows: 2 } });
    expect((await download(store.client, `hub/datasets/${csv.manifest.id}/data.csv`)).toString()).toBe('age,weight\n31,70\n45,82\n\n');
    expect(await store.progress(csv.manifest.id)).toMatchObject({ complete: true, parts_stored: 1, parts_total: 1 });

    const names = (await store.list()).map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['mnist-mini', 'table']));
    expect((await store.get(csv.manifest.id)).name).toBe('table');

    await store.delete(mnist.manifest.id);
    expect(await keysUnder(store.client, `hub/datasets/${mnist.manifest.id}/`)).toEqual([]);
    await expect(store.get(mnist.manifest.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(mnist.manifest.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.list()).map((m) => m.name)).not.toContain('mnist-mini');
  });

  test('bad input is named in the error', async () => {
    await expect(planDataset(path.join(tmp, 'nope'))).rejects.toThrow(NotFoundError);
    await expect(planDataset(path.join(tmp, 'nope'))).rejects.toThrow(/nope does not exist/);
    await fs.writeFile(path.join(tmp, 'lone-images'), idx(0x08, [2, 1], Buffer.from([1, 2])));
    await expect(planDataset(path.join(tmp, 'lone-images'))).rejects.toThrow(/--labels/);
    await fs.writeFile(path.join(tmp, 'three-labels'), idx(0x08, [3], Buffer.from([1, 2, 3])));
    await expect(planDataset(path.join(tmp, 'lone-images'), { labels: path.join(tmp, 'three-labels') })).rejects.toThrow(/2 items.*3 labels/);
    const flat = path.join(tmp, 'flat');
    await fs.mkdir(flat);
    await fs.writeFile(path.join(flat, 'x.png'), 'x');
    await expect(planDataset(flat)).rejects.toThrow(/not inside a class sub-folder/);
    await expect(store.get('../etc')).rejects.toBeInstanceOf(BadRequestError);
    await expect(store.progress('0c0ffee0-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.upload(await planDataset(path.join(tmp, 'table.csv')), { name: 'x', partSize: 1024 })).rejects.toThrow(/at least|>= 5242880/);
  });

  test('a hub without S3 is refused with the settings to set', () => {
    expect(() => DatasetStore.fromConfig(resolveConfig({}, {}))).toThrow(/FLAME_HUB_S3_ENDPOINT/);
  });
});
