import { BadRequestError } from '../../src/errors.js';
import { imageStatsFromPixels } from '../../src/images/metadata.js';
import { emptySums, meanStd, mergeSums, pooledChannelCount, widenSums } from '../../src/images/pooling.js';
import type { ImageStats } from '../../src/images/types.js';
import { expectClose, naiveMeanStd, pixels16, pixels8 } from './helpers.js';

/** A small deterministic generator so the "random" images are the same every run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

interface TestImage {
  px: Uint8Array | Uint16Array;
  w: number;
  h: number;
  ch: 1 | 2 | 3 | 4;
  max: number;
}

function randomImages(count: number, layouts: (1 | 2 | 3 | 4)[], seed: number): TestImage[] {
  const rnd = lcg(seed);
  return Array.from({ length: count }, (_, i) => {
    const ch = layouts[i % layouts.length];
    const w = 3 + Math.floor(rnd() * 9);
    const h = 2 + Math.floor(rnd() * 7);
    const deep = rnd() < 0.3;
    const px = deep
      ? pixels16(w, h, ch, () => Math.floor(rnd() * 65536))
      : pixels8(w, h, ch, () => Math.floor(rnd() * 256));
    return { px, w, h, ch, max: deep ? 65535 : 255 };
  });
}

/**
 * Independently concatenate all pixels after converting each image to `channels` the way an image
 * library does (grey → R = G = B, missing alpha → opaque), on a 0–1 scale.
 */
function concatenated(images: TestImage[], channels: number): number[] {
  const out: number[] = [];
  const colourOut = channels >= 3 ? 3 : 1;
  const alphaOut = channels === 2 || channels === 4;
  for (const im of images) {
    const colourIn = im.ch >= 3 ? 3 : 1;
    const alphaIn = im.ch === 2 || im.ch === 4;
    for (let p = 0; p < im.w * im.h; p++) {
      const at = (c: number) => im.px[p * im.ch + c] / im.max;
      for (let c = 0; c < colourOut; c++) out.push(at(colourIn === 1 ? 0 : c));
      if (alphaOut) out.push(alphaIn ? at(im.ch - 1) : 1);
    }
  }
  return out;
}

const statsOf = (images: TestImage[]): ImageStats[] => images.map((im) => imageStatsFromPixels(im.px, im.w, im.h, im.ch, im.max));

describe('mergeSums', () => {
  test.each([
    [[3], 3],
    [[1], 1],
    [[1, 3], 3],
    [[1, 4], 4],
    [[2, 3], 4],
    [[1, 2], 2],
    [[4, 3, 2, 1], 4],
  ] as const)('layouts %j pool into %i channels equal to the concatenated, converted pixels', (layouts, channels) => {
    const images = randomImages(12, [...layouts], 7 + channels);
    const pooled = mergeSums(statsOf(images));
    expect(pooled.channels).toBe(channels);
    expect(pooled.pixel_count).toBe(images.reduce((n, im) => n + im.w * im.h, 0));
    const want = naiveMeanStd(concatenated(images, channels), channels, 1);
    const got = meanStd(pooled);
    expectClose(got.mean, want.mean, 12);
    expectClose(got.std_dev, want.std, 12);
  });

  test('merging per-node pools equals pooling everything at once (nodes send sums, not pixels)', () => {
    const images = randomImages(30, [1, 3, 4], 99);
    const all = statsOf(images);
    const nodes = [all.slice(0, 7), all.slice(7, 19), all.slice(19)].map((part) => mergeSums(part));
    const federated = mergeSums(nodes);
    const central = mergeSums(all);
    expect(federated.channels).toBe(central.channels);
    expect(federated.pixel_count).toBe(central.pixel_count);
    expectClose(federated.sum, central.sum, 9);
    expectClose(federated.sum_sq, central.sum_sq, 9);
    // Order does not matter either.
    expectClose(mergeSums([...nodes].reverse()).sum, central.sum, 9);
  });

  test('no images: empty sums, empty mean and std', () => {
    expect(mergeSums([])).toEqual(emptySums());
    expect(meanStd(mergeSums([emptySums()]))).toEqual({ mean: [], std_dev: [] });
  });

  test('a grey image widened to RGBA replicates grey and adds opaque alpha', () => {
    const s = imageStatsFromPixels(new Uint8Array([0, 51, 255, 102]), 2, 2, 1);
    const w = widenSums(s, 4);
    expect(w.sum).toEqual([s.sum[0], s.sum[0], s.sum[0], 4]);
    expect(w.sum_sq).toEqual([s.sum_sq[0], s.sum_sq[0], s.sum_sq[0], 4]);
    expect(pooledChannelCount(2, 3)).toBe(4);
  });

  test('malformed or narrowing sums are rejected with the reason', () => {
    expect(() => mergeSums([{ channels: 3, pixel_count: 4, sum: [1, 2], sum_sq: [1, 2, 3] }])).toThrow(BadRequestError);
    const rgb = imageStatsFromPixels(new Uint8Array(12), 2, 2, 3);
    expect(() => widenSums(rgb, 1)).toThrow(/narrow channel sums from 3 to 1/);
  });
});
