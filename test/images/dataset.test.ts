import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FhirClient } from '../../src/data/fhir.js';
import { FolderDataClient } from '../../src/data/folder.js';
import { S3DataClient } from '../../src/data/s3.js';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { datasetFromFhir, datasetFromFiles, datasetFromFolder, type DatasetBuild } from '../../src/images/dataset.js';
import { getImageMetadata } from '../../src/images/metadata.js';
import { fileUuid, uuidV5 } from '../../src/images/uuid.js';
import { startFhirServer, type FhirTestServer } from '../helpers/fhir-server.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { expectClose, naiveMeanStd, pixels8, rawImage, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
/** Pixels of every good image written, by path relative to the dataset root. */
const written = new Map<string, { px: Uint8Array; ch: 1 | 3 }>();
let corrupt: Buffer;

async function image(rel: string, w: number, h: number, ch: 1 | 3, seed: number): Promise<void> {
  const px = pixels8(w, h, ch, (x, y, c) => (x * (seed + 3) + y * 17 + c * 90 + seed * 29) % 256);
  await mkdir(join(dir, 'ds', rel, '..'), { recursive: true });
  await rawImage(px, w, h, ch).png().toFile(join(dir, 'ds', rel));
  written.set(rel, { px, ch });
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await image('cat/1.png', 8, 6, 3, 1);
  await image('cat/2.png', 5, 5, 3, 2);
  await image('cat/sub/3.png', 7, 3, 1, 3); // nested, grey
  await image('dog/4.png', 9, 4, 3, 4);
  await image('dog/5.png', 4, 4, 3, 5);
  await mkdir(join(dir, 'ds', 'bird'), { recursive: true }); // an empty class
  const whole = await readFile(join(dir, 'ds', 'dog/4.png'));
  corrupt = whole.subarray(0, Math.floor(whole.length / 2));
  await writeFile(join(dir, 'ds', 'dog', 'broken.png'), corrupt);
  await writeFile(join(dir, 'ds', 'dog', 'README.txt'), 'not an image, not a png name');
  await writeFile(join(dir, 'ds', 'dog', '.DS_Store'), 'hidden');
  await writeFile(join(dir, 'ds', 'stray.png'), corrupt); // not in a class folder
});
afterAll(() => cleanup());

/** Independent expectation: every good image converted to RGB, pixels concatenated. */
function expectedPooled(): { mean: number[]; std: number[] } {
  const all: number[] = [];
  for (const { px, ch } of written.values()) {
    for (let i = 0; i < px.length; i += ch) for (let c = 0; c < 3; c++) all.push(px[i + (ch === 1 ? 0 : c)]);
  }
  return naiveMeanStd(all, 3, 255);
}

function expectGoodFiles(build: DatasetBuild, pathOf: (rel: string) => string): void {
  const { dataset } = build;
  expect(dataset.classes).toEqual(expect.arrayContaining(['cat', 'dog']));
  for (const [rel, { px, ch }] of written) {
    const file = dataset.class_files[rel.split('/')[0]][pathOf(rel)];
    expect(file).toBeDefined();
    expect(file.channels).toBe(ch);
    const want = naiveMeanStd(px, ch, 255);
    expectClose(file.mean, want.mean);
    expectClose(file.std_dev, want.std);
  }
  const pooled = expectedPooled();
  expectClose(dataset.mean, pooled.mean);
  expectClose(dataset.std_dev, pooled.std);
  expect(build.sums.pixel_count).toBe([...written.values()].reduce((n, w) => n + w.px.length / w.ch, 0));
}

describe('uuids', () => {
  test('uuidV5 matches the RFC 4122 reference (Python: uuid5(NAMESPACE_DNS, "python.org"))', () => {
    expect(uuidV5('python.org', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(fileUuid('/x/cat/1.png', 'node-a')).toBe('91f3a11e-8b4a-5b5e-81b1-bf75ec4555ae');
    expect(fileUuid('/x/cat/1.png')).not.toBe(fileUuid('/x/cat/1.png', 'node-a'));
  });

  test('a namespace that is not a UUID is a bad request naming it', () => {
    expect(() => uuidV5('python.org', 'not-a-uuid')).toThrow(BadRequestError);
    expect(() => uuidV5('python.org', '6ba7b810-9dad-11d1-80b4-00c04fd430c')).toThrow('Namespace "6ba7b810-9dad-11d1-80b4-00c04fd430c" is not a UUID');
  });
});

describe('datasetFromFolder', () => {
  test('classes from sub-folders; a corrupt file is skipped and reported, every other file kept', async () => {
    const warnings: Array<Record<string, unknown> | undefined> = [];
    const progress: Array<[number, number]> = [];
    const build = await datasetFromFolder(join(dir, 'ds'), {
      concurrency: 2,
      logger: { warn: (_msg, fields) => warnings.push(fields) },
      onProgress: (done, total) => progress.push([done, total]),
    });
    const root = join(dir, 'ds');
    expect(build.dataset.classes).toEqual(['bird', 'cat', 'dog']);
    expect(build.dataset.class_files.bird).toEqual({});
    expect(Object.keys(build.dataset.class_files.cat)).toEqual([join(root, 'cat/1.png'), join(root, 'cat/2.png'), join(root, 'cat/sub/3.png')]);
    expectGoodFiles(build, (rel) => join(root, rel));
    const broken = join(root, 'dog', 'broken.png');
    expect(build.skipped).toHaveLength(1);
    expect(build.skipped[0].path).toBe(broken);
    expect(build.skipped[0].error).toContain(broken);
    expect(warnings).toEqual([{ path: broken, error: build.skipped[0].error }]);
    expect(progress).toHaveLength(6);
    expect(progress.at(-1)).toEqual([6, 6]);
    expect(build.dataset.class_files.cat[join(root, 'cat/1.png')].uuid).toBe(fileUuid(join(root, 'cat/1.png')));
  });

  test('reruns give identical datasets (same uuids, same order)', async () => {
    const quiet = { logger: { warn: () => undefined } };
    const a = await datasetFromFolder(join(dir, 'ds'), { ...quiet, concurrency: 1 });
    const b = await datasetFromFolder(join(dir, 'ds'), { ...quiet, concurrency: 8 });
    expect(JSON.stringify(b.dataset)).toBe(JSON.stringify(a.dataset));
  });

  test('a missing folder → NotFoundError naming it; a file → BadRequestError', async () => {
    await expect(datasetFromFolder(join(dir, 'nowhere'))).rejects.toThrow(NotFoundError);
    await expect(datasetFromFolder(join(dir, 'ds', 'stray.png'))).rejects.toThrow(/stray\.png is not a folder/);
  });
});

describe('datasetFromFiles', () => {
  test('a folder data source with class sub-folders below a prefix', async () => {
    const client = new FolderDataClient(dir);
    const build = await datasetFromFiles(client, { prefix: 'ds' }, { logger: { warn: () => undefined } });
    expect(build.dataset.classes).toEqual(['cat', 'dog']); // no empty folders in key listings
    expectGoodFiles(build, (rel) => `ds/${rel}`);
    expect(build.skipped.map((s) => s.path)).toEqual(['ds/dog/broken.png']);
  });

  describe('on S3', () => {
    const bucket = `images-${randomUUID().slice(0, 8)}`;
    let s3: S3TestServer;
    let writer: S3Client;
    let client: S3DataClient;

    beforeAll(async () => {
      s3 = await startS3Server([bucket]);
      writer = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      const put = (key: string, body: Buffer | string) => writer.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      for (const rel of written.keys()) await put(`hospital/train/${rel}`, await readFile(join(dir, 'ds', rel)));
      await put('hospital/train/dog/broken.png', corrupt);
      await put('hospital/train/labels.csv', 'a,b\n');
      await put('hospital/train-extra/cat/9.png', corrupt); // shares the text prefix, not the folder
      client = new S3DataClient({ bucket, prefix: 'hospital', endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
    });
    afterAll(async () => {
      client?.close();
      writer?.destroy();
      await s3?.close();
    });

    test('objects below prefix/<class>/ become the dataset; a corrupt object is skipped', async () => {
      const skippedLog: string[] = [];
      const build = await datasetFromFiles(client, { prefix: 'train' }, {
        uuidScope: 'node-a',
        logger: { warn: (_m, f) => skippedLog.push(String(f?.path)) },
      });
      expectGoodFiles(build, (rel) => `train/${rel}`);
      expect(build.skipped.map((s) => s.path)).toEqual(['train/dog/broken.png']);
      expect(build.skipped[0].error).toContain('train/dog/broken.png');
      expect(skippedLog).toEqual(['train/dog/broken.png']);
      expect(build.dataset.class_files.cat['train/cat/1.png'].uuid).toBe(fileUuid('train/cat/1.png', 'node-a'));
      // Same pixels, same metadata as the local file.
      const { uuid: _u, ...meta } = build.dataset.class_files.dog['train/dog/4.png'];
      expect(meta).toEqual(await getImageMetadata(join(dir, 'ds', 'dog/4.png')));
    });
  });
});

describe('datasetFromFhir', () => {
  let server: FhirTestServer;
  let client: FhirClient;
  beforeAll(async () => {
    server = await startFhirServer();
    client = new FhirClient({ baseUrl: server.baseUrl });
    const b64 = async (rel: string) => (await readFile(join(dir, 'ds', rel))).toString('base64');
    const media = (id: string, label: string | undefined, data: string) => ({
      resourceType: 'Media',
      id,
      status: 'completed',
      ...(label ? { type: { text: label } } : {}),
      content: { contentType: 'image/png', data },
    });
    await server.seed([
      media('m1', 'cat', await b64('cat/1.png')),
      media('m2', 'cat', await b64('cat/sub/3.png')),
      media('m3', 'dog', await b64('dog/4.png')),
      media('m4', undefined, await b64('dog/5.png')),
      media('m5', 'dog', corrupt.toString('base64')),
      { resourceType: 'Binary', id: 'b6', contentType: 'image/png', data: await b64('cat/2.png') },
      media('m6', 'cat', ''),
      {
        resourceType: 'DocumentReference',
        id: 'd1',
        status: 'current',
        type: { coding: [{ code: 'bird', display: 'Bird' }] },
        content: [{ attachment: { contentType: 'image/png', url: 'Binary/b6' } }],
      },
    ]);
    // m6 gets its image by url instead of inline data.
    await server.seed([{ ...media('m6', 'cat', ''), content: { contentType: 'image/png', url: 'Binary/b6' } }]);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  test('Media: label from type text, inline and url attachments; unlabelled and corrupt ones skipped', async () => {
    const progress: number[] = [];
    const build = await datasetFromFhir(client, {}, { logger: { warn: () => undefined }, onProgress: (d) => progress.push(d) });
    expect(build.dataset.classes).toEqual(['cat', 'dog']);
    expect(Object.keys(build.dataset.class_files.cat).sort()).toEqual(['Media/m1', 'Media/m2', 'Media/m6']);
    expect(Object.keys(build.dataset.class_files.dog)).toEqual(['Media/m3']);
    expect(build.skipped.map((s) => s.path)).toEqual(['Media/m4', 'Media/m5']);
    expect(build.skipped[0].error).toMatch(/Media\/m4 has no label/);
    expect(build.skipped[1].error).toContain('Media/m5');
    expect(progress.at(-1)).toBe(6);
    const { uuid: _u, ...m6 } = build.dataset.class_files.cat['Media/m6'];
    expect(m6).toEqual(await getImageMetadata(join(dir, 'ds', 'cat/2.png')));
  });

  test('DocumentReference: label from the type coding, image from content[].attachment', async () => {
    const build = await datasetFromFhir(client, { resourceType: 'DocumentReference' });
    expect(build.skipped).toEqual([]);
    expect(build.dataset.classes).toEqual(['Bird']);
    expect(Object.keys(build.dataset.class_files.Bird)).toEqual(['DocumentReference/d1']);
  });
});
