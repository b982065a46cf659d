/**
 * Read an image's sample layout (grey or colour, alpha, 8 or 16 bits) from the first bytes of the
 * file, for the common formats, so decoding needs one call to sharp instead of two (metadata, then
 * pixels): about a sixth of the time on small images. Anything not recognised returns undefined and
 * the caller asks sharp's `metadata()` instead.
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

/** JPEG: the component count and precision of the first start-of-frame marker. */
function sniffJpeg(b: Uint8Array): SampleLayout | undefined {
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
    if (isFrame) {
      if (at + 10 > b.length) return undefined;
      const precision = b[at + 4];
      const components = b[at + 9];
      if (precision !== 8 || (components !== 1 && components !== 3 && components !== 4)) return undefined;
      return { grey: components === 1, alpha: false, sixteenBit: false };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame
    at += 2 + ((b[at + 2] << 8) | b[at + 3]);
  }
  return undefined;
}

/**
 * The sample layout of PNG, JPEG, WebP and GIF bytes, or undefined for other formats and for headers
 * that are cut short or unusual (the caller then asks sharp, which also reports real corruption).
 */
export function sniffSampleLayout(bytes: Uint8Array): SampleLayout | undefined {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((v, i) => bytes[i] === v)) return sniffPng(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return sniffJpeg(bytes);
  // WebP and GIF are 8-bit colour; the decoder keeps their alpha.
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') {
    return { grey: false, alpha: false, sixteenBit: false };
  }
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) {
    return { grey: false, alpha: false, sixteenBit: false };
  }
  return undefined;
}
