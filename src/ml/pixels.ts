/**
 * Batches of decoded images as models take them: NCHW float32 on a 0–1 scale, plus the
 * conversions (channel count, bilinear resize) that fit any image to a model's fixed input.
 */
import { BadRequestError } from '../errors.js';

/** Shape of one image: channels × height × width. */
export interface ImageShape {
  /** Channels per pixel (1 grey, 3 RGB). */
  channels: number;
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
}

/** `count` images stored NCHW, row-major, pixel values on a 0–1 scale. */
export interface ImageBatch extends ImageShape {
  /** Number of images. */
  count: number;
  /** The pixels, `count × channels × height × width` values. */
  data: Float32Array;
}

/** Checks that `data` holds exactly `count` images of the stated shape. */
export function checkBatch(batch: ImageBatch): void {
  const { count, channels, height, width, data } = batch;
  for (const [name, v] of Object.entries({ count, channels, height, width })) {
    if (!Number.isInteger(v) || v < 0) throw new BadRequestError(`image batch: ${name} must be a non-negative integer, got ${v}`);
  }
  if (data.length !== count * channels * height * width) {
    throw new BadRequestError(
      `image batch: ${data.length} values for ${count} images of ${channels}×${height}×${width}`,
    );
  }
}

/** Grey → RGB by repetition, RGB(A) → grey by luma (ITU-R 601), other counts rejected. */
function convertChannels(batch: ImageBatch, channels: number): ImageBatch {
  if (batch.channels === channels) return batch;
  const plane = batch.height * batch.width;
  const out = new Float32Array(batch.count * channels * plane);
  for (let i = 0; i < batch.count; i++) {
    const src = i * batch.channels * plane;
    const dst = i * channels * plane;
    if (batch.channels === 1) {
      for (let c = 0; c < channels; c++) out.set(batch.data.subarray(src, src + plane), dst + c * plane);
    } else if (channels === 1 && batch.channels >= 3) {
      for (let p = 0; p < plane; p++) {
        out[dst + p] =
          0.299 * batch.data[src + p] + 0.587 * batch.data[src + plane + p] + 0.114 * batch.data[src + 2 * plane + p];
      }
    } else if (channels === 3 && batch.channels === 4) {
      out.set(batch.data.subarray(src, src + 3 * plane), dst); // drop alpha
    } else {
      throw new BadRequestError(`image batch: cannot convert ${batch.channels} channels to ${channels}`);
    }
  }
  return { ...batch, channels, data: out };
}

/** Bilinear resize with pixel-centre alignment (like sharp/PIL without antialiasing). */
function resize(batch: ImageBatch, height: number, width: number): ImageBatch {
  if (batch.height === height && batch.width === width) return batch;
  const { count, channels, height: h0, width: w0 } = batch;
  const out = new Float32Array(count * channels * height * width);
  const sy = h0 / height;
  const sx = w0 / width;
  for (let plane = 0; plane < count * channels; plane++) {
    const src = plane * h0 * w0;
    const dst = plane * height * width;
    for (let y = 0; y < height; y++) {
      const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h0 - 1);
      const y0 = Math.floor(fy);
      const y1 = Math.min(y0 + 1, h0 - 1);
      const ay = fy - y0;
      for (let x = 0; x < width; x++) {
        const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w0 - 1);
        const x0 = Math.floor(fx);
        const x1 = Math.min(x0 + 1, w0 - 1);
        const ax = fx - x0;
        const top = batch.data[src + y0 * w0 + x0] * (1 - ax) + batch.data[src + y0 * w0 + x1] * ax;
        const bottom = batch.data[src + y1 * w0 + x0] * (1 - ax) + batch.data[src + y1 * w0 + x1] * ax;
        out[dst + y * width + x] = top * (1 - ay) + bottom * ay;
      }
    }
  }
  return { ...batch, height, width, data: out };
}

/** Converts a batch to the shape a model expects (channels first, then size); returns it unchanged if it fits. */
export function fitBatch(batch: ImageBatch, shape: ImageShape): ImageBatch {
  checkBatch(batch);
  return resize(convertChannels(batch, shape.channels), shape.height, shape.width);
}

/** Rows `start`..`end` of a batch, without copying. */
export function sliceBatch(batch: ImageBatch, start: number, end: number): ImageBatch {
  const size = batch.channels * batch.height * batch.width;
  return { ...batch, count: end - start, data: batch.data.subarray(start * size, end * size) };
}
