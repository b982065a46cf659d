/**
 * Image metadata (seed 000's `get_image_metadata`) and the per-image sums behind it: one raw decode
 * and one pass over the pixels. sharp's `.stats()` is not used: it computes far more than we need
 * and is several times slower on small images (see bench/images.ts).
 */
import { BadRequestError } from '../errors.js';
import { decodeImage, type ImageSource } from './decode.js';
import { meanStd } from './pooling.js';
import type { ImageMetadata, ImageStats } from './types.js';

// 16-bit squares reach 2^32, so exact integer sums of more than 2^21 of them would exceed 2^53:
// sum in blocks and add the (exact) block sums into the total.
const BLOCK_PIXELS = 1 << 16;

/**
 * Per-channel sums of interleaved pixels, scaled to 0–1 by `maxValue`. Sums are accumulated as exact
 * integers and divided once, so the result does not depend on pixel order.
 * @param pixels interleaved samples, `channels` per pixel
 */
export function imageStatsFromPixels(
  pixels: Uint8Array | Uint16Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: number,
  maxValue: number = pixels instanceof Uint16Array ? 65535 : 255,
): ImageStats {
  const n = width * height;
  if (!Number.isInteger(channels) || channels < 1 || channels > 4) {
    throw new BadRequestError(`Pixel buffer has ${channels} channels; expected 1 to 4`);
  }
  if (pixels.length !== n * channels) {
    throw new BadRequestError(
      `Pixel buffer has ${pixels.length} samples; ${width}x${height}x${channels} needs ${n * channels}`,
    );
  }
  const sum = new Array<number>(channels).fill(0);
  const sumSq = new Array<number>(channels).fill(0);
  for (let start = 0; start < n; start += BLOCK_PIXELS) {
    const end = Math.min(n, start + BLOCK_PIXELS) * channels;
    const from = start * channels;
    if (channels === 1) {
      let s = 0;
      let q = 0;
      for (let i = from; i < end; i++) {
        const v = pixels[i];
        s += v;
        q += v * v;
      }
      sum[0] += s;
      sumSq[0] += q;
    } else if (channels === 3) {
      let s0 = 0, s1 = 0, s2 = 0, q0 = 0, q1 = 0, q2 = 0; // prettier-ignore
      for (let i = from; i < end; i += 3) {
        const a = pixels[i];
        const b = pixels[i + 1];
        const c = pixels[i + 2];
        s0 += a;
        s1 += b;
        s2 += c;
        q0 += a * a;
        q1 += b * b;
        q2 += c * c;
      }
      sum[0] += s0;
      sum[1] += s1;
      sum[2] += s2;
      sumSq[0] += q0;
      sumSq[1] += q1;
      sumSq[2] += q2;
    } else {
      for (let c = 0; c < channels; c++) {
        let s = 0;
        let q = 0;
        for (let i = from + c; i < end; i += channels) {
          const v = pixels[i];
          s += v;
          q += v * v;
        }
        sum[c] += s;
        sumSq[c] += q;
      }
    }
  }
  const max2 = maxValue * maxValue;
  return {
    width,
    height,
    channels,
    pixel_count: n,
    sum: sum.map((s) => s / maxValue),
    sum_sq: sumSq.map((q) => q / max2),
  };
}

/**
 * Per-channel sums of the image at `path` (one raw decode).
 * @throws NotFoundError if the file is missing; BadRequestError if it is empty, not an image or corrupt.
 */
export async function imageStats(path: string): Promise<ImageStats> {
  const img = await decodeImage(path);
  return imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue);
}

/**
 * Per-channel sums of an encoded image held in memory (S3 objects, FHIR attachments).
 * @param name what error messages call the image (e.g. its key or resource reference)
 */
export async function imageStatsFromBuffer(bytes: Uint8Array, name: string): Promise<ImageStats> {
  const img = await decodeImage(bytes, name);
  return imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue);
}

/** Seed-000 metadata of an image from its sums. */
export function metadataFromStats(stats: ImageStats): ImageMetadata {
  const { mean, std_dev } = meanStd(stats);
  return { channels: stats.channels, height: stats.height, width: stats.width, mean, std_dev };
}

/**
 * Seed-000 metadata (channels, height, width, per-channel mean and population std on a 0–1 scale)
 * of the image at `path` or of an encoded image in memory.
 * @param name for in-memory images, what error messages call the image
 */
export async function getImageMetadata(source: ImageSource, name?: string): Promise<ImageMetadata> {
  const img = await decodeImage(source, name);
  return metadataFromStats(imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue));
}

/** {@link getImageMetadata} for an encoded image in memory; `name` labels it in errors. */
export function getImageMetadataFromBuffer(bytes: Uint8Array, name: string): Promise<ImageMetadata> {
  return getImageMetadata(bytes, name);
}
