/**
 * Exact pooling of per-channel pixel sums: the mean/std of a union of images (on one node or across
 * nodes) from each part's sums, never from its pixels. Merging is associative and commutative, so
 * nodes merge locally and the aggregator merges the nodes' results.
 *
 * Rule for differing channel counts: sums are pooled as if every image were first converted to
 * the widest layout present, the way an image library converts them:
 *  - colour: if any image is colour (3 or 4 channels), grey images count their grey value in each of
 *    R, G and B (a grey pixel is R = G = B);
 *  - alpha: if any image has alpha (2 or 4 channels), images without alpha count as fully opaque
 *    (alpha 1.0 for every pixel).
 * So pooling grey + RGBA yields 4 channels and equals the statistics of the concatenated pixels of
 * all images converted to RGBA.
 */
import { BadRequestError } from '../errors.js';
import type { ChannelSums, ImageStats } from './types.js';

/** The neutral element of {@link mergeSums}: no channels, no pixels. */
export function emptySums(): ChannelSums {
  return { channels: 0, pixel_count: 0, sum: [], sum_sq: [] };
}

function colourChannels(channels: number): number {
  return channels >= 3 ? 3 : channels >= 1 ? 1 : 0;
}

function hasAlpha(channels: number): boolean {
  return channels === 2 || channels === 4;
}

/** The layout two channel counts pool into (see the module's rule). */
export function pooledChannelCount(a: number, b: number): number {
  const colour = Math.max(colourChannels(a), colourChannels(b));
  const alpha = hasAlpha(a) || hasAlpha(b) ? 1 : 0;
  return colour === 0 && alpha === 0 ? 0 : Math.max(colour, 1) + alpha;
}

function checkSums(s: ChannelSums): void {
  if (
    !Number.isInteger(s.channels) ||
    s.channels < 0 ||
    s.channels > 4 ||
    s.sum.length !== s.channels ||
    s.sum_sq.length !== s.channels ||
    !(s.pixel_count >= 0)
  ) {
    throw new BadRequestError(
      `Channel sums are malformed: channels=${s.channels}, sum has ${s.sum.length} values, ` +
        `sum_sq has ${s.sum_sq.length}, pixel_count=${s.pixel_count}`,
    );
  }
}

/**
 * Express `s` in a wider layout (`channels` from {@link pooledChannelCount}): grey replicated into
 * R, G, B; a missing alpha channel added as fully opaque.
 */
export function widenSums(s: ChannelSums, channels: number): ChannelSums {
  checkSums(s);
  if (s.channels === channels) return { ...s, sum: [...s.sum], sum_sq: [...s.sum_sq] };
  if (pooledChannelCount(s.channels, channels) !== channels) {
    throw new BadRequestError(`Cannot narrow channel sums from ${s.channels} to ${channels} channels`);
  }
  const n = s.pixel_count;
  const srcColour = colourChannels(s.channels);
  const dstColour = colourChannels(channels);
  const sum: number[] = [];
  const sumSq: number[] = [];
  for (let c = 0; c < dstColour; c++) {
    const from = srcColour === 0 ? -1 : srcColour === 1 ? 0 : c;
    sum.push(from < 0 ? 0 : s.sum[from]);
    sumSq.push(from < 0 ? 0 : s.sum_sq[from]);
  }
  if (hasAlpha(channels)) {
    const alpha = hasAlpha(s.channels) ? s.channels - 1 : -1;
    sum.push(alpha < 0 ? n : s.sum[alpha]);
    sumSq.push(alpha < 0 ? n : s.sum_sq[alpha]);
  }
  return { channels, pixel_count: n, sum, sum_sq: sumSq };
}

/**
 * Pool any number of sums (per image, per class, per node) into one. Only `channels`,
 * `pixel_count`, `sum` and `sum_sq` are read, so {@link ImageStats} can be passed as they are.
 */
export function mergeSums(parts: Iterable<ChannelSums>): ChannelSums {
  const list = [...parts];
  let channels = 0;
  for (const p of list) {
    checkSums(p);
    channels = pooledChannelCount(channels, p.channels);
  }
  const out: ChannelSums = {
    channels,
    pixel_count: 0,
    sum: new Array<number>(channels).fill(0),
    sum_sq: new Array<number>(channels).fill(0),
  };
  for (const p of list) {
    if (p.pixel_count === 0) continue;
    const w = widenSums(p, channels);
    out.pixel_count += w.pixel_count;
    for (let c = 0; c < channels; c++) {
      out.sum[c] += w.sum[c];
      out.sum_sq[c] += w.sum_sq[c];
    }
  }
  return out;
}

/**
 * Per-channel mean and population standard deviation from sums. No pixels give empty arrays.
 * Rounding can make Σx²/n − mean² a hair negative for constant images; that is clamped to 0.
 *
 * @property __type.mean Per-channel mean, 0–1 scale.
 * @property __type.std_dev Per-channel population standard deviation, 0–1 scale.
 */
export function meanStd(s: ChannelSums): { mean: number[]; std_dev: number[] } {
  checkSums(s);
  if (s.pixel_count === 0) return { mean: [], std_dev: [] };
  const n = s.pixel_count;
  const mean = s.sum.map((v) => v / n);
  const stdDev = s.sum_sq.map((q, c) => Math.sqrt(Math.max(0, (q - s.sum[c] * mean[c]) / n)));
  return { mean, std_dev: stdDev };
}

/** Strip an {@link ImageStats} down to the sums a node sends (no sizes). */
export function toChannelSums(s: ImageStats | ChannelSums): ChannelSums {
  return { channels: s.channels, pixel_count: s.pixel_count, sum: [...s.sum], sum_sq: [...s.sum_sq] };
}
