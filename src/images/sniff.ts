/**
 * Read an image's sample layout (grey or colour, alpha, 8 or 16 bits) and its width and height from
 * the first bytes of the file, for the common formats, so decoding needs one call to sharp instead
 * of two (metadata, then pixels): about a sixth of the time on small images, and the pixel cap is
 * checked before sharp sees the file. Anything not recognised returns undefined and the caller asks
 * sharp's `metadata()` instead.
 */

/** What decoding needs to know before it starts. */
export interface SampleLayout {
  /** One colour channel (grey), as opposed to RGB. */
  grey: boolean;
  /** Has an alpha channel (only decided for grey images: colour decodes keep alpha on their own). */
  alpha: boolean;
  /** 16-bit samples. */
  sixteenBit: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** PNG: IHDR's bit depth and colour type; grey images get alpha from colour type 4 or a tRNS chunk. */
function sniffPng(b: Uint8Array): SampleLayout | undefined {
  if (b.length < 33 || ascii(b, 12, 4) !== 'IHDR') return undefined;
  const depth = b[24];
  const colourType = b[25];
  const sixteenBit = depth === 16;
  if (colourType === 2 || colourType === 3 || colourType === 6) return { grey: false, alpha: colourType === 6, sixteenBit };
  if (colourType === 4) return { grey: true, alpha: true, sixteenBit };
  if (colourType !== 0) return undefined;
  // Grey: a tRNS chunk (before the first IDAT) makes it grey+alpha once decoded.
  for (let at = 8; at + 8 <= b.length; ) {
    const type = ascii(b, at + 4, 4);
    if (type === 'tRNS') return { grey: true, alpha: true, sixteenBit };
    if (type === 'IDAT') return { grey: true, alpha: false, sixteenBit };
    at += 12 + u32(b, at);
  }
  return undefined;
}

/** JPEG: offset of the first start-of-frame marker with its fields in range, or undefined. */
function jpegFrame(b: Uint8Array): number | undefined {
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1];
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2; // markers without a length
      continue;
    }
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) return at + 10 > b.length ? undefined : at;
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame
    at += 2 + ((b[at + 2] << 8) | b[at + 3]);
  }
  return undefined;
}

/** JPEG: the component count and precision of the first start-of-frame marker. */
function sniffJpeg(b: Uint8Array): SampleLayout | undefined {
  const at = jpegFrame(b);
  if (at === undefined) return undefined;
  const precision = b[at + 4];
  const components = b[at + 9];
  if (precision !== 8 || (components !== 1 && components !== 3 && components !== 4)) return undefined;
  return { grey: components === 1, alpha: false, sixteenBit: false };
}

function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
}

function isJpeg(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function isWebp(b: Uint8Array): boolean {
  return b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP';
}

function isGif(b: Uint8Array): boolean {
  return b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a');
}

function u16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function u24le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
}

/** WebP: the canvas of an extended file, else the frame size of a lossy or lossless one. */
function webpDimensions(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 30) return undefined;
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8X') return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  if (chunk === 'VP8L' && b[20] === 0x2f) {
    const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  return undefined;
}

/**
 * `width` and `height` (pixels) from the header of PNG, JPEG, WebP and GIF bytes, before anything
 * is decoded; undefined for other formats and for headers cut short (the caller then asks sharp's
 * header parse).
 */
export function sniffDimensions(bytes: Uint8Array): { width: number; height: number } | undefined {
  let size: { width: number; height: number } | undefined;
  if (isPng(bytes)) {
    if (bytes.length >= 24 && ascii(bytes, 12, 4) === 'IHDR') size = { width: u32(bytes, 16), height: u32(bytes, 20) };
  } else if (isJpeg(bytes)) {
    const at = jpegFrame(bytes);
    // A height of 0 is set later (DNL marker): left to sharp.
    if (at !== undefined) size = { width: (bytes[at + 7] << 8) | bytes[at + 8], height: (bytes[at + 5] << 8) | bytes[at + 6] };
  } else if (isWebp(bytes)) {
    size = webpDimensions(bytes);
  } else if (isGif(bytes) && bytes.length >= 10) {
    size = { width: u16le(bytes, 6), height: u16le(bytes, 8) };
  }
  return size && size.width > 0 && size.height > 0 ? size : undefined;
}

/**
 * The sample layout of PNG, JPEG, WebP and GIF bytes, or undefined for other formats and for headers
 * that are cut short or unusual (the caller then asks sharp, which also reports real corruption).
 */
export function sniffSampleLayout(bytes: Uint8Array): SampleLayout | undefined {
  if (isPng(bytes)) return sniffPng(bytes);
  if (isJpeg(bytes)) return sniffJpeg(bytes);
  // WebP and GIF are 8-bit colour; the decoder keeps their alpha.
  if (isWebp(bytes) || isGif(bytes)) return { grey: false, alpha: false, sixteenBit: false };
  return undefined;
}

/** Image formats recognised by their signature (the formats of `IMAGE_EXTENSIONS`); sharp's names. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'heif';

/** ISO-BMFF brands of AVIF and HEIC files (sharp reads both as `heif`). */
const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/** Bytes {@link sniffImageFormat} needs from the start of a file. */
export const IMAGE_SIGNATURE_BYTES = 12;

/**
 * The image format the first bytes announce, or undefined when they are no image signature sharp
 * should be given (text, keys, archives, SVG, PDF, ...): lets a caller refuse a file without
 * reading more than {@link IMAGE_SIGNATURE_BYTES} of it.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) return 'gif';
  if (bytes.length >= 4 && ((ascii(bytes, 0, 2) === 'II' && bytes[2] === 42 && bytes[3] === 0) || (ascii(bytes, 0, 2) === 'MM' && bytes[2] === 0 && bytes[3] === 42))) return 'tiff';
  if (bytes.length >= 12 && ascii(bytes, 4, 4) === 'ftyp' && HEIF_BRANDS.has(ascii(bytes, 8, 4))) return 'heif';
  return undefined;
}
