import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import {
  getImageMetadata,
  getImageMetadataFromBuffer,
  imageStats,
  imageStatsFromBuffer,
  imageStatsFromPixels,
} from '../../src/images/metadata.js';
import { expectClose, naiveMeanStd, pixels16, pixels8, rawImage, tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

const W = 23;
const H = 17;
const gradient = (x: number, y: number, c: number) => (x * 11 + y * 7 + c * 60) % 256;

describe('getImageMetadata', () => {
  test('solid RGB PNG: exact mean, zero std, size and channels', async () => {
    const file = join(dir, 'solid.png');
    await sharp({ create: { width: 16, height: 8, channels: 3, background: { r: 51, g: 102, b: 204 } } })
      .png()
      .toFile(file);
    const meta = await getImageMetadata(file);
    expect(meta).toMatchObject({ channels: 3, width: 16, height: 8 });
    expectClose(meta.mean, [0.2, 0.4, 0.8], 12);
    expectClose(meta.std_dev, [0, 0, 0], 7);
  });

  test('half black, half white grey image: mean 0.5, std 0.5, one channel', async () => {
    const file = join(dir, 'halves.png');
    await rawImage(pixels8(10, 4, 1, (x) => (x < 5 ? 0 : 255)), 10, 4, 1).png().toFile(file);
    const meta = await getImageMetadata(file);
    expect(meta.channels).toBe(1);
    expectClose(meta.mean, [0.5], 12);
    expectClose(meta.std_dev, [0.5], 12);
  });

  test.each([1, 2, 3, 4] as const)('%i-channel 8-bit gradient PNG matches an independent computation', async (ch) => {
    const px = pixels8(W, H, ch, gradient);
    const file = join(dir, `gradient-${ch}.png`);
    await rawImage(px, W, H, ch).png().toFile(file);
    const meta = await getImageMetadata(file);
    const want = naiveMeanStd(px, ch, 255);
    expect(meta).toMatchObject({ channels: ch, width: W, height: H });
    expectClose(meta.mean, want.mean);
    expectClose(meta.std_dev, want.std);
  });

  test.each([1, 2, 3, 4] as const)('%i-channel 16-bit PNG is scaled by 65535', async (ch) => {
    const px = pixels16(W, H, ch, (x, y, c) => (x * 2711 + y * 977 + c * 13001) % 65536);
    const file = join(dir, `deep-${ch}.png`);
    await rawImage(px, W, H, ch).png().toFile(file);
    expect((await sharp(file).metadata()).depth).toBe('ushort');
    const meta = await getImageMetadata(file);
    const want = naiveMeanStd(px, ch, 65535);
    expect(meta.channels).toBe(ch);
    expectClose(meta.mean, want.mean);
    expectClose(meta.std_dev, want.std);
  });

  test.each([
    ['tiff', (s: Sharp) => s.tiff({ compression: 'lzw' })],
    ['webp', (s: Sharp) => s.webp({ lossless: true })],
  ] as const)('lossless %s gives the exact pixel statistics', async (ext, encode) => {
    const px = pixels8(W, H, 3, gradient);
    const file = join(dir, `gradient.${ext}`);
    await encode(rawImage(px, W, H, 3)).toFile(file);
    const meta = await getImageMetadata(file);
    const want = naiveMeanStd(px, 3, 255);
    expect(meta).toMatchObject({ channels: 3, width: W, height: H });
    expectClose(meta.mean, want.mean);
    expectClose(meta.std_dev, want.std);
  });

  test('GIF with a four-colour palette decodes to the exact colours', async () => {
    const colours = [
      [0, 0, 0],
      [255, 0, 0],
      [0, 128, 255],
      [250, 250, 250],
    ];
    const px = pixels8(W, H, 3, (x, y, c) => colours[(x + 2 * y) % 4][c]);
    const file = join(dir, 'four.gif');
    await rawImage(px, W, H, 3).gif().toFile(file);
    const meta = await getImageMetadata(file);
    // GIF decodes with an alpha channel in sharp; colour channels are what we check.
    expect(meta.width).toBe(W);
    const want = naiveMeanStd(px, 3, 255);
    expectClose(meta.mean.slice(0, 3), want.mean);
    expectClose(meta.std_dev.slice(0, 3), want.std);
  });

  test('lossy JPEG agrees with libvips statistics of the decoded image', async () => {
    const px = pixels8(64, 48, 3, gradient);
    const file = join(dir, 'gradient.jpg');
    await rawImage(px, 64, 48, 3).jpeg({ quality: 80 }).toFile(file);
    const meta = await getImageMetadata(file);
    const stats = await sharp(file).stats();
    const n = 64 * 48;
    expect(meta.channels).toBe(3);
    expectClose(meta.mean, stats.channels.map((c) => c.mean / 255));
    // libvips reports the sample std (n − 1); ours is the population std.
    expectClose(meta.std_dev, stats.channels.map((c) => (c.stdev / 255) * Math.sqrt((n - 1) / n)));
  });

  test('16-bit values below one 8-bit step are not lost', async () => {
    // 8-bit decoding would turn every sample (< 129) into 0.
    const px = pixels16(8, 8, 1, (x, y) => 1 + x * 8 + y);
    const file = join(dir, 'faint16.png');
    await rawImage(px, 8, 8, 1).png().toFile(file);
    const meta = await getImageMetadata(file);
    expect(meta.mean[0]).toBeGreaterThan(0);
    expectClose(meta.mean, naiveMeanStd(px, 1, 65535).mean, 12);
  });

  test('bytes give the same metadata as the file', async () => {
    const file = join(dir, 'gradient-3.png');
    const fromBytes = await getImageMetadataFromBuffer(await readFile(file), 's3://bucket/gradient-3.png');
    expect(fromBytes).toEqual(await getImageMetadata(file));
  });
});

describe('imageStats', () => {
  test('sums are on a 0–1 scale and count pixels', async () => {
    const px = pixels8(W, H, 3, gradient);
    const stats = await imageStats(join(dir, 'gradient-3.png'));
    expect(stats).toMatchObject({ width: W, height: H, channels: 3, pixel_count: W * H });
    for (let c = 0; c < 3; c++) {
      let s = 0;
      let q = 0;
      for (let i = c; i < px.length; i += 3) {
        s += px[i] / 255;
        q += (px[i] / 255) ** 2;
      }
      expect(stats.sum[c]).toBeCloseTo(s, 9);
      expect(stats.sum_sq[c]).toBeCloseTo(q, 9);
    }
    expect(await imageStatsFromBuffer(await readFile(join(dir, 'gradient-3.png')), 'x.png')).toEqual(stats);
  });

  test('large 16-bit buffers stay exact beyond 2^53 / 65535² pixels', () => {
    const w = 2100;
    const h = 1100; // 2.3 M pixels of 65535: Σv² ≈ 9.9e15 > 2^53
    const px = new Uint16Array(w * h).fill(65535);
    const stats = imageStatsFromPixels(px, w, h, 1);
    expect(stats.sum[0]).toBe(w * h);
    expect(stats.sum_sq[0]).toBe(w * h);
  });

  test.each([1, 3, 4])('large 8-bit %i-channel buffers stay exact across int32 blocks', (ch) => {
    const w = 301;
    const h = 299; // 90k pixels: Σv² of 255s is 5.9e9, beyond int32 unless summed in blocks
    const px = new Uint8Array(w * h * ch).fill(255);
    px[ch * 40000] = 0; // one dark pixel in the second block, first channel
    const stats = imageStatsFromPixels(px, w, h, ch);
    expect(stats.sum[0]).toBe(w * h - 1);
    expect(stats.sum_sq[0]).toBe(w * h - 1);
    expect(stats.sum[ch - 1]).toBe(ch === 1 ? w * h - 1 : w * h);
  });

  test('a pixel buffer of the wrong length is rejected', () => {
    expect(() => imageStatsFromPixels(new Uint8Array(10), 2, 2, 3)).toThrow(/10 samples; 2x2x3 needs 12/);
  });
});

describe('bad input names the file', () => {
  test('missing file → NotFoundError', async () => {
    const file = join(dir, 'nope.png');
    const err = await getImageMetadata(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(file);
  });

  test.each([
    ['empty.png', Buffer.alloc(0), /empty/],
    ['notes.png', Buffer.from('these are notes, not pixels\n'), /not an image/],
  ])('%s → BadRequestError', async (name, bytes, why) => {
    const file = join(dir, name);
    await writeFile(file, bytes);
    const err = await imageStats(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toMatch(why);
  });

  test.each(['png', 'jpeg', 'webp', 'gif', 'tiff'] as const)('truncated %s → BadRequestError', async (fmt) => {
    const whole = await rawImage(pixels8(64, 64, 3, gradient), 64, 64, 3).toFormat(fmt).toBuffer();
    const file = join(dir, `cut.${fmt}`);
    await writeFile(file, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const err = await imageStats(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain(file);
  });

  test('corrupt bytes in the middle of a PNG → BadRequestError', async () => {
    const whole = await rawImage(pixels8(64, 64, 3, gradient), 64, 64, 3).png().toBuffer();
    const bad = Buffer.from(whole);
    for (let i = 60; i < bad.length - 20; i += 7) bad[i] ^= 0x5a;
    const file = join(dir, 'garbled.png');
    await writeFile(file, bad);
    await expect(imageStats(file)).rejects.toThrow(BadRequestError);
  });

  test('a directory → BadRequestError', async () => {
    const sub = join(dir, 'folder.png');
    await mkdir(sub, { recursive: true });
    await expect(imageStats(sub)).rejects.toThrow(/folder\.png is a directory/);
  });

  test('empty or garbage bytes name the given source', async () => {
    await expect(imageStatsFromBuffer(new Uint8Array(0), 'Media/42')).rejects.toThrow(/Media\/42 is empty/);
    await expect(imageStatsFromBuffer(Buffer.from('nope'), 's3://b/k.png')).rejects.toThrow(/s3:\/\/b\/k\.png/);
  });
});
