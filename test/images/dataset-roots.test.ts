/**
 * readDatasetFile / locateDatasetFile: a path named by untrusted input is read only when it is an
 * image inside the operator's roots; every refusal names the path and its reason.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { datasetRoots, encodeIdx, locateDatasetFile, maxImageFileBytes, readDatasetFile, RefusedFileError, type DatasetRoots } from '../../src/images/index.js';
import { pixels8, rawImage, tempDir } from './helpers.js';

let dir: string;
let root: string;
let roots: DatasetRoots;
let cleanup: () => Promise<void>;

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A PNG whose header claims `w`×`h` grey pixels, with one tiny IDAT: a few hundred bytes. */
function claimedPng(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(w + 1))), chunk('IEND', Buffer.alloc(0))]);
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('flame-roots-'));
  root = join(dir, 'data');
  await mkdir(join(root, 'cat'), { recursive: true });
  await mkdir(join(dir, 'outside'));
  await rawImage(pixels8(6, 4, 1, (x, y) => x * 40 + y), 6, 4, 1).png().toFile(join(root, 'cat', 'ok.png'));
  await rawImage(pixels8(6, 4, 3, (x, y, c) => x * 40 + y + c), 6, 4, 3).png().toFile(join(dir, 'outside', 'other.png'));
  await writeFile(join(dir, 'outside', 'secret.key'), 'PRIVATE\n');
  await symlink(join(dir, 'outside', 'other.png'), join(root, 'cat', 'link.png'));
  await symlink(join(dir, 'outside'), join(root, 'cat', 'linkdir'));
  await writeFile(join(root, 'cat', 'text.png'), 'not an image at all');
  const ok = await readFile(join(root, 'cat', 'ok.png'));
  await writeFile(join(root, 'cat', 'cut.png'), ok.subarray(0, ok.length - 20));
  await writeFile(join(root, 'cat', 'huge.png'), claimedPng(30_000, 30_000));
  await writeFile(join(root, 'cat', 'padded.png'), Buffer.concat([claimedPng(8, 8), Buffer.alloc(2 * 1024 * 1024)]));
  await writeFile(join(root, 'images.idx'), encodeIdx([2, 4, 3], new Uint8Array(24).map((_, i) => i)));
  await writeFile(join(dir, 'outside', 'images.idx'), encodeIdx([1, 4, 3], new Uint8Array(12)));
  execFileSync('mkfifo', [join(root, 'cat', 'pipe.png')]);
  roots = await datasetRoots([root]);
});
afterAll(() => cleanup());

async function refusal(key: string, options = {}): Promise<{ reason: string; message: string }> {
  try {
    await readDatasetFile(roots, key, options);
  } catch (e) {
    if (e instanceof RefusedFileError) return { reason: e.reason, message: e.message };
    throw e;
  }
  throw new Error(`${key} was read`);
}

describe('readDatasetFile', () => {
  it('reads an image inside a root: the bytes of the file, its format and size', async () => {
    const got = await readDatasetFile(roots, join(root, 'cat', 'ok.png'));
    expect(got).toMatchObject({ kind: 'file', format: 'png', width: 6, height: 4 });
    expect(got.kind === 'file' && got.bytes.equals(await readFile(join(root, 'cat', 'ok.png')))).toBe(true);
    // relative paths are resolved from `base`
    expect(await readDatasetFile(roots, 'cat/ok.png', { base: root })).toMatchObject({ kind: 'file', width: 6 });
  });

  it('refuses paths outside the roots: absolute, ../, a linked file, a linked folder', async () => {
    for (const key of [join(dir, 'outside', 'other.png'), `${root}/../outside/other.png`, '../outside/secret.key', join(root, 'cat', 'link.png'), join(root, 'cat', 'linkdir', 'secret.key')]) {
      const r = await refusal(key, { base: root });
      expect({ key, ...r }).toEqual({ key, reason: 'outside_roots', message: expect.stringContaining(`File ${key} refused: outside the dataset roots`) });
    }
    expect((await refusal(join(root, 'cat', 'link.png'))).message).toContain(`resolves to ${join(dir, 'outside', 'other.png')}`);
    // no roots: nothing is read
    await expect(readDatasetFile(await datasetRoots([]), join(root, 'cat', 'ok.png'))).rejects.toThrow(/outside the dataset roots \(roots: none given\)/);
  });

  it('refuses what is not a regular file, without opening it (a pipe would block)', async () => {
    const t0 = Date.now();
    expect(await refusal(join(root, 'cat', 'pipe.png'))).toMatchObject({ reason: 'not_a_file' });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await refusal(join(root, 'cat'))).toMatchObject({ reason: 'not_a_file', message: expect.stringContaining('a folder') });
  });

  it('refuses non-images: no signature, a truncated image', async () => {
    expect(await refusal(join(root, 'cat', 'text.png'))).toMatchObject({ reason: 'not_an_image', message: expect.stringContaining('no PNG, JPEG') });
    expect(await refusal(join(root, 'cat', 'cut.png'))).toMatchObject({ reason: 'not_an_image' });
  });

  it('checks the pixel cap from the header before decoding, and the file size before reading it all', async () => {
    const t0 = Date.now();
    const huge = await refusal(join(root, 'cat', 'huge.png'));
    const ms = Date.now() - t0;
    process.stdout.write(`30000×30000 header refused in ${ms} ms\n`);
    expect(huge).toEqual({ reason: 'over_pixel_cap', message: expect.stringContaining('900000000 pixels is over the limit of 25000000 (maxImagePixels; raise it with --max-image-pixels or FLAME_MAX_IMAGE_PIXELS)') });
    expect(ms).toBeLessThan(10_000);
    expect(await refusal(join(root, 'cat', 'ok.png'), { limits: { maxImagePixels: 20 } })).toMatchObject({ reason: 'over_pixel_cap', message: expect.stringContaining('6×4 image: 24 pixels is over the limit of 20') });
    expect(maxImageFileBytes(100)).toBe(100 * 8 + 1024 * 1024);
    expect(await refusal(join(root, 'cat', 'padded.png'), { limits: { maxImagePixels: 100 } })).toMatchObject({ reason: 'over_pixel_cap', message: expect.stringContaining(`larger than an image of 100 pixels can be (${maxImageFileBytes(100)} bytes; maxImagePixels`) });
  });

  it('reads IDX virtual paths inside a root; refuses one outside; a missing file or image is NotFound', async () => {
    const got = await readDatasetFile(roots, `${join(root, 'images.idx')}#1`);
    expect(got).toMatchObject({ kind: 'idx', index: 1, width: 3, height: 4 });
    expect(got.kind === 'idx' && [...got.pixels]).toEqual(Array.from({ length: 12 }, (_, i) => 12 + i));
    expect(await refusal(`${join(dir, 'outside', 'images.idx')}#0`)).toMatchObject({ reason: 'outside_roots', message: expect.stringContaining('outside/images.idx#0 refused') });
    expect(await refusal(`${join(root, 'images.idx')}#0`, { limits: { maxImagePixels: 11 } })).toMatchObject({ reason: 'over_pixel_cap' });
    await expect(readDatasetFile(roots, `${join(root, 'images.idx')}#2`)).rejects.toThrow(NotFoundError);
    await expect(readDatasetFile(roots, join(root, 'cat', 'gone.png'))).rejects.toThrow(new NotFoundError(`File ${join(root, 'cat', 'gone.png')} does not exist`));
    expect(await locateDatasetFile(roots, `${join(root, 'images.idx')}#0`)).toEqual({ kind: 'idx', file: join(roots.dirs[0], 'images.idx'), index: 0 });
  });
});

describe('datasetRoots', () => {
  it('resolves the operator folders; a missing one or a file is an error naming it', async () => {
    expect((await datasetRoots([root, `${root}/cat/..`])).dirs).toEqual([roots.dirs[0]]);
    await expect(datasetRoots([join(dir, 'nope')], '--root')).rejects.toThrow(new NotFoundError(`--root ${join(dir, 'nope')}: folder does not exist`));
    await expect(datasetRoots([join(root, 'cat', 'ok.png')], '--root')).rejects.toThrow(BadRequestError);
  });
});
