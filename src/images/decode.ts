/**
 * One raw decode of an image with sharp, keeping what the file holds: grey stays one channel,
 * alpha stays, 16-bit samples stay 16-bit. Failures become errors that name the file.
 *
 * The pixel count (width × height) comes from the header before anything is decoded and is checked
 * against a cap far below sharp's own default (16383², 2 GB of RGBA16 samples from a 2 MB file);
 * sharp's `limitInputPixels` enforces the same cap on whatever the header sniffing does not know.
 */
import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import { BadRequestError, FlameError, NotFoundError } from '../errors.js';
import { DEFAULT_LIMITS, overLimit } from '../limits.js';
import { sniffDimensions, sniffSampleLayout, type SampleLayout } from './sniff.js';

/** Decoded pixels, interleaved (`channels` samples per pixel, row-major). */
export interface DecodedImage {
  /** 8-bit samples (`maxValue` 255) or 16-bit samples (`maxValue` 65535). */
  pixels: Uint8Array | Uint16Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  /** The sample value that means full intensity: 255 or 65535. */
  maxValue: 255 | 65535;
}

/** A path on disk, or the bytes of an encoded image (e.g. fetched from S3 or a FHIR attachment). */
export type ImageSource = string | Uint8Array;

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** Most pixels (width × height) an image may have (default `DEFAULT_LIMITS.maxImagePixels`). */
  maxPixels?: number;
}

/** The error for an image over the pixel cap: names it, its size and the cap. */
export function imageOverPixelLimit(label: string, width: number, height: number, maxPixels: number): BadRequestError {
  return overLimit(`Image ${label} (${width}x${height})`, `${width * height} pixels`, 'maxImagePixels', maxPixels);
}

/**
 * Decode `source` to raw pixels. `name` is what error messages call the image (defaults to the
 * path when `source` is one). Any format sharp reads is accepted (PNG, JPEG, WebP, TIFF, GIF, …);
 * multi-frame images give their first frame.
 * @throws NotFoundError when the file does not exist; BadRequestError when it is empty, not an
 *   image, truncated or corrupt, or has more pixels than `options.maxPixels` (checked before decoding).
 */
export async function decodeImage(source: ImageSource, name?: string, options: DecodeOptions = {}): Promise<DecodedImage> {
  const label = name ?? (typeof source === 'string' ? source : 'image bytes');
  const maxPixels = options.maxPixels ?? DEFAULT_LIMITS.maxImagePixels;
  // Reading the file ourselves lets us sniff its layout and hand sharp the bytes: one sharp call.
  const bytes = typeof source === 'string' ? await readImageFile(source, label) : source;
  if (bytes.byteLength === 0) throw new BadRequestError(`Image ${label} is empty (0 bytes)`);
  try {
    let layout = sniffSampleLayout(bytes);
    let size = sniffDimensions(bytes);
    if (!layout || !size) {
      // A header parse only; uncapped so that an image over the cap still gets its size named.
      const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
      layout ??= layoutOf(meta);
      if (!size && meta.width && meta.height) size = { width: meta.width, height: meta.height };
    }
    if (size && size.width * size.height > maxPixels) throw imageOverPixelLimit(label, size.width, size.height, maxPixels);
    // failOn 'truncated': a cut-off file is an error, benign decoder warnings are not.
    const image = sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels });
    // Without an explicit colour space sharp widens grey to sRGB; 'b-w' keeps one channel but drops
    // alpha, so grey+alpha goes through 'grey16' (8-bit samples come out as v·257, i.e. v/255 exactly).
    let space: 'b-w' | 'grey16' | 'srgb' | 'rgb16';
    if (layout.grey) space = layout.alpha || layout.sixteenBit ? 'grey16' : 'b-w';
    else space = layout.sixteenBit ? 'rgb16' : 'srgb';
    const wide = space === 'grey16' || space === 'rgb16';
    const { data, info } = await image
      .toColourspace(space)
      .raw(wide ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
    const pixels = wide ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength >> 1) : data;
    return { pixels, width: info.width, height: info.height, channels: info.channels, maxValue: wide ? 65535 : 255 };
  } catch (err) {
    if (err instanceof FlameError) throw err;
    throw describeDecodeError(label, err, maxPixels);
  }
}

/** The layout of formats {@link sniffSampleLayout} does not know, from sharp's header parse. */
function layoutOf(meta: Metadata): SampleLayout {
  const grey = meta.channels !== undefined && meta.channels <= 2;
  return { grey, alpha: grey && meta.channels === 2, sixteenBit: meta.depth === 'ushort' };
}

async function readImageFile(path: string, label: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`Image file ${label} does not exist`, { cause: err });
    if (code === 'EISDIR') throw new BadRequestError(`Image path ${label} is a directory`, { cause: err });
    throw new BadRequestError(`Cannot read image file ${label}: ${(err as Error).message}`, { cause: err });
  }
}

/** Turn sharp's failure into an error that says which file and why, in plain words. */
function describeDecodeError(label: string, err: unknown, maxPixels: number): Error {
  const reason = err instanceof Error ? err.message : String(err);
  // sharp's own check of the same cap, for sizes the header parse above did not find.
  if (/exceeds pixel limit/i.test(reason)) {
    return overLimit(`Image ${label}`, `more than ${maxPixels} pixels`, 'maxImagePixels', maxPixels);
  }
  if (/unsupported image format/i.test(reason)) {
    return new BadRequestError(`${label} is not an image sharp can read (unknown or unsupported format)`, {
      cause: err,
    });
  }
  return new BadRequestError(`Cannot decode image ${label}: it is truncated or corrupt (${reason})`, { cause: err });
}
