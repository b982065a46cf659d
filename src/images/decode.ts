/**
 * One raw decode of an image with sharp, keeping what the file holds: grey stays one channel,
 * alpha stays, 16-bit samples stay 16-bit. Failures become errors that name the file.
 */
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { BadRequestError, NotFoundError } from '../errors.js';

/** Decoded pixels, interleaved (`channels` samples per pixel, row-major). */
export interface DecodedImage {
  /** 8-bit samples (`maxValue` 255) or 16-bit samples (`maxValue` 65535). */
  pixels: Uint8Array | Uint16Array;
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  /** The sample value that means full intensity: 255 or 65535. */
  maxValue: 255 | 65535;
}

/** A path on disk, or the bytes of an encoded image (e.g. fetched from S3 or a FHIR attachment). */
export type ImageSource = string | Uint8Array;

/**
 * Decode `source` to raw pixels. `name` is what error messages call the image (defaults to the
 * path when `source` is one). Any format sharp reads is accepted (PNG, JPEG, WebP, TIFF, GIF, …);
 * multi-frame images give their first frame.
 * @throws NotFoundError when the file does not exist; BadRequestError when it is empty, not an
 *   image, truncated or corrupt.
 */
export async function decodeImage(source: ImageSource, name?: string): Promise<DecodedImage> {
  const label = name ?? (typeof source === 'string' ? source : 'image bytes');
  if (typeof source !== 'string' && source.byteLength === 0) {
    throw new BadRequestError(`Image ${label} is empty (0 bytes)`);
  }
  try {
    // failOn 'truncated': a cut-off file is an error, benign decoder warnings are not.
    const image = sharp(source, { failOn: 'truncated' });
    const meta = await image.metadata();
    const sixteenBit = meta.depth === 'ushort';
    // Without an explicit colour space sharp widens grey to sRGB; 'b-w' keeps one channel but drops
    // alpha, so grey+alpha goes through 'grey16' (8-bit samples come out as v·257, i.e. v/255 exactly).
    let space: 'b-w' | 'grey16' | 'srgb' | 'rgb16';
    if (meta.channels === 2) space = 'grey16';
    else if (meta.channels === 1) space = sixteenBit ? 'grey16' : 'b-w';
    else space = sixteenBit ? 'rgb16' : 'srgb';
    const wide = space === 'grey16' || space === 'rgb16';
    const { data, info } = await image
      .toColourspace(space)
      .raw(wide ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
    const pixels = wide ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength >> 1) : data;
    return { pixels, width: info.width, height: info.height, channels: info.channels, maxValue: wide ? 65535 : 255 };
  } catch (err) {
    throw await describeDecodeError(source, label, err);
  }
}

/** Turn sharp's failure into an error that says which file and why, in plain words. */
async function describeDecodeError(source: ImageSource, label: string, err: unknown): Promise<Error> {
  const reason = err instanceof Error ? err.message : String(err);
  if (typeof source === 'string') {
    try {
      const info = await stat(source);
      if (info.isDirectory()) return new BadRequestError(`Image path ${label} is a directory`, { cause: err });
      if (info.size === 0) return new BadRequestError(`Image file ${label} is empty (0 bytes)`, { cause: err });
    } catch (statErr) {
      if ((statErr as NodeJS.ErrnoException).code === 'ENOENT') {
        return new NotFoundError(`Image file ${label} does not exist`, { cause: err });
      }
    }
  }
  if (/unsupported image format/i.test(reason)) {
    return new BadRequestError(`${label} is not an image sharp can read (unknown or unsupported format)`, {
      cause: err,
    });
  }
  return new BadRequestError(`Cannot decode image ${label}: it is truncated or corrupt (${reason})`, { cause: err });
}
