import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import { datasetFromIdx, parseIdxPath } from '../../src/images/dataset.js';
import { encodeIdx, parseIdx, readIdx, readIdxImageSet, writeIdx } from '../../src/images/idx.js';
import { getImageMetadata } from '../../src/images/metadata.js';
import { expectClose, naiveMeanStd, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

const COUNT = 6;
const ROWS = 3;
const COLS = 4;
const images = Uint8Array.from({ length: COUNT * ROWS * COLS }, (_, i) => (i * 37) % 256);
const labels = Uint8Array.from([2, 0, 1, 2, 2, 0]);

describe('IDX files', () => {
  test.each([false, true])('round trip of an images/labels pair (gzip %s)', async (gzip) => {
    const ip = join(dir, `img-${gzip}.idx`);
    const lp = join(dir, `lab-${gzip}.idx`);
    await writeIdx(ip, [COUNT, ROWS, COLS], images, { gzip });
    await writeIdx(lp, [COUNT], labels, { gzip });
    const set = await readIdxImageSet(ip, lp);
    expect(set).toMatchObject({ count: COUNT, rows: ROWS, cols: COLS });
    expect(Array.from(set.images)).toEqual(Array.from(images));
    expect(Array.from(set.labels)).toEqual(Array.from(labels));
  });

  test('the header is big-endian with magic 0x00000803 for 3-D ubyte', () => {
    const bytes = encodeIdx([COUNT, ROWS, COLS], images);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0, 0, 8, 3, 0, 0, 0, COUNT]);
    expect(bytes.length).toBe(16 + images.length);
  });

  test('wider element types are read big-endian', () => {
    const make = (type: number, size: number, write: (v: DataView, at: number, x: number) => void, xs: number[]) => {
      const b = new Uint8Array(8 + size * xs.length);
      const v = new DataView(b.buffer);
      b[2] = type;
      b[3] = 1;
      v.setUint32(4, xs.length);
      xs.forEach((x, i) => write(v, 8 + size * i, x));
      return b;
    };
    expect(Array.from(parseIdx(make(0x0b, 2, (v, a, x) => v.setInt16(a, x), [-2, 300]), 's').data)).toEqual([-2, 300]);
    expect(Array.from(parseIdx(make(0x0c, 4, (v, a, x) => v.setInt32(a, x), [-70000, 5]), 'i').data)).toEqual([-70000, 5]);
    expect(Array.from(parseIdx(make(0x0d, 4, (v, a, x) => v.setFloat32(a, x), [1.5, -0.25]), 'f').data)).toEqual([1.5, -0.25]);
    expect(Array.from(parseIdx(make(0x0e, 8, (v, a, x) => v.setFloat64(a, x), [Math.PI]), 'd').data)).toEqual([Math.PI]);
    expect(Array.from(parseIdx(make(0x09, 1, (v, a, x) => v.setInt8(a, x), [-5]), 'b').data)).toEqual([-5]);
  });

  test.each([
    ['bad magic', Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 1, 7]), /bad magic/],
    ['unknown type', Uint8Array.from([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), /unknown element type 0x42/],
    ['too short', Uint8Array.from([0, 0]), /too short/],
    ['truncated header', Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), /truncated inside its header/],
    ['truncated data', Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 7]), /truncated: dims 3 of ubyte need 11 bytes, found 9/],
    ['trailing bytes', Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 1, 7, 7]), /longer than its header says/],
  ])('%s → BadRequestError naming the file', async (_what, bytes, why) => {
    const file = join(dir, `bad-${_what.replace(/ /g, '-')}.idx`);
    await writeFile(file, bytes);
    const err = await readIdx(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(why);
  });

  test('missing file → NotFoundError; corrupt gzip → BadRequestError', async () => {
    await expect(readIdx(join(dir, 'absent.idx'))).rejects.toThrow(NotFoundError);
    const gz = gzipSync(Buffer.from(encodeIdx([2], Uint8Array.from([1, 2]))));
    const file = join(dir, 'cut.idx.gz');
    await writeFile(file, gz.subarray(0, gz.length - 6));
    await expect(readIdx(file)).rejects.toThrow(/cut\.idx\.gz is a corrupt gzip stream/);
  });

  test('a pair that does not match is refused naming the file', async () => {
    const ip = join(dir, 'pair-img.idx');
    await writeIdx(ip, [COUNT, ROWS, COLS], images);
    const short = join(dir, 'pair-short.idx');
    await writeIdx(short, [COUNT - 1], labels.subarray(1));
    await expect(readIdxImageSet(ip, short)).rejects.toThrow(/pair-short\.idx has 5 labels but .*pair-img\.idx has 6 images/);
    const flat = join(dir, 'pair-flat.idx');
    await writeIdx(flat, [COUNT * ROWS * COLS], images);
    await expect(readIdxImageSet(flat, short)).rejects.toThrow(/pair-flat\.idx must hold 3-D ubyte/);
  });
});

describe('datasetFromIdx', () => {
  let ip: string;
  let lp: string;
  beforeAll(async () => {
    ip = join(dir, 'ds-images.idx.gz');
    lp = join(dir, 'ds-labels.idx.gz');
    await writeIdx(ip, [COUNT, ROWS, COLS], images, { gzip: true });
    await writeIdx(lp, [COUNT], labels, { gzip: true });
  });

  test('virtual paths file#index, named classes in label order, per-image metadata', async () => {
    const names = ['zero', 'one', 'two', 'three'];
    const { dataset, skipped } = await datasetFromIdx({ images: ip, labels: lp, classNames: names });
    expect(skipped).toEqual([]);
    expect(dataset.classes).toEqual(names);
    expect(Object.keys(dataset.class_files.three)).toEqual([]);
    expect(Object.keys(dataset.class_files.two).sort()).toEqual([`${ip}#0`, `${ip}#3`, `${ip}#4`].sort());
    const size = ROWS * COLS;
    const file = dataset.class_files.zero[`${ip}#5`];
    const px = images.subarray(5 * size, 6 * size);
    expect(file).toMatchObject({ width: COLS, height: ROWS, channels: 1 });
    const want = naiveMeanStd(px, 1, 255);
    expectClose(file.mean, want.mean, 12);
    expectClose(file.std_dev, want.std, 12);
    expectClose(dataset.mean, naiveMeanStd(images, 1, 255).mean, 12);
    expectClose(dataset.std_dev, naiveMeanStd(images, 1, 255).std, 12);
    expect(parseIdxPath(`${ip}#5`)).toEqual({ file: ip, index: 5 });
    expect(parseIdxPath('/a/b.png')).toBeUndefined();
  });

  test('without names the classes are the label values; ids are stable across runs', async () => {
    const a = await datasetFromIdx({ images: ip, labels: lp });
    const b = await datasetFromIdx({ images: ip, labels: lp });
    expect(a.dataset.classes).toEqual(['0', '1', '2']);
    expect(b.dataset).toEqual(a.dataset);
    const uuids = Object.values(a.dataset.class_files).flatMap((f) => Object.values(f).map((x) => x.uuid));
    expect(new Set(uuids).size).toBe(COUNT);
  });

  test('a label without a class name is skipped and reported; the others are kept', async () => {
    const warnings: string[] = [];
    const { dataset, skipped } = await datasetFromIdx(
      { images: ip, labels: lp, classNames: ['zero', 'one'] },
      { logger: { warn: (_m, f) => warnings.push(String(f?.path)) } },
    );
    expect(skipped.map((s) => s.path).sort()).toEqual([`${ip}#0`, `${ip}#3`, `${ip}#4`].sort());
    expect(skipped[0].error).toMatch(/label 2, which has no class name \(2 given\)/);
    expect(warnings.sort()).toEqual(skipped.map((s) => s.path).sort());
    expect(dataset.classes).toEqual(['zero', 'one']);
    expect(Object.keys(dataset.class_files.zero)).toHaveLength(2);
  });

  test('outDir writes PNGs keyed by their paths, with the same metadata as the bytes', async () => {
    const out = join(dir, 'pngs');
    const names = ['T-shirt/top', 'one', 'two'];
    const virtual = await datasetFromIdx({ images: ip, labels: lp, classNames: names });
    const { dataset } = await datasetFromIdx({ images: ip, labels: lp, classNames: names, outDir: out });
    const path = join(out, 'T-shirt-top', '1.png');
    expect(Object.keys(dataset.class_files['T-shirt/top'])).toContain(path);
    const meta = await getImageMetadata(path);
    const { uuid: _u, ...fromBytes } = virtual.dataset.class_files['T-shirt/top'][`${ip}#1`];
    expect(meta).toEqual(fromBytes);
    expect((await readFile(path)).subarray(1, 4).toString()).toBe('PNG');
  });
});
