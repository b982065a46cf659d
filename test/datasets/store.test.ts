/**
 * Datasets against an S3 API server over HTTP: resumable upload (interrupt, resume, nothing sent
 * twice, byte-identical result), progress, list/get/delete, errors. Every test runs against two
 * servers: plain s3rver from devDependencies, which has multipart upload but neither
 * ListMultipartUploads, ListParts nor AbortMultipartUpload (the upload records take their place),
 * and s3rver with those three added (test/helpers/s3server-multipart.ts), where S3's own listings
 * decide. A third server refuses multipart upload altogether: the upload goes in one PUT.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { resolveConfig } from '../../src/config.js';
import { FolderDataClient, S3DataClient } from '../../src/data/index.js';
import { planDataset } from '../../src/datasets/sources.js';
import { DatasetStore, parseUploadRecord } from '../../src/datasets/store.js';
import { findUploads, MIN_PART_SIZE, UploadInterruptedError } from '../../src/datasets/multipart.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../src/errors.js';
import { startMultipartS3Server } from '../helpers/s3server-multipart.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

const SERVERS: [string, () => Promise<S3TestServer>, boolean][] = [
  ['plain s3rver (no ListMultipartUploads, ListParts, AbortMultipartUpload)', () => startS3Server(['flame-hub']), false],
  ['s3rver with the multipart listings', () => startMultipartS3Server(['flame-hub']), true],
];

function envOf(s3: S3TestServer): NodeJS.ProcessEnv {
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

/** Open upload directories s3rver keeps on disk for the bucket. */
async function serverUploads(s3: S3TestServer): Promise<string[]> {
  return fs.readdir(path.join(s3.directory, 'flame-hub', '._S3rver_uploads')).catch(() => []);
}

/** `<command> <key>` of every request the store's client sent (counted by a middleware on the real client). */
function recordCommands(store: DatasetStore): string[] {
  const sent: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(`${String(context.commandName)} ${String((args.input as { Key?: string }).Key ?? '')}`);
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return sent;
}

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'flame-datasets-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe.each(SERVERS)('%s', (label, start, listsParts) => {
  let s3: S3TestServer;
  let store: DatasetStore;
  let sent: string[];
  let dir: string;
  const count = (command: string, keyPart = '') => sent.filter((c) => c.startsWith(`${command} `) && c.includes(keyPart)).length;
  /** Uploads `mib` MiB of random bytes as CSV dataset `name`, interrupted once its first part is stored. */
  async function interruptedUpload(name: string, mib: number): Promise<string> {
    const csv = path.join(dir, `${name}.csv`);
    await fs.writeFile(csv, randomBytes(mib * 1024 * 1024));
    const controller = new AbortController();
    await expect(
      store.upload(await planDataset(csv), { name, partSize: MIN_PART_SIZE, signal: controller.signal, onPart: () => controller.abort() }),
    ).rejects.toBeInstanceOf(UploadInterruptedError);
    return csv;
  }

  beforeAll(async () => {
    s3 = await start();
    store = DatasetStore.fromConfig(resolveConfig({}, envOf(s3)));
    sent = recordCommands(store);
    dir = await fs.mkdtemp(path.join(tmp, listsParts ? 'listing-' : 'plain-'));
  });
  afterAll(async () => {
    store.client.destroy();
    await s3.close();
  });

  test('a large object interrupted after one part resumes from the next, with no part sent twice', async () => {
    const csv = path.join(dir, 'big.csv');
    await fs.writeFile(csv, `value\n${randomBytes(11 * 1024 * 1024 / 2).toString('hex').match(/.{1,64}/g)!.join('\n')}\n`);
    const plan = await planDataset(csv);
    const controller = new AbortController();
    sent.length = 0;
    await expect(
      store.upload(plan, { name: 'big', partSize: MIN_PART_SIZE, signal: controller.signal, onPart: (e) => e.partNumber === 1 && controller.abort() }),
    ).rejects.toThrow(/interrupted after 1 of 3 parts/);
    expect(count('UploadPartCommand')).toBe(1);
    const [pending] = (await store.list()).filter((m) => m.name === 'big');
    expect(await store.progress(pending.id)).toMatchObject({ status: 'uploading', parts_stored: 1, parts_total: 3, bytes_stored: MIN_PART_SIZE, complete: false });

    sent.length = 0;
    const notices: string[] = [];
    const result = await store.upload(await planDataset(csv), { name: 'big', onNotice: (m) => notices.push(m) });
    expect(result).toMatchObject({ resumed: true, partsReused: 1, partsSent: 2 });
    expect(result.manifest.id).toBe(pending.id);
    expect(count('UploadPartCommand')).toBe(2);
    expect(count('CreateMultipartUploadCommand')).toBe(0);
    // only where the server cannot list parts is the record used, and the user told so
    if (listsParts) expect(notices).toEqual([]);
    else expect(notices).toEqual([expect.stringMatching(/does not implement ListParts: resuming s3:\/\/flame-hub\/hub\/datasets\/.*\/data\.csv from its upload record \(1 parts acknowledged\)/)]);

    const stored = await download(store.client, `hub/datasets/${pending.id}/data.csv`);
    expect(stored.equals(await fs.readFile(csv))).toBe(true);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(result.manifest.files[0].sha256);
    // the record is gone with the upload, and the server holds no open upload
    expect(await keysUnder(store.client, `hub/datasets/${pending.id}/uploads/`)).toEqual([]);
    expect(await serverUploads(s3)).toEqual([]);
    expect(await store.progress(pending.id)).toMatchObject({ complete: true, parts_stored: 3, bytes_stored: stored.length });
    await store.delete(pending.id);
  }, 60_000);

  test('an upload whose parts the server lost starts over and completes byte-identical', async () => {
    const csv = await interruptedUpload('lost', 7);
    const [upload] = await serverUploads(s3);
    expect(upload).toBeDefined();
    await fs.rm(path.join(s3.directory, 'flame-hub', '._S3rver_uploads', upload), { recursive: true });

    sent.length = 0;
    const notices: string[] = [];
    const result = await store.upload(await planDataset(csv), { name: 'lost', onNotice: (m) => notices.push(m) });
    expect(result.manifest.status).toBe('complete');
    expect((await download(store.client, `hub/datasets/${result.manifest.id}/data.csv`)).equals(await fs.readFile(csv))).toBe(true);
    if (listsParts) {
      // ListParts says the upload is gone: a new one, both parts sent once
      expect(count('UploadPartCommand')).toBe(2);
    } else {
      // the record's part is taken on trust, the completion fails, the upload starts over
      expect(notices).toEqual(expect.arrayContaining([expect.stringMatching(/refused the parts of its upload record.*uploading it again from the start/)]));
      expect(count('CreateMultipartUploadCommand')).toBe(1);
    }
    await store.delete(result.manifest.id);
  }, 60_000);

  describe('image folder', () => {
    let folder: string;
    const files: Record<string, Buffer> = {};

    beforeAll(async () => {
      folder = path.join(dir, 'images');
      // two images above the 5 MiB part size (multipart), the rest single objects
      files['cat/a.png'] = randomBytes(6 * 1024 * 1024 + 123);
      files['cat/b.jpg'] = randomBytes(1000);
      files['dog/deeper/c.png'] = randomBytes(5 * 1024 * 1024 - 7);
      files['dog/d.jpeg'] = randomBytes(6 * 1024 * 1024);
      for (let i = 0; i < 30; i++) files[`${i % 2 ? 'cat' : 'dog'}/small-${i}.png`] = randomBytes(100 + i);
      for (const [rel, bytes] of Object.entries(files)) {
        await fs.mkdir(path.dirname(path.join(folder, rel)), { recursive: true });
        await fs.writeFile(path.join(folder, rel), bytes);
      }
      await fs.writeFile(path.join(folder, 'cat', 'notes.txt'), 'not an image');
    });

    test('one object per image: an interrupted upload resumes, sends nothing twice, and the S3 data source reads what the folder holds', async () => {
      const plan = await planDataset(folder);
      expect(plan.kind).toBe('image_folder');
      expect(plan.details).toMatchObject({ classes: { cat: 17, dog: 17 }, images: 34 });

      const controller = new AbortController();
      let firstSent = 0;
      sent.length = 0;
      await expect(
        store.upload(plan, {
          name: 'pets',
          partSize: MIN_PART_SIZE,
          signal: controller.signal,
          onPart: (e) => {
            expect(e).toMatchObject({ file: 'images/', unit: 'objects', parts: 34 });
            if (e.sent) firstSent++;
            if (firstSent === 3) controller.abort();
          },
        }),
      ).rejects.toBeInstanceOf(UploadInterruptedError);
      const firstRun = [...sent];
      const [interrupted] = (await store.list()).filter((m) => m.name === 'pets');
      const mid = await store.progress(interrupted.id);
      expect(mid.status).toBe('uploading');
      expect(mid.parts_total).toBe(34);
      expect(mid.parts_stored).toBeGreaterThanOrEqual(3);
      expect(mid.parts_stored).toBeLessThan(34);

      sent.length = 0;
      const result = await store.upload(await planDataset(folder), { name: 'pets' });
      expect(result).toMatchObject({ resumed: true });
      expect(result.manifest.id).toBe(interrupted.id);
      expect(result.partsSent + result.partsReused).toBe(34);
      expect(result.partsReused).toBe(mid.parts_stored); // objects completed before the interruption (a big one cut mid-way is not listed)
      const both = [...firstRun, ...sent];
      const prefix = `hub/datasets/${interrupted.id}/images/`;
      // every small image PUT exactly once over both runs; the two big ones in 2 parts each, each part once
      for (const rel of Object.keys(files).filter((r) => files[r].length <= MIN_PART_SIZE)) {
        expect(both.filter((c) => c === `PutObjectCommand ${prefix}${rel}`)).toHaveLength(1);
      }
      expect(both.filter((c) => c.startsWith('UploadPartCommand ') && c.includes(prefix))).toHaveLength(4);

      expect(await keysUnder(store.client, prefix)).toEqual(Object.keys(files).map((r) => prefix + r).sort());
      const manifest = await store.get(interrupted.id);
      expect(manifest).toMatchObject({ name: 'pets', kind: 'image_folder', status: 'complete' });
      expect(manifest.files).toEqual([expect.objectContaining({ name: 'images/', role: 'images', format: 'objects', parts: 34 })]);
      expect(await store.progress(interrupted.id)).toMatchObject({ complete: true, parts_stored: 34, bytes_stored: manifest.size });

      // through the data API, the uploaded copy is the local folder: same keys, same bytes
      const source = store.imagesSource(manifest);
      expect(source).toMatchObject({ type: 's3', bucket: 'flame-hub', prefix: `hub/datasets/${interrupted.id}/images` });
      const remote = new S3DataClient(source as ConstructorParameters<typeof S3DataClient>[0]);
      const local = new FolderDataClient(folder);
      try {
        const remoteKeys = (await remote.list()).map((e) => [e.key, e.size]);
        const localKeys = (await local.list()).filter((e) => !e.key.endsWith('.txt')).map((e) => [e.key, e.size]);
        expect(remoteKeys).toEqual(localKeys);
        for (const [rel, bytes] of Object.entries(files)) expect(Buffer.from(await remote.getBytes(rel)).equals(bytes)).toBe(true);
      } finally {
        remote.close();
      }

      // the name is now taken; delete removes every object
      await expect(store.upload(plan, { name: 'pets' })).rejects.toBeInstanceOf(ConflictError);
      await store.delete(interrupted.id);
      expect(await keysUnder(store.client, `hub/datasets/${interrupted.id}/`)).toEqual([]);
    }, 90_000);

    test('an unfinished upload of the same name from changed content is refused, not mixed', async () => {
      const plan = await planDataset(folder);
      const controller = new AbortController();
      controller.abort();
      await expect(store.upload(plan, { name: 'pets-2', partSize: MIN_PART_SIZE, signal: controller.signal })).rejects.toBeInstanceOf(UploadInterruptedError);
      await fs.writeFile(path.join(folder, 'dog', 'new.png'), randomBytes(100));
      try {
        const changed = await planDataset(folder);
        await expect(store.upload(changed, { name: 'pets-2' })).rejects.toThrow(/different content.*flame datasets delete/);
        const [pending] = (await store.list()).filter((m) => m.name === 'pets-2');
        await store.delete(pending.id);
        const fresh = await store.upload(changed, { name: 'pets-2', partSize: MIN_PART_SIZE });
        expect(fresh.resumed).toBe(false);
        expect(fresh.manifest.details).toMatchObject({ images: 35 });
        await store.delete(fresh.manifest.id);
      } finally {
        await fs.rm(path.join(folder, 'dog', 'new.png'));
      }
    }, 60_000);
  });

  test('deleting an unfinished upload removes its objects and record; where S3 cannot abort, it says how many uploads stay', async () => {
    await interruptedUpload('cut', 6);
    const [pending] = (await store.list()).filter((m) => m.name === 'cut');
    expect(await keysUnder(store.client, `hub/datasets/${pending.id}/uploads/`)).toEqual([`hub/datasets/${pending.id}/uploads/data.csv.json`]);
    const deleted = await store.delete(pending.id);
    expect(await keysUnder(store.client, `hub/datasets/${pending.id}/`)).toEqual([]);
    if (listsParts) {
      expect(deleted.uploadsLeft).toBeUndefined();
      expect(await findUploads(store.client, store.bucket, `hub/datasets/${pending.id}/data.csv`)).toEqual([]);
      expect(await serverUploads(s3)).toEqual([]);
    } else {
      expect(deleted.uploadsLeft).toBe(1);
      expect(await findUploads(store.client, store.bucket, `hub/datasets/${pending.id}/data.csv`)).toBeUndefined();
    }
  }, 60_000);

  test(`IDX and CSV: upload, list, get, progress and delete (${label})`, async () => {
    function idx(type: number, dims: number[], body: Buffer): Buffer {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head[2] = type;
      head[3] = dims.length;
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([head, body]);
    }
    const images = idx(0x08, [3, 2, 2], randomBytes(12));
    const labels = idx(0x08, [3], Buffer.from([0, 1, 2]));
    await fs.writeFile(path.join(dir, 'train-images'), images);
    await fs.writeFile(path.join(dir, 'train-labels'), labels);
    await fs.writeFile(path.join(dir, 'table.csv'), 'age,weight\n31,70\n45,82\n\n');

    const mnist = await store.upload(await planDataset(path.join(dir, 'train-images'), { labels: path.join(dir, 'train-labels') }), { name: 'mnist-mini' });
    expect(mnist.manifest).toMatchObject({ kind: 'idx', status: 'complete', details: { items: 3, item_shape: [2, 2], image_type: 'ubyte' } });
    expect(mnist.manifest.files.map((f) => [f.name, f.size])).toEqual([
      ['images.idx', images.length],
      ['labels.idx', labels.length],
    ]);
    expect((await download(store.client, `hub/datasets/${mnist.manifest.id}/labels.idx`)).equals(labels)).toBe(true);
    expect(() => store.imagesSource(mnist.manifest)).toThrow(/is idx, not an image folder/);

    const csv = await store.upload(await planDataset(path.join(dir, 'table.csv')), { name: 'table' });
    expect(csv.manifest).toMatchObject({ kind: 'csv', details: { columns: ['age', 'weight'], rows: 2 } });
    expect((await download(store.client, `hub/datasets/${csv.manifest.id}/data.csv`)).toString()).toBe('age,weight\n31,70\n45,82\n\n');
    expect(await store.progress(csv.manifest.id)).toMatchObject({ complete: true, parts_stored: 1, parts_total: 1 });

    const names = (await store.list()).map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['mnist-mini', 'table']));
    expect((await store.get(csv.manifest.id)).name).toBe('table');
    // what the CLI takes: an id or a name
    expect((await store.find('table')).id).toBe(csv.manifest.id);
    expect((await store.find(csv.manifest.id)).name).toBe('table');
    await expect(store.find('no such dataset')).rejects.toThrow(/"no such dataset" not found \(no dataset has this id or name/);

    await store.delete(mnist.manifest.id);
    expect(await keysUnder(store.client, `hub/datasets/${mnist.manifest.id}/`)).toEqual([]);
    await expect(store.get(mnist.manifest.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.delete(mnist.manifest.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.list()).map((m) => m.name)).not.toContain('mnist-mini');
    await store.delete(csv.manifest.id);
  }, 60_000);

  test('bad input is named in the error', async () => {
    await expect(planDataset(path.join(dir, 'nope'))).rejects.toThrow(NotFoundError);
    await expect(planDataset(path.join(dir, 'nope'))).rejects.toThrow(/nope does not exist/);
    const idx1 = Buffer.from([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 1, 1, 2]);
    await fs.writeFile(path.join(dir, 'lone-images'), idx1);
    await expect(planDataset(path.join(dir, 'lone-images'))).rejects.toThrow(/--labels/);
    await fs.writeFile(path.join(dir, 'three-labels'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]));
    await expect(planDataset(path.join(dir, 'lone-images'), { labels: path.join(dir, 'three-labels') })).rejects.toThrow(/2 items.*3 labels/);
    const flat = path.join(dir, 'flat');
    await fs.mkdir(flat);
    await fs.writeFile(path.join(flat, 'x.png'), 'x');
    await expect(planDataset(flat)).rejects.toThrow(/not inside a class sub-folder/);
    const slashy = path.join(dir, 'slashy', 'cat');
    await fs.mkdir(slashy, { recursive: true });
    await fs.writeFile(path.join(slashy, 'a\\b.png'), 'x');
    await expect(planDataset(path.dirname(slashy))).rejects.toThrow(/cat\/a\\\\b\.png.*backslash/);
    await expect(store.get('../etc')).rejects.toBeInstanceOf(BadRequestError);
    await expect(store.progress('0c0ffee0-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await fs.writeFile(path.join(dir, 't.csv'), 'a\n1\n');
    await expect(store.upload(await planDataset(path.join(dir, 't.csv')), { name: 'x', partSize: 1024 })).rejects.toThrow(/at least|>= 5242880/);
    // a manifest from storage is read within a bound
    const huge = 'hub/datasets/huge-manifest/manifest.json';
    await store.client.send(new PutObjectCommand({ Bucket: 'flame-hub', Key: huge, Body: Buffer.alloc(2 * 1024 * 1024, 0x20) }));
    try {
      await expect(store.get('huge-manifest')).rejects.toThrow(/manifest\.json is 2097152 bytes, over the 1048576 a manifest may have/);
    } finally {
      await store.client.send(new DeleteObjectCommand({ Bucket: 'flame-hub', Key: huge }));
    }
  });
});

describe('an S3 API without multipart upload', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    // s3rver, refusing CreateMultipartUpload the way it refuses what it does not implement
    s3 = await startS3Server(['flame-hub'], (server) => {
      const internals = server as unknown as { middleware: ((ctx: { method: string; query: object; status: number; body: unknown }, next: () => Promise<void>) => Promise<void>)[] };
      internals.middleware.splice(internals.middleware.length - 1, 0, async (ctx, next) => {
        if (ctx.method === 'POST' && 'uploads' in ctx.query) {
          ctx.status = 501;
          ctx.body = { Error: { Code: 'NotImplemented', Message: 'A header you provided implies functionality that is not implemented' } };
          return;
        }
        return next();
      });
    });
  });
  afterAll(() => s3.close());

  test('gets the object in one PUT, saying that it cannot resume', async () => {
    const store = DatasetStore.fromConfig(resolveConfig({}, envOf(s3)));
    const csv = path.join(tmp, 'single.csv');
    await fs.writeFile(csv, randomBytes(11 * 1024 * 1024));
    const notices: string[] = [];
    const result = await store.upload(await planDataset(csv), { name: 'single', partSize: MIN_PART_SIZE, onNotice: (m) => notices.push(m) });
    expect(notices).toEqual([expect.stringMatching(/does not implement multipart upload: s3:\/\/flame-hub\/hub\/datasets\/.*\/data\.csv goes in one request, which cannot resume/)]);
    const stored = await download(store.client, `hub/datasets/${result.manifest.id}/data.csv`);
    expect(stored.equals(await fs.readFile(csv))).toBe(true);
    expect(result.manifest.files[0].sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    store.client.destroy();
  }, 60_000);
});

test('upload records read back from storage are checked, and anything malformed means starting over', () => {
  const good = { uploadId: 'u1', size: 6 * 1024 * 1024, partSize: MIN_PART_SIZE, parts: [{ partNumber: 1, size: MIN_PART_SIZE, etag: 'abc' }] };
  expect(parseUploadRecord(JSON.stringify(good))).toEqual(good);
  expect(parseUploadRecord('{not json')).toBeUndefined();
  expect(parseUploadRecord(JSON.stringify({ ...good, uploadId: '' }))).toBeUndefined();
  expect(parseUploadRecord(JSON.stringify({ ...good, partSize: 1024 }))).toBeUndefined();
  expect(parseUploadRecord(JSON.stringify({ ...good, parts: [{ partNumber: 0, size: 1, etag: 'x' }] }))).toBeUndefined();
  expect(parseUploadRecord(JSON.stringify({ ...good, parts: [{ partNumber: 1, size: MIN_PART_SIZE + 1, etag: 'x' }] }))).toBeUndefined();
  expect(parseUploadRecord(JSON.stringify({ ...good, parts: new Array(10001).fill(good.parts[0]) }))).toBeUndefined();
});

test('a hub without S3 is refused with the settings to set', () => {
  expect(() => DatasetStore.fromConfig(resolveConfig({}, {}))).toThrow(/FLAME_HUB_S3_ENDPOINT/);
});
