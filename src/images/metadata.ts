/**
 * Image metadata (seed 000's `get_image_metadata`) and the per-image sums behind it: one raw decode
 * and one pass over the pixels. sharp's `.stats()` is not used: it computes far more than we need
 * and is several times slower on small images (see bench/images.ts).
 */
import { BadRequestError } from '../errors.js';
import { decodeImage, type DecodeOptions, type ImageSource } from './decode.js';
import { meanStd } from './pooling.js';
import type { ImageMetadata, ImageStats } from './types.js';

// Integer sums stay exact: 8-bit blocks of 32768 pixels keep Σv² below 2^31, so the inner loops run
// on int32 (about a quarter faster than doubles); 16-bit squares reach 2^32, so 16-bit blocks of 65536
// pixels sum in doubles, exact below 2^53. Block sums are then added into the totals.
const BLOCK_8 = 1 << 15;
const BLOCK_16 = 1 << 16;

/** Exact integer sums of 8-bit samples into `sum`/`sumSq` (per channel). */
function sums8(px: Uint8Array | Uint8ClampedArray, channels: number, sum: number[], sumSq: number[]): void {
  const total = px.length;
  const step = BLOCK_8 * channels;
  for (let from = 0; from < total; from += step) {
    const end = Math.min(total, from + step);
    if (channels === 1) {
      let s = 0;
      let q = 0;
      for (let i = from; i < end; i++) {
        const v = px[i];
        s = (s + v) | 0;
        q = (q + v * v) | 0;
      }
      sum[0] += s;
      sumSq[0] += q;
    } else if (channels === 3) {
      let s0 = 0, s1 = 0, s2 = 0, q0 = 0, q1 = 0, q2 = 0; // prettier-ignore
      for (let i = from; i < end; i += 3) {
        const a = px[i];
        const b = px[i + 1];
        const c = px[i + 2];
        s0 = (s0 + a) | 0;
        s1 = (s1 + b) | 0;
        s2 = (s2 + c) | 0;
        q0 = (q0 + a * a) | 0;
        q1 = (q1 + b * b) | 0;
        q2 = (q2 + c * c) | 0;
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
          const v = px[i];
          s = (s + v) | 0;
          q = (q + v * v) | 0;
        }
        sum[c] += s;
        sumSq[c] += q;
      }
    }
  }
}

/** Exact integer sums of 16-bit samples into `sum`/`sumSq` (per channel). */
function sums16(px: Uint16Array, channels: number, sum: number[], sumSq: number[]): void {
  const total = px.length;
  const step = BLOCK_16 * channels;
  for (let from = 0; from < total; from += step) {
    const end = Math.min(total, from + step);
    for (let c = 0; c < channels; c++) {
      let s = 0;
      let q = 0;
      for (let i = from + c; i < end; i += channels) {
        const v = px[i];
        s += v;
        q += v * v;
      }
      sum[c] += s;
      sumSq[c] += q;
    }
  }
}

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
  if (pixels instanceof Uint16Array) sums16(pixels, channels, sum, sumSq);
  else sums8(pixels, channels, sum, sumSq);
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
 * @throws NotFoundError if the file is missing; BadRequestError if it is empty, not an image, corrupt
 *   or over `options.maxPixels`.
 */
export async function imageStats(path: string, options: DecodeOptions = {}): Promise<ImageStats> {
  const img = await decodeImage(path, undefined, options);
  return imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue);
}

/**
 * Per-channel sums of an encoded image held in memory (S3 objects, FHIR attachments).
 * @param name what error messages call the image (e.g. its key or resource reference)
 */
export async function imageStatsFromBuffer(bytes: Uint8Array, name: string, options: DecodeOptions = {}): Promise<ImageStats> {
  const img = await decodeImage(bytes, name, options);
  return imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue);
}

/** Seed-000 metadata of an image from its sums. */
export function metadataFromStats(stats: ImageStats): ImageMetadata {
  const { mean, std_dev } = meanStd(stats);
  return { channels: stats.channels, height: stats.height, width: stats.width, mean, std_dev };
}

/**
 * Seed-000 metadata (channels, height, width, per-channel mean and population std on a 0–1 scale)
 * of the image at `path` or of an encoded image in memory; an image over `options.maxPixels` (from
 * its header) is refused before decoding.
 * @param name for in-memory images, what error messages call the image
 */
export async function getImageMetadata(source: ImageSource, name?: string, options: DecodeOptions = {}): Promise<ImageMetadata> {
  const img = await decodeImage(source, name, options);
  return metadataFromStats(imageStatsFromPixels(img.pixels, img.width, img.height, img.channels, img.maxValue));
}

/** {@link getImageMetadata} for an encoded image in memory; `name` labels it in errors. */
export function getImageMetadataFromBuffer(bytes: Uint8Array, name: string, options: DecodeOptions = {}): Promise<ImageMetadata> {
  return getImageMetadata(bytes, name, options);
}
